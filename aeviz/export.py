"""`aeviz export`: a checkpoint becomes a short tutorial that trains the same model again, as a .py file in the
percent format (`# %%` cells, runs as a script, opens as a notebook in VS Code or Jupytext) or as an .ipynb.

The script uses the public API only (aeviz.load_dataset / aeviz.read_data, aeviz.config_for, aeviz.train,
aeviz.save, aeviz.load), then draws the latent map and some reconstructions with plotly and prints the model
card's figures beside the original's.
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path

from .config import ModelConfig, TrainConfig
from .io import load
from .models import Autoencoder

ALWAYS_MODEL = ("objective", "arch", "latent_dim", "hidden", "recon")  # spelled out even at their defaults
ALWAYS_TRAIN = ("epochs", "batch_size", "lr", "seed")
FIGURES = ("test_mse", "pca_mse", "mse_ratio")  # recomputed by the script; other stored figures are quoted


class ExportError(ValueError):
    """The checkpoint cannot be exported as asked; the message is one sentence."""


def _py(value) -> str:
    """A Python literal for a config value (tuples stay tuples)."""
    if isinstance(value, tuple):
        return "(" + ", ".join(_py(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    return repr(value)


def _kwargs(values: dict) -> str:
    return ", ".join(f"{k}={_py(v)}" for k, v in values.items())


def model_overrides(config: ModelConfig) -> dict:
    """What config_for needs besides the dataset to give back config (the input shape comes from the data)."""
    defaults = ModelConfig()
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config)
            if f.name in ALWAYS_MODEL or (f.name not in ("dataset", "input_shape")
                                          and getattr(config, f.name) != getattr(defaults, f.name))}


def train_recipe(model: Autoencoder, checkpoint: Path, recipes=()) -> tuple[TrainConfig, str]:
    """(the train config, a sentence saying where it comes from): stored, a zoo recipe, or read off the metrics.

    recipes are the zoo's (aeviz.zoo.ZOO, handed down by the CLI: the core does not import the zoo).
    """
    if getattr(model, "train_config", None) is not None:
        return model.train_config, "The training settings are the ones stored in the checkpoint."
    for recipe in recipes:
        if recipe.name == checkpoint.stem and recipe.config() == model.config:
            return recipe.train, (f"This is the zoo model `{recipe.name}`; its checkpoint does not store the "
                                  f"training settings, so they come from its recipe in `aeviz/zoo.py` (the zoo "
                                  f"also rounds the weights to float16 and trains on one thread).")
    m = model.metrics
    known = {k: m[k] for k in ALWAYS_TRAIN if k in m}
    known = {k: type(getattr(TrainConfig(), k))(v) for k, v in known.items()}
    missing = [k for k in ALWAYS_TRAIN if k not in known]
    sentence = ("The checkpoint does not store its training settings (it predates that): "
                + (f"{', '.join(known)} are read from its metrics; " if known else "")
                + (f"{', '.join(missing)} and " if missing else "")
                + "weight decay, normal classes and max_train are unknown and left at their defaults.")
    return TrainConfig(**known), sentence


def _md(*lines: str) -> tuple[str, str]:
    return "markdown", "\n".join(lines)


def _code(*lines: str) -> tuple[str, str]:
    return "code", "\n".join(lines)


def _data_cells(model: Autoencoder) -> list[tuple[str, str]]:
    c, pre = model.config, model.preprocessing or {}
    src = pre.get("source", {})
    if not c.dataset.startswith("user:"):
        return [_md("## 1. The data",
                    "",
                    f"The model was trained on the built-in dataset `{c.dataset}`. `aeviz.load_dataset` gives the same "
                    "fixed train/test split every time: `x_train`, `y_train`, `x_test`, `y_test` as torch tensors "
                    "in [0, 1]."),
                _code(f"data = aeviz.load_dataset({c.dataset!r})",
                      "print(data.description)",
                      'print(f"{len(data.x_train):,} training and {len(data.x_test):,} test samples of shape '
                      '{data.sample_shape}")')]
    name = c.dataset[len("user:"):]
    options = {k: v for k, v in pre.get("options", {}).items()}
    from .userdata import ReadOptions

    changed = ReadOptions(**{k: tuple(v) if isinstance(v, list) else v for k, v in options.items()}).changed()
    path = src.get("path") or src.get("file", "data.csv")
    where = ("If you moved the file, change `DATA_PATH`." if src.get("path") else
             "It was uploaded, so put the file beside this notebook.")
    scaler = pre.get("scaler", {}).get("type")
    scaling = {"standard-logistic": "Each feature is standardised with the training rows' mean and standard "
                                    "deviation, then squashed into (0, 1) by a logistic curve, because the decoder "
                                    "ends in a sigmoid; the scaler is stored in the checkpoint.",
               "divide": "Pixels are divided by 255, so they lie in [0, 1].",
               "minmax": "Values are scaled into [0, 1] with the training samples' minimum and maximum."}.get(scaler, "")
    return [_md("## 1. The data",
                "",
                f"The model was trained on your file `{src.get('file', path)}`, read as {pre.get('read_as', 'data')} "
                f"with the same options as then ({_kwargs(changed) or 'the defaults'}). {scaling} "
                f"The split is seeded, so the same file gives the same training and test samples. {where}",
                "",
                "`aeviz.register_user_dataset` makes it known as `" + c.dataset + "`, the name the config refers to."),
            _code(f"DATA_PATH = {path!r}",
                  f"data = aeviz.read_data(DATA_PATH, name={name!r}" + (f", {_kwargs(changed)})" if changed else ")"),
                  f"aeviz.register_user_dataset({name!r}, data, persist=False)",
                  f"if data.extras['preprocessing']['source']['sha256'] != {src.get('sha256', '')!r}:",
                  '    print("Note: this file differs from the one the model was trained on, so the figures will too.")',
                  "print(data.description)",
                  "for note in data.extras['notes']:",
                  '    print(" -", note)')]


def _map_cell(model: Autoencoder) -> tuple[str, str]:
    k = model.config.latent_dim
    lines = ["with torch.no_grad():",
             "    codes = model.encode(data.x_test).numpy()",
             "colour = [data.label_names[i] for i in data.y_test.tolist()] if data.label_names else data.y_test.numpy()"]
    if k > 2:
        lines += [f"codes = PCA(n_components=2, random_state=0).fit_transform(codes)  # {k} dimensions seen from "
                  "their two widest directions",
                  'fig = px.scatter(x=codes[:, 0], y=codes[:, 1], color=colour, opacity=0.7,',
                  '                 labels={"x": "PC 1 of z", "y": "PC 2 of z", "color": "label"},',
                  f'                 title="Latent map of the test set ({k}-d codes, PCA)")']
    elif k == 2:
        lines += ['fig = px.scatter(x=codes[:, 0], y=codes[:, 1], color=colour, opacity=0.7,',
                  '                 labels={"x": "z1", "y": "z2", "color": "label"}, title="Latent map of the test set")']
    else:
        lines += ['fig = px.histogram(x=codes[:, 0], color=colour, nbins=50, labels={"x": "z1", "color": "label"},',
                  '                   title="The one-number codes of the test set")']
    lines += ['fig.write_html(FIGURES / "latent-map.html", include_plotlyjs="directory")', "fig"]
    return _code(*lines)


def _recon_cell(model: Autoencoder) -> tuple[str, str]:
    shape, pre = model.config.input_shape, model.preprocessing or {}
    lines = ["x = data.x_test[:8]", "with torch.no_grad():", "    x_hat = model(x)"]
    if len(shape) == 3 and shape[0] == 1:
        lines += ["top = np.concatenate(list(x[:, 0].numpy()), axis=1)  # eight test images side by side",
                  "bottom = np.concatenate(list(x_hat[:, 0].numpy()), axis=1)  # their reconstructions",
                  'fig = px.imshow(np.concatenate([top, bottom]), color_continuous_scale="gray", zmin=0, zmax=1,',
                  '                title="Test images (top) and their reconstructions (bottom)")']
    elif len(shape) == 3:
        lines += ["top = np.concatenate(list(x.permute(0, 2, 3, 1).numpy()), axis=1)",
                  "bottom = np.concatenate(list(x_hat.permute(0, 2, 3, 1).numpy()), axis=1)",
                  "rgb = (255 * np.concatenate([top, bottom])[..., :3]).astype(np.uint8)",
                  'fig = px.imshow(rgb, title="Test images (top) and their reconstructions (bottom)")']
    elif len(shape) == 2:
        lines += ['fig = make_subplots(rows=4, cols=1, shared_xaxes=True)',
                  "for i in range(4):",
                  '    fig.add_scatter(y=x[i, :, 0].numpy(), name="test series", line={"color": "grey"},'
                  ' showlegend=i == 0, row=i + 1, col=1)',
                  '    fig.add_scatter(y=x_hat[i, :, 0].numpy(), name="reconstruction", line={"color": "crimson"},'
                  ' showlegend=i == 0, row=i + 1, col=1)',
                  'fig.update_layout(title="Four test series (first feature) and their reconstructions")']
    else:
        if pre.get("scaler", {}).get("type") == "standard-logistic":
            lines += ["# back to the file's units with the scaler stored beside the model",
                      "x, x_hat = unscale(x.numpy(), model.preprocessing), unscale(x_hat.numpy(), model.preprocessing)",
                      "columns = model.preprocessing['columns']"]
            units = "in the file's units"
        else:
            lines += ["x, x_hat = x.numpy(), x_hat.numpy()", "columns = [f'x{j + 1}' for j in range(x.shape[1])]"]
            units = "scaled to [0, 1]"
        lines += ['fig = make_subplots(rows=3, cols=1, shared_xaxes=True)',
                  "for i in range(3):",
                  '    fig.add_scatter(x=columns, y=x[i], name="test row", mode="lines+markers",'
                  ' line={"color": "grey"}, showlegend=i == 0, row=i + 1, col=1)',
                  '    fig.add_scatter(x=columns, y=x_hat[i], name="reconstruction", mode="lines+markers",'
                  ' line={"color": "crimson", "dash": "dash"}, showlegend=i == 0, row=i + 1, col=1)',
                  f'fig.update_layout(title="Three test rows ({units}) and their reconstructions")']
    lines += ['fig.write_html(FIGURES / "reconstructions.html", include_plotlyjs="directory")', "fig"]
    return _code(*lines)


def _figures_cell(model: Autoencoder) -> tuple[str, str]:
    stored = {k: v for k, v in (model.metrics or {}).items()
              if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}
    original = repr({k: stored[k] for k in FIGURES if k in stored})
    others = {k: v for k, v in stored.items() if k not in FIGURES}
    lines = [f"ORIGINAL = {original}  # read from the checkpoint when this notebook was written",
             "x = data.x_test",
             "with torch.no_grad():",
             "    errors = (model(x) - x).double().square().flatten(1).mean(1).numpy()  # per test sample",
             "flat_train, flat_test = data.x_train.flatten(1).numpy(), x.flatten(1).numpy()",
             "pca = PCA(n_components=model.config.latent_dim, random_state=0).fit(flat_train)",
             "pca_errors = ((pca.inverse_transform(pca.transform(flat_test)) - flat_test) ** 2).mean(1)",
             "figures = {'test_mse': errors.mean(), 'pca_mse': pca_errors.mean(), "
             "'mse_ratio': errors.mean() / pca_errors.mean()}",
             "print(f\"{'figure':<10} {'original':>10} {'this run':>10}\")",
             "for key, value in figures.items():",
             "    print(f\"{key:<10} {ORIGINAL.get(key, float('nan')):>10.4g} {value:>10.4g}\")",
             "if len(data.y_train.unique()) == 1 and (data.y_test > 0).any():  # trained on normal samples only",
             "    from sklearn.metrics import roc_auc_score",
             "",
             "    print(f\"AUROC of the reconstruction error: {roc_auc_score(data.y_test.numpy() > 0, errors):.3f} \"",
             "          f\"(PCA's: {roc_auc_score(data.y_test.numpy() > 0, pca_errors):.3f})\")"]
    if others:
        lines += [f"OTHER = {others!r}  # the original's other figures, as stored",
                  "for key, value in OTHER.items():",
                  "    print(f\"{key:<18} {value:.4g}\")"]
    return _code(*lines)


def notebook_cells(model: Autoencoder, checkpoint: Path, stem: str, recipes=()) -> list[tuple[str, str]]:
    """The tutorial as (kind, source) cells, kind 'markdown' or 'code'; recipes: see train_recipe."""
    c = model.config
    tc, provenance = train_recipe(model, checkpoint, recipes)
    reproduced = f"{stem}-reproduced.safetensors"
    uses_unscale = len(c.input_shape) == 1 and (model.preprocessing or {}).get("scaler", {}).get("type") == \
        "standard-logistic"
    imports = ["from pathlib import Path", "", "import numpy as np", "import plotly.express as px", "import torch",
               "from plotly.subplots import make_subplots", "from sklearn.decomposition import PCA", "", "import aeviz"]
    if uses_unscale:
        imports.append("from aeviz.userdata import unscale")
    imports += ["", f"FIGURES = Path({stem + '-figures'!r})  # the plots are also written here as HTML",
                "FIGURES.mkdir(exist_ok=True)"]
    return [
        _md(f"# Train *{c.label}* on `{c.dataset}` again",
            "",
            f"Written by `aeviz export` from `{checkpoint.name}`. Step by step, this notebook loads the same data, "
            "builds the same model config, trains it with the same seed and settings, saves and reloads the "
            "checkpoint, then draws the latent map and some reconstructions and prints the model card's figures "
            "beside the original's. Run the cells top to bottom, or the whole file with `python`.",
            "",
            "On the same machine and aeviz version the figures match the original's; on another CPU or torch "
            "version they come out close, not equal, because floating-point sums depend on both."),
        _code(*imports),
        *_data_cells(model),
        _md("## 2. The model config",
            "",
            "`aeviz.config_for` fills in what the data decide (the input shape); the rest are this model's "
            "settings. A `ModelConfig` is frozen: the same config builds the same network."),
        _code(f"config = aeviz.config_for({c.dataset!r}, {_kwargs(model_overrides(c))})",
              "print(config)",
              f"print('Same config as the checkpoint:', config == aeviz.ModelConfig(**{dataclasses.asdict(c)!r}))"),
        _md("## 3. Train",
            "",
            f"{provenance} The seed fixes the initial weights and the order of the batches."),
        _code(f"train_config = aeviz.TrainConfig({_kwargs(_train_kwargs(tc))})",
              "model, history = aeviz.train(config, train_config, data)",
              "print(history.message)"),
        _md("## 4. Save and load",
            "",
            "A checkpoint is one `.safetensors` file: the weights, plus the config, the training settings and the "
            "data's preprocessing as JSON metadata. aeviz never unpickles anything, so loading a file cannot run code."),
        _code(f"path = aeviz.save(model, {reproduced!r}, history=history.to_dict(), train_config=train_config,",
              "                  preprocessing=data.extras.get('preprocessing'))",
              "model = aeviz.load(path)",
              'print(f"Wrote {path}: {model.config.label}, {model.n_params:,} parameters")'),
        _md("## 5. The latent map",
            "",
            "Every test sample squeezed to its code z. Samples the model finds alike land close together; the colour "
            "is the label, which the model never saw."),
        _map_cell(model),
        _md("## 6. Reconstructions",
            "",
            "What comes back out of the decoder: the details that did not fit through the code are lost."),
        _recon_cell(model),
        _md("## 7. The model card's figures",
            "",
            "Test MSE is the mean squared error per value on the test set. PCA with as many components as the "
            "model has latent units is the linear baseline; a ratio below 1 means the autoencoder beats it."),
        _figures_cell(model),
    ]


def _train_kwargs(tc: TrainConfig) -> dict:
    defaults = TrainConfig()
    return {f.name: getattr(tc, f.name) for f in dataclasses.fields(tc)
            if f.name in ALWAYS_TRAIN or getattr(tc, f.name) != getattr(defaults, f.name)}


def to_percent(cells: list[tuple[str, str]]) -> str:
    """A .py in the percent format: '# %% [markdown]' cells as comments, '# %%' cells as code."""
    parts = []
    for kind, source in cells:
        if kind == "markdown":
            parts.append("# %% [markdown]\n" + "\n".join(f"# {ln}".rstrip() for ln in source.splitlines()))
        else:
            parts.append("# %%\n" + source)
    return "\n\n".join(parts) + "\n"


def to_notebook(cells: list[tuple[str, str]]):
    """An nbformat v4 notebook with the same cells."""
    import nbformat

    make = {"markdown": nbformat.v4.new_markdown_cell, "code": nbformat.v4.new_code_cell}
    nb = nbformat.v4.new_notebook(cells=[make[kind](source) for kind, source in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def export(checkpoint: str | Path, out: str | Path, recipes=()) -> Path:
    """Write out (NAME.py or NAME.ipynb): a tutorial that trains the checkpoint's model again; a zoo model's
    training settings come from its recipe among recipes (aeviz.zoo.ZOO)."""
    checkpoint, out = Path(checkpoint), Path(out)
    if out.suffix not in (".py", ".ipynb"):
        raise ExportError(f"The export must be a .py or an .ipynb file, not '{out.name}'.")
    model = load(checkpoint)
    cells = notebook_cells(model, checkpoint, out.stem, recipes)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".py":
        out.write_text(to_percent(cells), encoding="utf-8")
    else:
        out.write_bytes(_validated(to_notebook(cells)))
    return out


def notebook_bytes(model: Autoencoder, checkpoint: str | Path, stem: str | None = None, recipes=()) -> bytes:
    """The .ipynb for a model in memory (the app's "Export as a notebook" button), validated with nbformat.

    checkpoint names the model's file (its stem finds a zoo recipe among recipes); stem names what it writes."""
    checkpoint = Path(checkpoint)
    return _validated(to_notebook(notebook_cells(model, checkpoint, stem or checkpoint.stem, recipes)))


def _validated(nb) -> bytes:
    import nbformat

    nbformat.validate(nb)
    return nbformat.writes(nb).encode("utf-8")
