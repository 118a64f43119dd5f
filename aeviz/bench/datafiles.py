"""Small generated files of each kind a student can upload (a table, arrays, a zip of images, a time series), for the
tests, the browser test and the upload measurement. Seeded: the same call gives the same bytes."""
from __future__ import annotations

import io
import zipfile

import numpy as np


def csv_bytes(rows: list[list], header: list[str] | None = None, sep: str = ",") -> bytes:
    """Rows (and a header) as CSV text."""
    lines = [sep.join(header)] if header else []
    lines += [sep.join(str(v) for v in r) for r in rows]
    return ("\n".join(lines) + "\n").encode()


def table_csv(n: int = 60, seed: int = 0) -> bytes:
    """Four measurements and a label column 'kind' (a, b, c), each class shifted: three clusters."""
    rng = np.random.default_rng(seed)
    kinds = ["a", "b", "c"]
    rows = [[*np.round(rng.normal(size=4) + 2 * (i % 3), 3), kinds[i % 3]] for i in range(n)]
    return csv_bytes(rows, ["width", "height", "depth", "weight", "kind"])


def wide_table_csv(n: int = 10_000, d: int = 30, seed: int = 0) -> bytes:
    """n rows of d numeric features (named f1 ... fd) in a few correlated groups, and a label column 'group'."""
    rng = np.random.default_rng(seed)
    group = rng.integers(0, 4, n)
    x = rng.normal(size=(n, 3)) @ rng.normal(size=(3, d)) + group[:, None] + 0.3 * rng.normal(size=(n, d))
    rows = [[*np.round(r, 4), f"g{g}"] for r, g in zip(x, group)]
    return csv_bytes(rows, [f"f{j + 1}" for j in range(d)] + ["group"])


def arrays_npz(n: int = 60, d: int = 6) -> bytes:
    """x (n, d) in two clusters and y (n,) their labels, as np.savez writes them."""
    rng = np.random.default_rng(1)
    buf = io.BytesIO()
    np.savez(buf, x=rng.normal(size=(n, d)) + 2 * (np.arange(n)[:, None] % 2), y=np.arange(n) % 2)
    return buf.getvalue()


def png(side: int, value: int, seed: int | None = None) -> bytes:
    """A side x side grey PNG with a square of the opposite shade: in the middle, or (with a seed) of a random size
    at a random place."""
    from PIL import Image

    buf = io.BytesIO()
    img = np.full((side, side), value, np.uint8)
    if seed is None:
        top, left, size = side // 4, side // 4, side // 2
    else:
        rng = np.random.default_rng(seed)
        size = int(rng.integers(max(1, side // 4), side // 2 + 1))
        top, left = rng.integers(0, side - size + 1, 2)
    img[top: top + size, left: left + size] = 255 - value
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    """A zip of named members (deflated)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def images_zip(n: int = 24, sides=(8,)) -> bytes:
    """n PNGs in two folders (light/, dark/: the labels), of the given sides in turn, each square somewhere else."""
    return zip_bytes({f"{'dark' if i % 2 else 'light'}/{i}.png": png(sides[i % len(sides)], 40 if i % 2 else 200, i)
                      for i in range(n)})


def series_csv(n: int = 40, steps: int = 16) -> bytes:
    """n sine waves of three speeds, one per line, no header."""
    t = np.arange(steps)
    return csv_bytes([np.round(np.sin(t / (2 + i % 3) + i), 3).tolist() for i in range(n)])
