"""Fixtures shared by the page tests."""
from __future__ import annotations

import pytest


@pytest.fixture
def slider_end():
    """slider -> the value a browser sends when a float slider is dragged (or End-keyed) to its right end.

    react-stately snaps to the last whole step from min and rounds it to the step's precision (as many places as
    the step's shortest text has characters after the point); AppTest would send max itself, which hides a
    range that is not a whole number of short steps: the browser's value then overshoots max and Streamlit
    resets the slider.
    """
    def end(slider) -> float:
        text = repr(float(slider.step))
        places = len(text) - text.index(".") if "." in text and "e" not in text else 0
        scale = 10.0 ** places
        return round((slider.min + round((slider.max - slider.min) / slider.step) * slider.step) * scale) / scale
    return end
