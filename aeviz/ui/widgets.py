"""Widgets the pages share: a float slider's grid, image rows and grids, and a canvas to draw a digit.

The canvas uses streamlit-drawable-canvas (Fabric.js bundled in the wheel, Streamlit components v2): nothing is
loaded from the internet. The drawing comes back when a stroke ends.
"""
from __future__ import annotations

import base64
import contextlib
import hashlib
import math
import re
import threading
from collections import OrderedDict

import numpy as np
import streamlit as st

from aeviz import images, plots

SIDE = 224  # 8 canvas pixels per MNIST pixel: easy to draw on, quick to send
STROKE = 18  # about 2.2 MNIST pixels after scaling the digit into its 20 px box, like MNIST's pen


def slider_grid(lo: float, hi: float, steps: int = 100) -> tuple[float, float, float, str]:
    """(min, max, step, format) for a float slider over [lo, hi] in about `steps` steps, every stop a short decimal.

    The browser snaps a slider's value to the step and rounds it to the step's decimal places; with a step like
    0.3306881 and ends that are not whole steps apart, the right end came back a hair above max, and Streamlit
    reset the slider to its default: the end could not be reached. A step of 1, 2 or 5 x 10^k and ends on
    multiples of it make every stop exact.
    """
    raw = (hi - lo) / steps if hi > lo else 1.0 / steps
    k = math.floor(math.log10(raw))
    step = max(m * 10.0 ** k for m in (1, 2, 5) if m * 10.0 ** k <= raw * (1 + 1e-9))
    places = max(0, -k)
    step = round(step, places)
    lo, hi = round(math.floor(lo / step) * step, places), round(math.ceil(hi / step) * step, places)
    if hi <= lo:
        hi = round(lo + step, places)
    return lo, hi, step, f"%.{max(2, places)}f"


@contextlib.contextmanager
def lazy_expander(label: str, key: str, keep: re.Pattern | None = None, *, expanded: bool = False,
                  icon: str | None = None, busy: bool = False):
    """An expander whose content runs only while it is open (or `busy`, e.g. while a training inside it runs):
    closed, as most boxes are most of the time, its widgets cost a run nothing (each element is a message that
    Streamlit builds, hashes and sends on every run). Yields the expander to draw into, or None while closed.

    Streamlit forgets a widget's value once a run leaves the widget out, so the values of the widgets whose keys
    match `keep` are set aside after each run of the content and given back when the box is opened again."""
    ss = st.session_state
    box = st.expander(label, expanded=expanded, icon=icon, key=key, on_change="rerun")
    if not (box.open or busy):
        yield None
        return
    kept = f"{key}::kept"
    for k, v in ss.get(kept, {}).items():
        if k not in ss:
            ss[k] = v
    with box:
        yield box
    if keep is not None:
        ss[kept] = {k: ss[k] for k in ss if isinstance(k, str) and keep.fullmatch(k)}


def png(img: np.ndarray) -> bytes:
    """A uint8 (or [0,1] float) grayscale image as PNG bytes: cache these, and st.image(..., output_format="PNG") only
    hashes them on every rerun instead of encoding the picture again (left to "auto", it re-encodes them as JPEG,
    which also blurs the sharp pixels of a digit)."""
    import io

    from PIL import Image

    a = np.asarray(img)
    if a.dtype != np.uint8:
        a = (np.clip(a, 0.0, 1.0) * 255).round().astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(a).save(out, format="PNG", compress_level=1)  # 3x faster than the default 6, 20 % larger
    return out.getvalue()


class Memo:
    """Values by key for every session, the `size` most recently used; make() runs outside the lock (two sessions
    may both make a value once). A key that cannot be hashed (arrays in it) is not kept: make() every time."""

    def __init__(self, size: int):
        self.size, self._items, self._lock = size, OrderedDict(), threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key, make):
        try:
            hash(key)
        except TypeError:
            return make()
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = make()
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


class ContentMemo(Memo):
    """What was made from an array, kept by the array's content (shape, dtype and bytes, plus `extra`)."""

    def get(self, a, make, *extra):
        """The value kept for this content, else make(a)."""
        a = np.ascontiguousarray(a)
        h = hashlib.blake2b(repr((a.shape, a.dtype.str, extra)).encode(), digest_size=16)
        h.update(a.data)
        return super().get(h.digest(), lambda: make(a))


_URLS = ContentMemo(4096)  # an image array's content -> its data: URL


def image_url(img) -> str:
    """PNG bytes, or a grayscale or RGB image array (uint8, or floats clipped to [0, 1]), as a `data:` URL (a string
    is taken for a URL already and handed back as it is).

    st.image hands a URL through untouched, so a picture given this way travels inside its element: no media file
    for the server to store and no request per picture for the browser and the server to make (a model switch
    showed 25 pictures, and they took the server longer than the run itself). An element of 10 kB or more is
    cached by the browser, so a rerun that shows the same pictures sends only its hash. Arrays are encoded once
    per content, for every session."""
    if isinstance(img, str):
        return img  # a URL already (mosaic_url's)
    if isinstance(img, (bytes, bytearray)):
        return "data:image/png;base64," + base64.b64encode(img).decode("ascii")
    return _URLS.get(img, lambda a: image_url(png(a)))


def image(images, caption=None, width="content", where=None) -> None:
    """st.image (or `where`.image) of one picture or a list of them, each a data: URL, PNG bytes or an image array,
    sent inside the element as data: URLs (image_url)."""
    urls = [image_url(i) for i in images] if isinstance(images, list) else image_url(images)
    (where or st).image(urls, caption=caption, width=width)


_MOSAICS = ContentMemo(2048)  # images, ncols, zoom -> the mosaic's data: URL


# read-only arrays by identity: (id(images), ncols, zoom) -> (images, URL). Each entry holds its array, so the id is
# not reused while it is kept; the arrays stay alive meanwhile: ~40 MB at most for Compare's 24-digit columns
_SAME_ARRAY = Memo(512)


def mosaic_url(images, ncols: int, zoom: int) -> str:
    """Images tiled in rows of ncols and scaled up `zoom` times with sharp pixels, as a PNG data: URL; made once per
    content for every session, so a rerun that shows the same pictures neither tiles nor encodes them again. (It was
    st.cache_data of the PNG bytes: Streamlit's hashing of the images and the copy it hands out, then base64 of the
    bytes on every run, a tenth of a Compare run's CPU.) A read-only array (a cached value every session is handed)
    is found again by identity, without hashing its bytes: the entry holds the array, so its id is not reused."""
    a = np.asarray(images)

    def by_content() -> str:
        return _MOSAICS.get(a, lambda c: image_url(png(plots.upscale(plots.tile(c, ncols), zoom))), ncols, zoom)

    if a.flags.writeable:
        return by_content()
    return _SAME_ARRAY.get((id(a), ncols, zoom), lambda: (a, by_content()))[1]


def draw_digit(key: str, side: int = SIDE) -> np.ndarray | None:
    """A drawing canvas (white pen on black, as MNIST); the digit as a (28, 28) array in [0,1], or None if blank."""
    from streamlit_drawable_canvas import st_canvas  # registers its component: only inside a running page

    st.caption("Draw one digit with the mouse (or a finger), filling most of the box; "
               "the bin icon above the canvas clears it.")  # also gives the canvas's floating toolbar room
    result = st_canvas(stroke_width=STROKE, stroke_color="#ffffff", background_color="#000000", height=side,
                       width=side, drawing_mode="freedraw", return_image_data=True, key=key)
    rgba = result.image_data
    if rgba is None:
        return None
    try:
        return images.from_array(rgba[..., :3], name="the drawing")
    except images.ImageError:  # an empty canvas is not a mistake, just nothing drawn yet
        return None


def show_images(images, captions, width: int = 140) -> None:
    """A row of images with captions, scaled up without smoothing so pixels stay visible."""
    cols = st.columns(len(images))
    for col, img, cap in zip(cols, images, captions):
        one = plots.as_images(np.asarray(img)[None])[0]
        image(plots.upscale(one, width // one.shape[-1]), caption=cap, width=width, where=col)


def show_grid(images, ncols: int, width: int = 700, caption: str | None = None) -> None:
    """A mosaic of images, scaled up without smoothing."""
    tiles = plots.tile(images, ncols)
    mosaic = plots.upscale(tiles, width // tiles.shape[-1])
    image(mosaic, caption=caption)  # its own width, at most the column's
