"""Streamlit pages: widgets -> configs -> backend calls -> figures. The only place that imports streamlit."""
