"""Application pages: dimensionality reduction, features, compression, augmentation, imputation."""
import streamlit as st


def _stub() -> None:
    st.title("Applications")


PAGES = [("reduction", "Dimensionality reduction", "🗺️", _stub)]
