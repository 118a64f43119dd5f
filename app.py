"""aeviz: an interactive lab for learning autoencoders. Start with `streamlit run app.py`."""
import importlib

import streamlit as st

import aeviz  # noqa: F401  (sets OMP/MKL threads to 1 before torch starts: many students share the cores)
from aeviz.ui import classroom, heap, state
from aeviz.ui.components import replica

st.set_page_config(page_title="aeviz: autoencoder lab", page_icon=state.ICON, layout="wide")


def page(module: str, title: str, icon: str, url_path: str, default: bool = False) -> st.Page:
    """The page aeviz.ui.pages.<module>, imported when it is first shown: a student's first screen does not wait
    for the imports of the pages they have not opened (the Use pages' alone cost ~0.2 s of CPU)."""
    def render() -> None:
        importlib.import_module(f"aeviz.ui.pages.{module}").render()
        heap.settle(module)  # the page's modules and what its first run cached live as long as the server

    render.__name__ = module
    return st.Page(render, title=title, icon=icon, url_path=url_path, default=default)


PAGES = {
    "Learn": [
        page("explorer", title="Explorer", icon=":material/explore:", url_path="explorer", default=True),
        page("compare", title="Compare variants", icon=":material/compare:", url_path="compare"),
        page("lab", title="Denoising & regularizers", icon=":material/science:", url_path="lab"),
        page("board", title="Class board", icon=":material/dashboard:", url_path="board"),
    ],
    "Use": [
        page("anomaly", title="Anomaly detection", icon=":material/warning:", url_path="anomaly"),
        page("reduction", title="Dimensionality reduction", icon=":material/scatter_plot:",
             url_path="reduction"),
        page("features", title="Feature extraction", icon=":material/manage_search:", url_path="features"),
        page("compression", title="Compression", icon=":material/compress:", url_path="compression"),
        page("augmentation", title="Data augmentation", icon=":material/auto_awesome:",
             url_path="augmentation"),
        page("imputation", title="Imputation", icon=":material/healing:", url_path="imputation"),
    ],
}


def sidebar() -> None:
    state.sidebar()
    replica.guard()  # behind `aeviz serve`: a page moved to another replica reloads there


classroom.run(PAGES, sidebar)  # the room's order: a pushed view first, then the page, then a pending push
