"""Rate and distortion of codes: bytes per image for k numbers at b bits, uniform quantisation, and JPEG as a reference."""
from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from .. import analysis
from ..models import Autoencoder

FLOAT_BITS = 32  # an unquantised code value is a float32
BITS = (FLOAT_BITS, 8, 4)  # float32, 256 levels, 16 levels: where quantisation starts to show
JPEG_QUALITIES = (1, 5, 10, 20, 30, 50, 70, 90)


def code_bytes(k: int, bits: int) -> float:
    """Bytes per image for a code of k values at bits each (the decoder or basis is shared, so not counted)."""
    return k * bits / 8


@dataclass(frozen=True)
class Quantizer:
    """Uniform scalar quantiser, one per code dimension, between the training codes' min and max."""

    lo: np.ndarray
    hi: np.ndarray
    bits: int

    @classmethod
    def fit(cls, z_train, bits: int = 8) -> Quantizer:
        """Range of each dimension from the training codes."""
        z = np.asarray(z_train, np.float64)
        return cls(z.min(0), z.max(0), bits)

    @property
    def levels(self) -> int:
        """Number of values each dimension can take."""
        return 2 ** self.bits

    @property
    def step(self) -> np.ndarray:
        """Distance between neighbouring levels per dimension; the round-trip error is at most half of it."""
        return np.maximum(self.hi - self.lo, 1e-12) / (self.levels - 1)

    def encode(self, z) -> np.ndarray:
        """Integer level of each value (values outside the training range are clipped to it)."""
        q = np.rint((np.asarray(z, np.float64) - self.lo) / self.step)
        return np.clip(q, 0, self.levels - 1).astype(np.uint32)

    def decode(self, q) -> np.ndarray:
        """Code values back from their levels."""
        return (self.lo + np.asarray(q, np.float64) * self.step).astype(np.float32)

    def round_trip(self, z) -> np.ndarray:
        """decode(encode(z)): what the receiver sees."""
        return self.decode(self.encode(z))


def _point(method: str, k: int, bits: int, nbytes: float, x, x_hat, **extra) -> dict:
    mse = float(analysis.per_sample_mse(x, x_hat).mean())
    return {"method": method, "k": k, "bits": bits, "bytes": float(nbytes), "mse": mse,
            "psnr": analysis.psnr(x, x_hat), **extra}


def autoencoder_points(model: Autoencoder, x_train, x_test, bits=BITS) -> tuple[list[dict], dict]:
    """Rate-distortion points of an autoencoder at each bit depth, and the reconstructions by bit depth."""
    k = model.config.latent_dim
    z = analysis.embed(model, x_test)
    z_train = analysis.embed(model, x_train)
    points, recon = [], {}
    for b in bits:
        zq = z if b >= FLOAT_BITS else Quantizer.fit(z_train, b).round_trip(z)
        recon[b] = analysis.decode(model, zq)
        points.append(_point("autoencoder", k, b, code_bytes(k, b), x_test, recon[b]))
    return points, recon


def pca_points(x_train, x_test, k: int, bits=BITS) -> tuple[list[dict], dict]:
    """The same for PCA with k components: the coefficients are the code, quantised the same way."""
    pca = analysis.fit_pca(x_train, k)
    flat = np.asarray(x_test).reshape(len(x_test), -1)
    z, z_train = pca.transform(flat), pca.transform(np.asarray(x_train).reshape(len(x_train), -1))
    points, recon = [], {}
    for b in bits:
        zq = z if b >= FLOAT_BITS else Quantizer.fit(z_train, b).round_trip(z)
        recon[b] = np.clip(pca.inverse_transform(zq), 0, 1).reshape(np.shape(x_test))
        points.append(_point("PCA", k, b, code_bytes(k, b), x_test, recon[b]))
    return points, recon


def jpeg_encode(img, quality: int, tables: bool = True) -> bytes:
    """A greyscale image in [0,1] as JPEG bytes; tables=False writes the abbreviated stream without its tables."""
    from PIL import Image

    buf = io.BytesIO()
    pil = Image.fromarray((np.clip(img, 0, 1) * 255).round().astype(np.uint8), "L")
    pil.save(buf, "JPEG", quality=int(quality), **({} if tables else {"streamtype": 2}))
    return buf.getvalue()


def jpeg_decode(data: bytes) -> np.ndarray:
    """A JPEG file back to a greyscale image in [0,1]."""
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)).convert("L"), np.float32) / 255.0


def jpeg_points(x_test, qualities=JPEG_QUALITIES) -> tuple[list[dict], dict]:
    """JPEG at each quality: mean real file size, and the size without the tables a decoder could keep."""
    images = np.asarray(x_test, np.float32).reshape(len(x_test), *np.shape(x_test)[-2:])
    points, recon = [], {}
    for q in qualities:
        files = [jpeg_encode(img, q) for img in images]
        bare = np.mean([len(jpeg_encode(img, q, tables=False)) for img in images])
        recon[q] = np.stack([jpeg_decode(f) for f in files]).reshape(np.shape(x_test))
        points.append(_point("JPEG", 0, 0, np.mean([len(f) for f in files]), x_test, recon[q],
                             quality=q, bytes_without_tables=float(bare)))
    return points, recon


def nearest_at_or_below(points: list[dict], nbytes: float, key: str = "bytes") -> dict:
    """The point with the most bytes not above nbytes (the smallest one if all are above)."""
    below = [p for p in points if p[key] <= nbytes]
    return max(below, key=lambda p: p[key]) if below else min(points, key=lambda p: p[key])
