"""The layers of DESIGN.md, read from the source: every import of every module under aeviz/, function-level ones too.

    app.py -> aeviz/ui -> aeviz/zoo -> aeviz/uses -> the flat core      (aeviz/bench: only the CLI imports it)

The one exception: aeviz/jobs.py imports aeviz.zoo, so a training in a worker process is measured by the one
metrics function (model_card), as `aeviz train` and `aeviz pretrain` measure theirs.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORE = ("config", "data", "nets", "models", "losses", "train", "io", "analysis", "plots", "images", "threads",
        "webmodel", "jobs", "workspace", "userdata", "export")
MAY_IMPORT_ZOO = {"aeviz.jobs"}


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, root: Path) -> list[tuple[str, ...]]:
    """What path.py imports, absolute, one tuple of candidates per imported name: `from a import b` is (a, a.b),
    since b may be a module or a name in a."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name,) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
            found += [(base, f"{base}.{alias.name}") for alias in node.names]
    return found


def graph(root: Path) -> dict[str, list[tuple[str, ...]]]:
    """Module name -> what it imports, for every .py file under root/aeviz."""
    return {module_name(p, root): imports(p, root) for p in sorted((root / "aeviz").rglob("*.py"))}


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def forbidden(module: str) -> dict[str, str]:
    """The packages a module must not import, each with the reason."""
    rules = {}
    if within(module, "aeviz.uses"):
        reason = "uses is numpy in, numpy out, below the UI, the benchmarks and the zoo"
        rules |= dict.fromkeys(("aeviz.ui", "aeviz.bench", "aeviz.zoo"), reason)
    if module != "aeviz.cli" and not within(module, "aeviz.bench"):
        rules["aeviz.bench"] = "only the CLI runs benchmarks"
    if module in {f"aeviz.{m}" for m in CORE}:
        above = ("aeviz.uses", "aeviz.ui", "aeviz.bench") + (() if module in MAY_IMPORT_ZOO else ("aeviz.zoo",))
        rules |= dict.fromkeys(above, "the core imports nothing above it")
    if not within(module, "aeviz.ui"):
        rules["streamlit"] = "only aeviz/ui may import streamlit"
    return rules


def allowed(module: str, name: str) -> bool:
    """The one exception: simulated students speak Streamlit's wire protocol (its protobuf messages), not its
    runtime, so the benchmarks may import streamlit.proto."""
    return within(module, "aeviz.bench") and name.startswith("streamlit.proto")


def violations(root: Path) -> list[str]:
    """One line per imported name that points the wrong way."""
    out = []
    for module, found in graph(root).items():
        rules = forbidden(module)
        for candidates in found:
            for target, reason in rules.items():
                hits = [c for c in candidates if (within(c, target) or (target == "streamlit" and c.startswith(target)))
                        and not allowed(module, c)]
                if hits:
                    out.append(f"{module} imports {hits[-1]}: {reason}")
                    break
    return out


def test_every_import_points_down():
    assert violations(ROOT) == []


def test_every_core_module_exists():  # so a renamed module cannot slip out of the rules
    assert all((ROOT / "aeviz" / f"{m}.py").is_file() for m in CORE)


def test_importing_aeviz_does_not_import_streamlit():
    code = "import aeviz, sys; print('streamlit' in sys.modules)"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert run.stdout.strip() == "False", run.stderr


@pytest.mark.parametrize("path, source, message", [
    ("aeviz/uses/fake.py", "def f():\n    from ..zoo import model_card\n", "aeviz.uses.fake imports aeviz.zoo"),
    ("aeviz/uses/fake.py", "from aeviz.ui import state\n", "aeviz.uses.fake imports aeviz.ui"),
    ("aeviz/zoo.py", "from .bench import BENCHES\n", "aeviz.zoo imports aeviz.bench"),
    ("aeviz/train.py", "from .uses import anomaly\n", "aeviz.train imports aeviz.uses"),
    ("aeviz/data.py", "from . import zoo\n", "aeviz.data imports aeviz.zoo"),
    ("aeviz/plots.py", "def f():\n    import streamlit as st\n", "aeviz.plots imports streamlit"),
])
def test_a_planted_violation_is_found(tmp_path, path, source, message):
    for p in ("aeviz/__init__.py", "aeviz/uses/__init__.py", "aeviz/ui/__init__.py", "aeviz/jobs.py"):
        (tmp_path / p).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / p).write_text("from . import zoo\n" if p.endswith("jobs.py") else "")  # jobs' exception holds
    (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / path).write_text(source)
    found = violations(tmp_path)
    assert len(found) == 1 and found[0].startswith(message), found
