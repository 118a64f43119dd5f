"""Custom Streamlit components (Components v2), served from package assets declared in aeviz/pyproject.toml."""
