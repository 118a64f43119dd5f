"""widgets.image_url: pictures sent inside their element as data: URLs, encoded once per content."""
from __future__ import annotations

import base64
from io import BytesIO

import numpy as np
from PIL import Image

from aeviz.ui import widgets


def _decode(url: str) -> np.ndarray:
    head, b64 = url.split(",", 1)
    assert head == "data:image/png;base64"
    return np.asarray(Image.open(BytesIO(base64.b64decode(b64))))


def test_an_array_comes_back_from_its_data_url_pixel_for_pixel_and_is_encoded_once():
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, (28, 28), dtype=np.uint8)
    rgb = rng.integers(0, 256, (30, 10, 3), dtype=np.uint8)
    np.testing.assert_array_equal(_decode(widgets.image_url(grey)), grey)
    np.testing.assert_array_equal(_decode(widgets.image_url(rgb)), rgb)
    floats = np.array([[-0.5, 0.0, 0.5, 1.0, 2.0]], np.float32)  # clipped to [0, 1] like st.image(clamp=True)
    np.testing.assert_array_equal(_decode(widgets.image_url(floats)), [[0, 0, 128, 255, 255]])
    assert widgets.image_url(grey.copy()) is widgets.image_url(grey)  # the same content: the cached string
    # the same bytes in another shape or type are another picture
    assert _decode(widgets.image_url(grey.reshape(14, 56))).shape == (14, 56)
    png = widgets.png(grey)
    assert widgets.image_url(png) == "data:image/png;base64," + base64.b64encode(png).decode()


def test_the_cache_of_encoded_pictures_stays_bounded(monkeypatch):
    monkeypatch.setattr(widgets, "_URLS", widgets.ContentMemo(3))
    for v in range(5):
        widgets.image_url(np.full((4, 4), v, np.uint8))
    assert len(widgets._URLS) == 3


def test_a_mosaic_is_its_pictures_tiled_and_scaled_up_as_one_data_url_made_once_per_content():
    from aeviz import plots

    rng = np.random.default_rng(1)
    images = rng.random((6, 28, 28)).astype(np.float32)
    url = widgets.mosaic_url(images, 3, 2)
    expected = (np.clip(plots.upscale(plots.tile(images, 3), 2), 0, 1) * 255).round().astype(np.uint8)
    np.testing.assert_array_equal(_decode(url), expected)
    assert _decode(url).shape == (2 * (2 * 28 + 1), 2 * (3 * 28 + 2))  # two rows of three (1-pixel gaps), twice the size
    assert widgets.mosaic_url(images.copy(), 3, 2) is url  # the same content: the string made the first time
    assert widgets.mosaic_url(images, 2, 2) is not url and _decode(widgets.mosaic_url(images, 2, 2)).shape == (172, 114)
    assert widgets.image_url(url) is url  # a URL passes through st.image's helper untouched


def test_a_read_only_array_finds_its_mosaic_by_identity_and_a_copy_by_content(monkeypatch):
    images = np.random.default_rng(2).random((4, 8, 8)).astype(np.float32)
    images.setflags(write=False)  # as per_model(copy=False) hands out its values
    hashed = []
    original = widgets._MOSAICS.get
    monkeypatch.setattr(widgets._MOSAICS, "get", lambda *a: hashed.append(1) or original(*a))
    url = widgets.mosaic_url(images, 4, 3)
    assert widgets.mosaic_url(images, 4, 3) is url and len(hashed) == 1  # the same array: no hashing of its bytes
    copy = images.copy()  # writable, equal content: found by its bytes, the same picture
    assert widgets.mosaic_url(copy, 4, 3) is url and len(hashed) == 2
    assert widgets.mosaic_url(images, 2, 3) != url  # another layout is another picture
