"""Streamlit pages: widgets -> configs -> backend calls -> figures. The only place that imports streamlit."""
from aeviz import jobs

jobs.exit_cleanly_when_serving()  # a server's first run imports this: SIGTERM then exits 0 (jobs._skip_finalization)
