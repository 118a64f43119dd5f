"""plots: the one nearest-neighbour upscaling."""
import numpy as np

from aeviz import plots


def test_upscale_turns_each_pixel_into_a_block():
    img = np.arange(6, dtype=np.float32).reshape(2, 3)
    big = plots.upscale(img, 3)
    assert big.shape == (6, 9) and big.dtype == np.float32
    np.testing.assert_array_equal(big, np.kron(img, np.ones((3, 3), np.float32)))
    assert big[0:3, 3:6].tolist() == [[1.0] * 3] * 3


def test_upscale_keeps_leading_axes_and_never_shrinks():
    batch = np.random.default_rng(0).random((4, 1, 5, 5))
    assert plots.upscale(batch, 2).shape == (4, 1, 10, 10)
    np.testing.assert_array_equal(plots.upscale(batch[0, 0], 0), batch[0, 0])
    np.testing.assert_array_equal(plots.upscale(batch[0, 0], 1), batch[0, 0])
