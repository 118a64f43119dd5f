"""aeviz: an interactive lab for learning autoencoders. Start with `streamlit run app.py`."""
import streamlit as st

import aeviz  # noqa: F401  (sets OMP/MKL threads to 1 before torch starts: many students share the cores)
from aeviz.ui import classroom, state
from aeviz.ui.components import replica
from aeviz.ui.pages import anomaly, augmentation, board, compare, compression, explorer, features, imputation, lab, reduction

st.set_page_config(page_title="aeviz: autoencoder lab", page_icon=state.ICON, layout="wide")

PAGES = {
    "Learn": [
        st.Page(explorer.render, title="Explorer", icon=":material/explore:", url_path="explorer", default=True),
        st.Page(compare.render, title="Compare variants", icon=":material/compare:", url_path="compare"),
        st.Page(lab.render, title="Denoising & regularizers", icon=":material/science:", url_path="lab"),
        st.Page(board.render, title="Class board", icon=":material/dashboard:", url_path="board"),
    ],
    "Use": [
        st.Page(anomaly.render, title="Anomaly detection", icon=":material/warning:", url_path="anomaly"),
        st.Page(reduction.render, title="Dimensionality reduction", icon=":material/scatter_plot:",
                url_path="reduction"),
        st.Page(features.render, title="Feature extraction", icon=":material/manage_search:", url_path="features"),
        st.Page(compression.render, title="Compression", icon=":material/compress:", url_path="compression"),
        st.Page(augmentation.render, title="Data augmentation", icon=":material/auto_awesome:",
                url_path="augmentation"),
        st.Page(imputation.render, title="Imputation", icon=":material/healing:", url_path="imputation"),
    ],
}


def sidebar() -> None:
    state.sidebar()
    replica.guard()  # behind `aeviz serve`: a page moved to another replica reloads there


classroom.run(PAGES, sidebar)  # the room's order: a pushed view first, then the page, then a pending push
