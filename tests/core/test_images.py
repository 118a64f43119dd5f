"""Uploads and drawings -> 28x28 MNIST-like digits: polarity, cropping, scaling, centring, and refusals."""
import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageDraw
from scipy.ndimage import center_of_mass

from aeviz import images
from aeviz.images import ImageError


def _encode(img: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()


def _seven(size=(301, 157), ink="black", paper="white", mode="RGB") -> Image.Image:
    """A '7' drawn on paper, off-centre, on an odd-sized sheet."""
    img = Image.new(mode, size, paper)
    d = ImageDraw.Draw(img)
    d.line([(60, 30), (130, 30), (95, 140)], fill=ink, width=11)
    return img


def _check_digit(x: np.ndarray) -> None:
    assert x.shape == (28, 28) and x.dtype == np.float32
    assert x.min() == 0.0 and x.max() == pytest.approx(1.0)
    cy, cx = center_of_mass(x)
    assert abs(cy - 13.5) <= 1.0 and abs(cx - 13.5) <= 1.0
    rows, cols = np.nonzero(x > 0)
    assert max(np.ptp(rows), np.ptp(cols)) + 1 in (20, 21)  # the longer side fills MNIST's 20 px box
    assert x[0].max() == x[-1].max() == x[:, 0].max() == x[:, -1].max() == 0.0  # a dark margin all round


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    return images.from_bytes(_encode(_seven()), "seven.png")


def test_dark_on_light_is_inverted_cropped_scaled_and_centred(reference):
    _check_digit(reference)
    assert reference[13, 13] >= 0 and reference.mean() < 0.35  # mostly dark background: the ink became light


def test_light_on_dark_keeps_its_polarity(reference):
    x = images.from_bytes(_encode(_seven(ink="white", paper="black")), "seven.png")
    assert np.abs(x - reference).mean() < 0.02


@pytest.mark.parametrize("convert", [
    lambda im: _encode(im.convert("RGBA")),
    lambda im: _encode(im.convert("P")),
    lambda im: _encode(im.convert("L")),
    lambda im: _encode(im, "JPEG"),
    lambda im: _encode(im, "GIF"),
    lambda im: _encode(Image.fromarray(np.asarray(im.convert("L")).astype(np.uint16) * 257)),  # 16-bit grey
    lambda im: _encode(im.convert("1")),
], ids=["rgba", "palette", "grey", "jpeg", "gif", "16-bit", "1-bit"])
def test_every_mode_and_format_gives_the_same_digit(convert, reference):
    x = images.from_bytes(convert(_seven()), "seven")
    _check_digit(x)
    assert np.abs(x - reference).mean() < 0.05


def test_16_bit_png_really_is_16_bit():
    data = _encode(Image.fromarray(np.full((9, 9), 40000, np.uint16)))
    assert Image.open(io.BytesIO(data)).mode.startswith("I")


def test_transparent_sheet_uses_opacity_as_ink(reference):
    img = _seven(ink=(200, 30, 30, 255), paper=(255, 255, 255, 0), mode="RGBA")  # red pen, see-through paper
    x = images.from_bytes(_encode(img), "seven.png")
    _check_digit(x)
    assert np.abs(x - reference).mean() < 0.02


def test_aspect_ratio_is_kept():
    img = Image.new("L", (500, 90), 0)
    ImageDraw.Draw(img).rectangle([100, 20, 399, 49], fill=255)  # a 300 x 30 bar
    x = images.from_bytes(_encode(img), "bar.png")
    rows, cols = np.nonzero(x > 0.5)
    assert np.ptp(cols) + 1 == 20 and np.ptp(rows) + 1 == 2


def test_photo_sized_input_is_shrunk_first(reference):
    big = _seven().resize((3010, 1570))
    _check_digit(images.from_bytes(_encode(big, "JPEG"), "photo.jpg"))


def test_drawing_array_uses_the_same_conversion(reference):
    canvas = np.zeros((224, 224, 4), np.uint8)
    canvas[..., 3] = 255
    canvas[60:170, 100:118, :3] = 255  # a white '1' on black, as the canvas sends it
    x = images.from_array(canvas)
    _check_digit(x)
    floats = images.from_array(canvas[..., 0] / 255.0)
    assert np.allclose(x, floats)


def _bad(data: bytes) -> str:
    with pytest.raises(ImageError) as err:
        images.from_bytes(data, "digit.png")
    return str(err.value)


def test_zero_byte_file():
    assert _bad(b"") == "digit.png is empty (0 bytes); upload a PNG or JPEG picture of a digit."


def test_not_an_image():
    assert _bad(b"hello, this is a text file\n" * 10) == \
        "digit.png is not a picture that can be read; upload a PNG or JPEG."


def test_corrupt_and_truncated_files():
    good = _encode(_seven())
    expected = "digit.png is damaged or cut short and cannot be decoded; upload it again."
    assert _bad(good[: len(good) // 2]) == expected
    broken = bytearray(good)
    broken[200:260] = b"\xff" * 60  # scribble over the compressed pixels
    assert _bad(bytes(broken)) == expected


def test_formats_needing_outside_programs_are_refused():
    assert "not a picture that can be read" in _bad(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n")


def test_huge_file_is_refused_unread(monkeypatch):
    monkeypatch.setattr(images, "MAX_BYTES", 1000)
    assert _bad(b"\0" * 2048) == "digit.png is 0.0 MB; pictures must be at most 0 MB."


def _png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height pixels (a decompression bomb's calling card)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    end = struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk)) + end


def test_too_many_pixels_is_refused_before_decoding():
    assert _bad(_png_claiming(6000, 6000)) == \
        "digit.png is 6000x6000 pixels; pictures must have at most 30 million pixels."
    assert "too large to decode safely" in _bad(_png_claiming(100_000, 100_000))


def test_blank_picture_shows_no_digit():
    assert _bad(_encode(Image.new("RGB", (64, 40), (120, 200, 90)))) == \
        "digit.png is one flat colour, so it shows no digit; draw or upload a digit."
    with pytest.raises(ImageError, match="one flat colour"):
        images.from_array(np.zeros((224, 224, 4), np.uint8))


def test_wrong_array_shape():
    with pytest.raises(ImageError, match="expected a grey, RGB or RGBA picture"):
        images.from_array(np.zeros((5, 5, 2)))
