"""aeviz: an interactive lab for learning autoencoders. Start with `streamlit run app.py`."""
import aeviz  # noqa: F401  (sets OMP/MKL threads to 1 before torch starts: many students share the cores)
import streamlit as st

from aeviz.ui import anomaly, applications, common, compare, explorer, lab

st.set_page_config(page_title="aeviz: autoencoder lab", page_icon=":material/explore:", layout="wide")

pages = {
    "Learn": [
        st.Page(explorer.render, title="Explorer", icon=":material/explore:", url_path="explorer", default=True),
        st.Page(compare.render, title="Compare variants", icon=":material/compare:", url_path="compare"),
        st.Page(lab.render, title="Denoising & regularizers", icon=":material/science:", url_path="lab"),
    ],
    "Use": [
        st.Page(anomaly.render, title="Anomaly detection", icon=":material/warning:", url_path="anomaly"),
        *[st.Page(fn, title=title, icon=icon, url_path=path) for path, title, icon, fn in applications.PAGES],
    ],
}
page = st.navigation(pages)
common.sidebar()
page.run()
