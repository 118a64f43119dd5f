"""One module (or package) per page, each with a render() that app.py lists once in its PAGES."""
