"""Page stub, being built (see the issue tracker)."""
import streamlit as st


def render() -> None:
    """Draw the page."""
    st.title("compare")
