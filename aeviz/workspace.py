"""A student's own models and datasets on disk, so they survive page reloads and server restarts.

Layout: AEVIZ_DATA (default ~/.local/share/aeviz, created on first save) / students / <token> / <kind>s /
<entry id>_<name><suffix>. A token is secrets.token_urlsafe(16): unguessable, and checked against a strict
pattern before it is ever part of a path, as is every entry id. Nothing here unpickles anything: models are
checked as aeviz .safetensors checkpoints (aeviz.io) before they are kept, datasets by their suffix and magic
bytes. Writes go to a temporary file in the same folder and are renamed into place, so a crash never leaves a
half-written entry. Entries not used (saved or loaded) for AEVIZ_MAX_AGE_DAYS (14) days are purged; each
student may keep AEVIZ_STUDENT_MB (50) MB.

Never imports streamlit; imports torch only to check a model checkpoint.
"""
from __future__ import annotations

import os
import re
import secrets
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

KINDS = ("model", "dataset")
MODEL_SUFFIX = ".safetensors"
DATASET_SUFFIXES = (".csv", ".npy", ".npz", ".safetensors")  # whoever reads them must not unpickle (allow_pickle=False)
DEFAULT_MAX_AGE_DAYS = 14.0
DEFAULT_STUDENT_MB = 50.0
MAX_NAME = 60

TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{22}")  # what secrets.token_urlsafe(16) returns
ENTRY_RE = re.compile(r"[0-9a-f]{12}")
FILE_RE = re.compile(r"(?P<id>[0-9a-f]{12})_(?P<name>[A-Za-z0-9._-]+)")
TMP_PREFIX = ".tmp-"

_lock = threading.Lock()  # one save at a time in this process, so two tabs cannot both slip under the cap


class StoreError(ValueError):
    """A request the store refuses; the message is one sentence for the student."""


@dataclass(frozen=True)
class Entry:
    """One saved file: its id (for load/delete), kind, display name, size in bytes and last use (epoch s)."""

    id: str
    kind: str
    name: str
    size: int
    saved: float


def data_dir() -> Path:
    """AEVIZ_DATA, else the user's data folder: ~/.local/share/aeviz (XDG_DATA_HOME), ~/Library/Application
    Support/aeviz, or %LOCALAPPDATA%\\aeviz."""
    if os.environ.get("AEVIZ_DATA", "").strip():
        return Path(os.environ["AEVIZ_DATA"].strip()).expanduser()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME", "").strip() or Path.home() / ".local" / "share")
    return base / "aeviz"


def _env_float(name: str, default: float) -> float:
    try:
        value = float(os.environ.get(name, ""))
    except ValueError:
        return default
    return value if value > 0 else default


def max_age_days() -> float:
    """AEVIZ_MAX_AGE_DAYS if set to a positive number, else 14."""
    return _env_float("AEVIZ_MAX_AGE_DAYS", DEFAULT_MAX_AGE_DAYS)


def student_mb() -> float:
    """AEVIZ_STUDENT_MB if set to a positive number, else 50."""
    return _env_float("AEVIZ_STUDENT_MB", DEFAULT_STUDENT_MB)


def new_token() -> str:
    """A fresh, unguessable student token."""
    return secrets.token_urlsafe(16)


def valid_token(token) -> bool:
    """True for strings shaped exactly like new_token()'s."""
    return isinstance(token, str) and TOKEN_RE.fullmatch(token) is not None


def _student(token) -> Path:
    if not valid_token(token):
        raise StoreError("That student token is not valid; reload the page to get a new one.")
    return data_dir() / "students" / token


def _folder(token, kind: str) -> Path:
    if kind not in KINDS:
        raise StoreError(f"Unknown kind '{kind}'; choose model or dataset.")
    return _student(token) / f"{kind}s"


def sanitize(name: str, suffix: str = "") -> str:
    """A safe file-name stem: letters, digits, '.', '_' and '-' only, no leading dot, at most MAX_NAME long."""
    stem = str(name or "")
    if suffix and stem.lower().endswith(suffix):
        stem = stem[: -len(suffix)]
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip(".-_")[:MAX_NAME].strip(".-_")
    return stem or "unnamed"


def _entry(path: Path, kind: str) -> Entry | None:
    """The entry a file in a kind's folder holds; None for temporary or foreign files."""
    suffixes = (MODEL_SUFFIX,) if kind == "model" else DATASET_SUFFIXES
    suffix = next((x for x in suffixes if path.name.endswith(x)), None)
    m = FILE_RE.fullmatch(path.name[: -len(suffix)]) if suffix else None
    if path.name.startswith(TMP_PREFIX) or m is None:
        return None
    st = path.stat()
    return Entry(m["id"], kind, m["name"], st.st_size, st.st_mtime)


def _entries(token, kind: str) -> list[tuple[Entry, Path]]:
    folder = _folder(token, kind)
    if not folder.is_dir():
        return []
    out = []
    for path in folder.iterdir():
        try:
            e = _entry(path, kind)
        except FileNotFoundError:  # deleted meanwhile
            continue
        if e is not None:
            out.append((e, path))
    return sorted(out, key=lambda ep: ep[0].saved, reverse=True)


def list_entries(token, kind: str) -> list[Entry]:
    """The student's saved entries of one kind, most recently used first ([] for a new student)."""
    return [e for e, _ in _entries(token, kind)]


def list_models(token) -> list[Entry]:
    """The student's saved models, most recently used first."""
    return list_entries(token, "model")


def usage(token) -> int:
    """Bytes the student's saved entries take, all kinds together."""
    return sum(e.size for kind in KINDS for e in list_entries(token, kind))


def _check(kind: str, suffix: str, path: Path, name: str) -> None:
    """Refuse, in one sentence, bytes that are not what their kind promises (never unpickles)."""
    if kind == "model":
        from .io import CheckpointError, read_metadata

        try:
            read_metadata(path, name)
        except CheckpointError as err:
            raise StoreError(str(err)) from err
        return
    with path.open("rb") as f:
        head = f.read(4096)
    bad = {".npy": not head.startswith(b"\x93NUMPY"), ".npz": not head.startswith(b"PK"),
           ".safetensors": len(head) < 9 or head[8:9] != b"{", ".csv": b"\0" in head}[suffix]
    if bad:
        raise StoreError(f"{name} is not a {suffix} file.")


def save(token, kind: str, name: str, data: bytes) -> Entry:
    """Keep data as a new entry of kind for the student; its name is made safe and unique among theirs.

    Raises StoreError when the token is invalid, the bytes are not a valid file of that kind, or the student's
    saved entries would exceed student_mb().
    """
    folder = _folder(token, kind)
    if kind == "model":
        suffix = MODEL_SUFFIX
    else:
        suffix = os.path.splitext(str(name))[1].lower()
        if suffix not in DATASET_SUFFIXES:
            raise StoreError(f"Datasets are kept as {', '.join(DATASET_SUFFIXES)} files, not '{suffix or name}'.")
    data = bytes(data)
    with _lock:
        cap = student_mb()
        if usage(token) + len(data) > cap * 1e6:
            what = "models" if kind == "model" else "models and datasets"
            raise StoreError(f"Your saved {what} would take more than {cap:g} MB; delete one in the sidebar first.")
        taken = {e.name for e in list_entries(token, kind)}
        stem = base = sanitize(name, suffix)
        n = 2
        while stem in taken:
            stem = f"{base[: MAX_NAME - 4]}-{n}"
            n += 1
        entry_id = secrets.token_hex(6)
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, suffix=suffix, dir=folder)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            _check(kind, suffix, Path(tmp), str(name))
            final = folder / f"{entry_id}_{stem}{suffix}"
            os.replace(tmp, final)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return _entry(final, kind)


def save_model(token, name: str, data: bytes) -> Entry:
    """Keep a checkpoint's bytes (aeviz.io.to_bytes) for the student."""
    return save(token, "model", name, data)


def save_dataset(token, name: str, data: bytes) -> Entry:
    """Keep an uploaded dataset (name ends in .csv, .npy, .npz or .safetensors) for the student."""
    return save(token, "dataset", name, data)


def _find(token, kind: str, entry_id) -> Path:
    if not (isinstance(entry_id, str) and ENTRY_RE.fullmatch(entry_id)):
        raise StoreError(f"There is no saved {kind} with the id {entry_id!r}.")
    for e, path in _entries(token, kind):
        if e.id == entry_id:
            return path
    raise StoreError(f"That saved {kind} is gone (deleted, or unused for {max_age_days():g} days).")


def load_bytes(token, kind: str, entry_id: str) -> bytes:
    """The bytes of one of the student's entries; marks it used (so it is not purged for a while)."""
    path = _find(token, kind, entry_id)
    data = path.read_bytes()
    try:
        os.utime(path)
    except OSError:
        pass
    return data


def load_model_bytes(token, entry_id: str) -> bytes:
    """A saved checkpoint's bytes, for aeviz.load()."""
    return load_bytes(token, "model", entry_id)


def delete(token, kind: str, entry_id: str) -> None:
    """Remove one of the student's entries."""
    _find(token, kind, entry_id).unlink(missing_ok=True)


def delete_model(token, entry_id: str) -> None:
    """Remove one of the student's saved models."""
    delete(token, "model", entry_id)


def purge_older_than(days: float | None = None) -> int:
    """Delete every student's entries unused for more than days (default max_age_days()); return how many.

    Leftover temporary files older than a day go too, and so do the folders of students left with nothing.
    """
    root = data_dir() / "students"
    if not root.is_dir():
        return 0
    now = time.time()
    cutoff = now - (max_age_days() if days is None else days) * 86400
    removed = 0
    with _lock:
        for student in root.iterdir():
            removed += _purge_student(student, now, cutoff)
    return removed


def _purge_student(student: Path, now: float, cutoff: float) -> int:
    if not (student.is_dir() and valid_token(student.name)):
        return 0
    removed = 0
    for kind in KINDS:
        folder = student / f"{kind}s"
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            try:
                mtime = path.stat().st_mtime
                if path.name.startswith(TMP_PREFIX):
                    if mtime < now - 86400:
                        path.unlink()
                elif _entry(path, kind) is not None and mtime < cutoff:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                continue
        _rmdir_if_empty(folder)
    _rmdir_if_empty(student)
    return removed


def _rmdir_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:  # not empty, or gone
        pass
