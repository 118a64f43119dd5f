"""Any picture of a digit -> a 28x28 grey digit in [0,1], centred the way MNIST's were.

MNIST (LeCun et al.): light ink on black, the digit scaled so its longer side is 20 px (keeping its
aspect ratio, anti-aliased), then placed in a 28x28 field with its centre of mass at the centre.
"""
from __future__ import annotations

import io
import warnings

import numpy as np

MAX_BYTES = 10 * 2**20  # a phone photo is a few MB; more is not a digit someone drew
MAX_PIXELS = 30_000_000  # checked from the header, before decoding: refuses decompression bombs
WORK_SIDE = 1024  # bigger pictures are shrunk to this first: the result is 28 px anyway
FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF")  # raster formats Pillow decodes itself (no Ghostscript)
SIZE, BOX = 28, 20  # MNIST field and the box the digit is scaled into
MIN_CONTRAST = 0.05  # darkest-to-lightest difference below which a picture holds no digit
INK = 0.25  # share of the ink's peak above which a pixel counts for the bounding box


class ImageError(ValueError):
    """An upload or a drawing is not a usable digit; the message is one sentence for the UI."""


def from_bytes(data: bytes, name: str = "the file") -> np.ndarray:
    """A 28x28 float32 digit in [0,1] from the bytes of any image Pillow reads."""
    from PIL import Image, UnidentifiedImageError

    if len(data) == 0:
        raise ImageError(f"{name} is empty (0 bytes); upload a PNG or JPEG picture of a digit.")
    if len(data) > MAX_BYTES:
        raise ImageError(f"{name} is {len(data) / 2**20:.1f} MB; pictures must be at most {MAX_BYTES // 2**20} MB.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=FORMATS)  # reads the header only
    except UnidentifiedImageError:
        raise ImageError(f"{name} is not a picture that can be read; upload a PNG or JPEG.") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(f"{name} claims to be too large to decode safely; upload a smaller picture.") from None
    w, h = img.size
    if w * h > MAX_PIXELS:
        raise ImageError(f"{name} is {w}x{h} pixels; pictures must have at most "
                         f"{MAX_PIXELS // 1_000_000} million pixels.")
    try:
        img.draft("L", (WORK_SIDE, WORK_SIDE))  # JPEG decodes straight at a fraction of full size
        img.load()
    except Exception:  # decoders raise OSError, SyntaxError, zlib.error, ...: all mean the same to a student
        raise ImageError(f"{name} is damaged or cut short and cannot be decoded; upload it again.") from None
    return to_digit(grey(img), name)


def from_array(a, name: str = "the drawing") -> np.ndarray:
    """The same conversion for a picture already in memory: (H, W) grey or (H, W, 3|4) uint8 / [0,1] floats."""
    from PIL import Image

    a = np.asarray(a)
    if a.dtype != np.uint8:
        a = (np.clip(np.nan_to_num(a.astype(np.float64)), 0.0, 1.0) * 255).round().astype(np.uint8)
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)) or min(a.shape[:2]) == 0:
        raise ImageError(f"{name} has shape {a.shape}; expected a grey, RGB or RGBA picture.")
    return to_digit(grey(Image.fromarray(a)), name)


def grey(img) -> np.ndarray:
    """Brightness in [0,1] of a Pillow image of any mode and bit depth; with transparency, opacity is ink."""
    if img.mode == "P":
        img = img.convert("RGBA")
    img.thumbnail((WORK_SIDE, WORK_SIDE))
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        a = np.asarray(img, np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or (img.mode == "I" and a.max() > 255) else 255.0
        return np.clip(a / top, 0.0, 1.0) if img.mode != "F" else _stretch(a)
    if img.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        alpha = np.asarray(img.getchannel("A"), np.float64) / 255.0
        if alpha.min() < alpha.max():  # drawn on a transparent sheet: the opaque strokes are the digit
            return alpha
    return np.asarray(img.convert("L"), np.float64) / 255.0


def _stretch(a: np.ndarray) -> np.ndarray:
    lo, hi = np.nanmin(a), np.nanmax(a)
    return np.zeros_like(a) if not hi > lo else (a - lo) / (hi - lo)


def to_digit(g: np.ndarray, name: str = "the picture") -> np.ndarray:
    """Invert dark-on-light, crop to the ink, scale into 20 px, centre by mass in 28x28; float32 in [0,1]."""
    g = np.nan_to_num(np.asarray(g, np.float64))
    if g.max() - g.min() < MIN_CONTRAST:
        raise ImageError(f"{name} is one flat colour, so it shows no digit; draw or upload a digit.")
    border = np.concatenate([g[0], g[-1], g[:, 0], g[:, -1]])
    background = float(np.median(border))  # the edge of a picture is paper, not ink
    ink = (background - g) if background > 0.5 else (g - background)
    ink = np.clip(ink, 0.0, None) / max(float(ink.max()), 1e-12)
    if ink.max() <= 0:
        raise ImageError(f"{name} has no marks that stand out from its background; upload a clearer digit.")
    ink[ink < INK / 2] = 0.0  # paper texture and shadows are not strokes
    rows, cols = np.nonzero(ink > INK)
    ink = ink[rows.min(): rows.max() + 1, cols.min(): cols.max() + 1]
    return _centre(_fit_box(ink))


def _fit_box(ink: np.ndarray) -> np.ndarray:
    from skimage.transform import resize

    h, w = ink.shape
    scale = BOX / max(h, w)
    shape = (max(1, round(h * scale)), max(1, round(w * scale)))
    return np.clip(resize(ink, shape, order=1, anti_aliasing=scale < 1, mode="constant"), 0.0, 1.0)


def _centre(patch: np.ndarray) -> np.ndarray:
    from scipy.ndimage import center_of_mass

    h, w = patch.shape
    cy, cx = center_of_mass(patch)
    centre = (SIZE - 1) / 2
    top = int(np.clip(round(centre - cy), 0, SIZE - h))  # clipped so a lopsided digit is never cut off
    left = int(np.clip(round(centre - cx), 0, SIZE - w))
    out = np.zeros((SIZE, SIZE), np.float32)
    out[top: top + h, left: left + w] = patch
    return out / max(float(out.max()), 1e-12)
