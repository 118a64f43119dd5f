"""What a trained autoencoder is for: one module per "Use" page (anomaly, compare, compression, imputation,
regularizers, reduction, features, augmentation) and the latent-size sweep two of them share. Numpy in, numpy out;
never imports streamlit, the zoo, the benchmarks or the UI (tests/test_layers.py checks)."""
from __future__ import annotations

K_NEIGHBOURS = 5  # the k of every k-NN score the use pages show


def is_image_model(model) -> bool:
    """True for models of (C, H, W) images, the ones the image pages can use."""
    return len(model.config.input_shape) == 3
