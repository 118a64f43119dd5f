"""What the browser tests share: the app served on a free port, headless Chromium (one of each per test module), and
`open_page`, a page on a URL once the app has drawn it, which records what the page sends and the errors it raises."""
from __future__ import annotations

import time
from typing import NamedTuple

import pytest

from aeviz.bench import browser as driver


class Opened(NamedTuple):
    """A page, the websocket frames it has sent (clear the list to count from now) and its uncaught JS errors."""

    page: object
    sent: list
    errors: list[str]


def _open_page(chromium, url: str, *ready: str, width: int = 1500, height: int = 1100,
               timeout_ms: int = 180_000) -> Opened:
    page = chromium.new_page(viewport={"width": width, "height": height})
    sent: list = []
    errors: list[str] = []
    # (Playwright takes Python functions as handlers, not builtins such as sent.append)
    page.on("websocket", lambda ws: ws.on("framesent", lambda payload: sent.append(payload)))
    page.on("pageerror", lambda e: errors.append(str(e)))
    driver.goto_when_up(page, url, time.perf_counter() + 120)
    for selector in (*ready, driver.IDLE):
        page.wait_for_selector(selector, timeout=timeout_ms)
    return Opened(page, sent, errors)


@pytest.fixture(scope="session")
def open_page():
    """open_page(chromium, url, *selectors, width=1500, height=1100) -> Opened: a new page of that size on url,
    returned once every selector is on it and the app is idle (retrying while the server is not up yet)."""
    return _open_page


@pytest.fixture(scope="module")
def app_url():
    """The base URL (no trailing slash) of `streamlit run app.py` from this checkout, on a free port."""
    with driver.served() as (_, url):
        yield url


@pytest.fixture(scope="module")
def chromium():
    """Headless Chromium; close the pages you open (or leave them: it closes with the module)."""
    with driver.chromium() as browser:
        yield browser
