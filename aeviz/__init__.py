"""aeviz: an interactive lab for learning autoencoders. This package never imports streamlit."""
from .threads import limit_before_torch

limit_before_torch()  # must run before torch creates its thread pools

from .config import ConfigError, ModelConfig, TrainConfig  # noqa: E402
from .data import DatasetUnavailable  # noqa: E402
from .data import load as load_dataset  # noqa: E402
from .io import CheckpointError, load, pretrained, save  # noqa: E402
from .models import Autoencoder, build  # noqa: E402
from .train import History, Progress, train  # noqa: E402
from .userdata import DataError, ReadOptions, read_data, register_user_dataset  # noqa: E402

__all__ = ["Autoencoder", "CheckpointError", "ConfigError", "DatasetUnavailable", "History", "ModelConfig",
           "Progress", "TrainConfig", "build", "load", "pretrained", "save", "train", "config_for",
           "DataError", "ReadOptions", "load_dataset", "read_data", "register_user_dataset"]
__version__ = "0.1.0"


def config_for(dataset: str = "mnist", **overrides) -> ModelConfig:
    """A ModelConfig whose input shape and reconstruction loss fit a dataset, plus any overrides."""
    from .data import load as load_data
    from .nets import ARCHS

    d = load_data(dataset)
    arch = ARCHS.get(overrides.get("arch", "mlp"))  # an unknown name is ModelConfig's ConfigError, below
    base = {"dataset": dataset, "input_shape": d.sample_shape, "recon": d.recon, "hidden": arch.hidden if arch else ()}
    return ModelConfig(**{**base, **overrides})
