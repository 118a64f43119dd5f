"""The `aeviz` console script: train, info, datasets, bench, pretrain, export."""
from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import os
import re
import subprocess
import sys
import typing
from pathlib import Path

from . import __version__
from .config import ARCHS, CELLS, NOISES, OBJECTIVES, RECONS, SPARSITIES, ConfigError, ModelConfig, TrainConfig
from .data import DatasetUnavailable
from .export import ExportError
from .io import PRETRAINED, CheckpointError
from .serve import ServeError
from .userdata import CHANNELS, KINDS, MISSING, DataError, ReadOptions

CHOICES = {"objective": OBJECTIVES, "arch": ARCHS, "recon": RECONS, "rnn_cell": CELLS,
           "sparsity": SPARSITIES, "noise": NOISES, "kind": KINDS, "missing": MISSING, "channels": CHANNELS}
FROM_DATASET = {"input_shape", "recon", "hidden"}  # aeviz.config_for fills these in from the dataset and arch


def _field_comments(cls) -> dict[str, str]:
    """Each field's trailing comment in the dataclass source: the one place its meaning is written."""
    return dict(re.findall(r"^\s+(\w+):[^#\n]*#\s*(.+)$", inspect.getsource(cls), re.M))


def _add_config_flags(parser: argparse.ArgumentParser, cls) -> None:
    """One flag per dataclass field, so the CLI never drifts from the configs."""
    group = parser.add_argument_group(f"{cls.__name__} options")
    hints, comments = typing.get_type_hints(cls), _field_comments(cls)
    for f in dataclasses.fields(cls):
        kind = hints[f.name]
        default = "from the dataset and arch" if f.name in FROM_DATASET else f.default
        kw = {"dest": f.name, "default": None, "help": f"{comments.get(f.name, '')} (default: {default})"}
        if typing.get_origin(kind) is tuple:
            kw.update(nargs="+", type=typing.get_args(kind)[0], metavar="N")
        else:
            kw.update(type=kind, choices=CHOICES.get(f.name))
        group.add_argument("--" + f.name.replace("_", "-"), **kw)


def _given(args: argparse.Namespace, cls) -> dict:
    return {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if getattr(args, f.name) is not None}


class _ProgressBar:
    """A tqdm bar per epoch showing the running loss; the epoch's test loss when it ends."""

    def __init__(self, epochs: int):
        self.epochs, self.bar = epochs, None

    def __call__(self, p) -> None:
        from tqdm import tqdm

        if self.bar is None:
            self.bar = tqdm(total=p.total_steps // self.epochs, desc=f"epoch {p.epoch}/{self.epochs}", unit="step")
        if not p.epoch_end:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{p.terms['loss']:.4g}", refresh=False)
            return
        losses = {split: curve["loss"][-1] for split, curve in (("train", p.history.train), ("test", p.history.test))
                  if curve.get("loss")}
        self.bar.set_postfix({k: f"{v:.4g}" for k, v in losses.items()})
        self.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def checkpoint_metrics(model, data, hist, tc: TrainConfig) -> dict:
    """The model card (aeviz.zoo.model_card), the training run's settings and clocks, and the test loss terms."""
    from .train import evaluate
    from .zoo import model_card

    return {"params": model.n_params, "train_seconds": round(hist.seconds, 2), "epochs": len(hist.epochs),
            "lr": tc.lr, "batch_size": tc.batch_size, "seed": tc.seed, **model_card(model, data),
            **{f"test_{k}": v for k, v in evaluate(model, data.x_test).items()},
            "samples_per_s": round(hist.samples_per_s, 1), "status": hist.status}


def _user_data(args: argparse.Namespace, model_kw: dict, main: bool = True) -> None:
    """--data PATH: read the file, register it as user:STEM (kept under AEVIZ_DATA) and train on it.

    Under torchrun every process reads the file; only rank 0 (main) writes it to AEVIZ_DATA and prints."""
    from .userdata import read_data, register_user_dataset

    if "dataset" in model_kw:
        raise DataError("Choose --dataset (a built-in) or --data (your file), not both.")
    data = read_data(args.data, **_given(args, ReadOptions))
    model_kw["dataset"] = register_user_dataset(data.name, data, persist=main)
    if main:
        print(data.description)
        for note in data.extras["notes"]:
            print(f"  {note}")


def _without_nproc(argv: list[str]) -> list[str]:
    out, skip = [], False
    for a in argv:
        if not skip and a != "--nproc" and not a.startswith("--nproc="):
            out.append(a)
        skip = a == "--nproc"
    return out


def _torchrun(args: argparse.Namespace) -> int:
    """aeviz train --nproc N: run this same command in N processes under torchrun on this machine."""
    batch = args.batch_size or TrainConfig().batch_size
    if batch % args.nproc:
        raise ConfigError(f"The batch size {batch} does not split evenly across {args.nproc} processes; "
                          f"choose a multiple of {args.nproc}.")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={args.nproc}",
           "-m", "aeviz", *_without_nproc(args.argv)]  # torchrun would take --nproc for its --nproc-per-node
    proc = subprocess.Popen(cmd)
    try:
        return proc.wait()
    except KeyboardInterrupt:  # Ctrl-C reached torchrun too: it stops its workers; wait for that
        return proc.wait(timeout=60)


def cmd_train(args: argparse.Namespace) -> int:
    """Train one model and write its checkpoint (on a built-in dataset, or on your file with --data)."""
    from .train import distributed, launched_world

    if args.nproc > 1 and launched_world() == 1:
        return _torchrun(args)
    with distributed(args.device) as (group, device):
        return _train(args, group, device)


def _train(args: argparse.Namespace, group, device) -> int:
    from . import config_for, io
    from .data import load
    from .train import train

    model_kw = _given(args, ModelConfig)
    if args.data:
        _user_data(args, model_kw, group.main)
    elif _given(args, ReadOptions):
        flag = "--" + next(iter(_given(args, ReadOptions))).replace("_", "-")
        raise DataError(f"{flag} is an option for your own file: add --data PATH.")
    mc = config_for(model_kw.pop("dataset", "mnist"), **model_kw)
    tc = TrainConfig(**_given(args, TrainConfig))
    data = load(mc.dataset)
    stem = mc.dataset.replace(":", "-")  # user:NAME -> user-NAME, a file name on every system
    out = Path(args.out or f"{stem}-{mc.objective}-{mc.arch}-z{mc.latent_dim}.safetensors")
    where = f" on {device}"
    if group.world > 1:
        where = f" in {group.world} processes ({group.backend} on {device.type}), a global batch of {tc.batch_size}"
    if group.main:
        print(f"Training {mc.label} on {mc.dataset} for {tc.epochs} epochs{where}.")
    bar = _ProgressBar(tc.epochs) if group.main else None
    try:
        model, hist = train(mc, tc, data, callback=bar, device=device)
    finally:
        if bar:
            bar.close()
    if not group.main:
        return 1 if hist.status == "diverged" else 0
    metrics = checkpoint_metrics(model, data, hist, tc)
    io.save(model, out, metrics, hist.to_dict(), train_config=tc, preprocessing=data.extras.get("preprocessing"))
    print(hist.message)
    print(f"Wrote {out} (test MSE per value {metrics['test_mse']:.4g}).")
    return 1 if hist.status == "diverged" else 0


def _value(v) -> str:
    if isinstance(v, float):
        return f"{v:,.0f}" if abs(v) >= 1e4 else f"{v:.4g}"
    return str(v)


def cmd_info(args: argparse.Namespace) -> int:
    """Print a checkpoint's config, metrics and training summary."""
    from .io import load

    model = load(args.file)  # checks the weights against the config, not just the metadata
    c = model.config
    print(f"{args.file}: {c.label}, trained on {c.dataset}, {model.n_params:,} parameters")
    print("config:")
    for k, v in dataclasses.asdict(c).items():
        print(f"  {k:<20} {_value(v)}")
    print("metrics:")
    for k, v in model.metrics.items():
        print(f"  {k:<20} {_value(v)}")
    if model.train_config is not None:
        print("train config:")
        for k, v in dataclasses.asdict(model.train_config).items():
            print(f"  {k:<20} {_value(v)}")
    pre = model.preprocessing
    if pre:
        src = pre.get("source", {})
        print(f"data: {src.get('file') or src.get('builtin', '?')}, read as {pre.get('read_as', '?')}, "
              f"scaler {pre.get('scaler', {}).get('type', '?')}")
    h = model.history
    if h:
        print(f"history: {h.get('status', '?')} after {len(h.get('epochs', []))} epochs; {h.get('message', '')}")
        for split in ("train", "test"):
            curve = h.get(split, {}).get("loss")
            if curve:
                print(f"  {split} loss {_value(curve[0])} -> {_value(curve[-1])}")
    return 0


def cmd_datasets(args: argparse.Namespace) -> int:
    """List the registered datasets: name, whether it works offline, description."""
    from .data import REGISTRY

    print(f"{'name':<14} {'offline':<8} description")
    for name, entry in REGISTRY.items():
        print(f"{name:<14} {'yes' if entry.offline else 'no':<8} {entry.description}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    """Run one bench; with --json, its figures end the output as one JSON object."""
    params = inspect.signature(args.bench).parameters
    result = args.bench(**{name: getattr(args, name) for name in params})
    if args.json:
        print(json.dumps(result))
    return 0


def cmd_pretrain(args: argparse.Namespace) -> int:
    """Train the pretrained zoo into --out."""
    from . import zoo  # lazily: only this subcommand needs it

    if args.views_only:
        for path in zoo.refresh_views(Path(args.out), args.only):
            print(f"Wrote {path}.")
        return 0
    zoo.build_zoo(Path(args.out), args.only, jobs=args.jobs, device=args.device)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the app to a class: N Streamlit replicas behind HAProxy (cookie affinity), with a shared room store."""
    from .serve import Options, serve

    return serve(Options(args.replicas, args.port, args.address, args.app, args.logs, args.redis_data, args.restart))


def cmd_export(args: argparse.Namespace) -> int:
    """Write a .py (percent cells) or .ipynb that retrains a checkpoint's model step by step."""
    from .export import export
    from .zoo import ZOO

    out = export(args.checkpoint, args.out, ZOO)
    print(f"Wrote {out}.")
    return 0


def _add_bench_parsers(sub) -> None:
    from .bench import BENCHES

    for name, fn in BENCHES.items():
        doc = (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else name
        p = sub.add_parser(name, help=doc, description=doc)
        for param in inspect.signature(fn).parameters.values():
            flag = "--" + param.name.replace("_", "-")
            if isinstance(param.default, bool):
                p.add_argument(flag, action=argparse.BooleanOptionalAction, default=param.default)
            else:
                p.add_argument(flag, type=type(param.default), default=param.default,
                               help=f"(default: {param.default})")
        p.add_argument("--json", action="store_true", help="print the figures as one JSON object on the last line")
        p.set_defaults(handler=cmd_bench, bench=fn)


def _add_device_flag(parser: argparse.ArgumentParser) -> None:
    from .train import DEVICES

    parser.add_argument("--device", choices=DEVICES, default="auto",
                        help="where to train: auto (a GPU when torch sees one), cpu or cuda (default: auto)")


def _add_serve_parser(sub) -> None:
    from .serve import APP, Options

    d = Options()
    p = sub.add_parser("serve", help=cmd_serve.__doc__, description=cmd_serve.__doc__ + " With more than one "
                       "replica and no AEVIZ_STORE it starts a local redis-server for the rooms (or, without one, "
                       "the replicas share the SQLite store on this machine). Ctrl-C or SIGTERM stops everything.")
    p.add_argument("--replicas", type=int, default=d.replicas, metavar="N",
                   help=f"Streamlit servers behind the proxy (default: {d.replicas})")
    p.add_argument("--port", type=int, default=d.port, help=f"the port students connect to (default: {d.port})")
    p.add_argument("--address", default=d.address,
                   help=f"the proxy's bind address (default: {d.address}, every network interface)")
    p.add_argument("--app", type=Path, default=APP, help=f"the Streamlit app (default: {APP})")
    p.add_argument("--logs", type=Path, help="folder for the logs, the proxy's configuration and serve.json "
                   "(default: a new temporary folder)")
    p.add_argument("--redis-data", type=Path, metavar="DIR", help="keep the local Redis's rooms in DIR (append-only "
                   "file), so they outlive a restart (default: in memory)")
    p.add_argument("--restart", action=argparse.BooleanOptionalAction, default=d.restart,
                   help="start a replica that died again (default: on)")
    p.set_defaults(handler=cmd_serve)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    parser = argparse.ArgumentParser(prog="aeviz", description="An interactive lab for learning autoencoders.")
    parser.add_argument("--version", action="version", version=f"aeviz {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help=cmd_train.__doc__, description=cmd_train.__doc__)
    _add_config_flags(p, ModelConfig)
    _add_config_flags(p, TrainConfig)
    p.add_argument("--data", metavar="PATH", help="train on your own file instead of --dataset: a CSV/TSV table or "
                   "time series, .npy/.npz arrays, or a .zip of PNG/JPEG images (one folder per label)")
    _add_config_flags(p, ReadOptions)
    p.add_argument("--out", help="checkpoint path (default: DATASET-OBJECTIVE-ARCH-zN.safetensors)")
    _add_device_flag(p)
    p.add_argument("--nproc", type=int, default=1, metavar="N",
                   help="train in N processes with DistributedDataParallel (starts torchrun on this machine; the "
                        "batch size is the global one, split across them). Under torchrun this flag is ignored.")
    p.set_defaults(handler=cmd_train)

    p = sub.add_parser("info", help=cmd_info.__doc__, description=cmd_info.__doc__)
    p.add_argument("file", help="an aeviz .safetensors checkpoint")
    p.set_defaults(handler=cmd_info)

    p = sub.add_parser("export", help=cmd_export.__doc__, description=cmd_export.__doc__)
    p.add_argument("checkpoint", help="an aeviz .safetensors checkpoint")
    p.add_argument("-o", "--out", required=True, help="NAME.py (percent cells) or NAME.ipynb")
    p.set_defaults(handler=cmd_export)

    _add_serve_parser(sub)

    p = sub.add_parser("datasets", help=cmd_datasets.__doc__, description=cmd_datasets.__doc__)
    p.set_defaults(handler=cmd_datasets)

    p = sub.add_parser("bench", help="Run a benchmark and print its figures.")
    _add_bench_parsers(p.add_subparsers(dest="bench_name", required=True))

    p = sub.add_parser("pretrain", help=cmd_pretrain.__doc__, description=cmd_pretrain.__doc__)
    p.add_argument("--out", default=PRETRAINED, type=Path, help=f"folder for the zoo (default: {PRETRAINED})")
    p.add_argument("--only", nargs="+", metavar="NAME", help="build only these zoo entries")
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="train N recipes at once, in N processes (the same bytes as one at a time)")
    p.add_argument("--views-only", action="store_true",
                   help="retrain nothing: add the precomputed views (test codes and errors) that files lack")
    _add_device_flag(p)
    p.set_defaults(handler=cmd_pretrain)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `aeviz` script; returns the exit code (2 for bad input, one line on stderr)."""
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # `aeviz train --nproc N` hands them to torchrun
    try:
        return args.handler(args)
    except (CheckpointError, ConfigError, DataError, DatasetUnavailable, ExportError, OSError, ServeError) as err:
        if os.environ.get("RANK", "0") == "0":  # under torchrun, one sentence rather than one per process
            print(f"aeviz {args.command}: {' '.join(str(err).split())}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
