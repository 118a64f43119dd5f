"""The room store: its interface, data classes, limits, errors, and the checks both backends share.

A teacher opens a room (a short code such as ``K7QM``) and gets a teacher secret; students join with a display name
and get a student token. The teacher pushes a view that students follow, freezes the room, sets a task, and moderates
the board; students submit .safetensors checkpoints to the board. The teacher may also share one dataset with the
room (the arrays of an upload as aeviz.userdata stored them: .safetensors, never pickled), which every member can
train on and whose entries the board compares on the same test split. Backends: ``sqlite.SQLiteStore`` (one server) and
``redis_store.RedisStore`` (several replicas). Nothing here imports streamlit, torch or redis.

Secrets and tokens are ``secrets.token_urlsafe(24)`` (192 bits); the store keeps only their sha256 and compares
with ``hmac.compare_digest``. Names and the task are cleaned of control characters but kept as text: escaping
HTML is the renderer's job.
"""
from __future__ import annotations

import abc
import functools
import hashlib
import hmac
import json
import math
import re
import secrets
import struct
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I
CODE_RE = re.compile(r"[A-HJ-NP-Z2-9]{4,6}")
NAME_CHARS = 40  # display names and entry names
TASK_CHARS = 2000
META_BYTES = 4000  # an entry's metadata, as JSON
PARAMS_BYTES = 4000  # a view's query parameters, as JSON
SECRET_MIN_CHARS = 16
DATASET_NAME = re.compile(r"user:[A-Za-z0-9][A-Za-z0-9._-]{0,63}")  # how aeviz.data.load finds a user dataset
DATASET_FORMAT = "aeviz-userdata/1"  # the __metadata__ format of aeviz.userdata.dataset_bytes
DATASET_TENSORS = {"x_train": ("F32",), "y_train": ("I64", "F32"), "x_test": ("F32",), "y_test": ("I64", "F32")}


class LimitError(ValueError):
    """A room or server limit, or a size cap, refused the request; the message is one sentence for the user."""


class NotFound(LookupError):
    """No such room (or it expired or was closed), or no such entry in it."""


class StoreError(RuntimeError):
    """The store cannot be opened: a bad AEVIZ_STORE URL, an unreachable Redis, a newer schema."""


@dataclass(frozen=True)
class Limits:
    """Per-room and per-server limits; every one refuses with a LimitError sentence."""

    entries_per_room: int = 60
    bytes_per_entry: int = 8_000_000
    submissions_per_minute: int = 5  # per student, in fixed 60-second windows of the store's clock
    rooms_per_server: int = 50  # open (not closed, not expired) rooms
    members_per_room: int = 300
    room_hours: float = 24.0  # a room expires this long after it was opened, with everything in it
    bytes_per_dataset: int = 20_000_000  # the room's shared dataset, as stored (its scaled float32 arrays)


@dataclass(frozen=True)
class Room:
    code: str
    created: float  # seconds since the epoch
    expires: float


@dataclass(frozen=True)
class Member:
    id: int  # public: entries carry it, so a UI can mark "yours"; the token is the secret
    code: str
    name: str
    joined: float


@dataclass(frozen=True)
class View:
    """What students follow: a page, a model, and the page's query parameters."""

    page: str
    model: str = ""
    params: dict[str, str] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class Entry:
    id: int
    code: str
    member_id: int
    author: str  # the student's display name when they submitted
    name: str  # the model's name, as the student typed it
    meta: dict = field(hash=False)
    size: int  # bytes of the .safetensors blob
    sha256: str
    created: float
    hidden: bool = False


@dataclass(frozen=True)
class RoomDataset:
    """The dataset the teacher shared with the room: one at a time, replaced by the next share."""

    code: str
    name: str  # how aeviz.data.load finds it: 'user:NAME' (the same name as in the teacher's own models)
    title: str  # shown to the class
    meta: dict = field(hash=False)  # what the board shows without reading the bytes: rows, shape, description...
    size: int = 0  # bytes of the .safetensors blob
    sha256: str = ""
    created: float = 0.0


class RoomState(NamedTuple):
    """What a student polls: unpacks as (view, version, frozen, task). version counts pushes; 0 before the first."""

    view: View | None
    version: int
    frozen: bool
    task: str


# ---------------------------------------------------------------- the interface

class RoomStore(abc.ABC):
    """The operations both backends provide. Thread-safe; one object per process is enough.

    Errors: NotFound (room or entry), PermissionError (wrong or missing teacher secret, unknown student token,
    someone else's entry), LimitError (a limit or size cap), ValueError (a bad name, blob or view), TypeError
    (an argument of the wrong type: a bug in the caller), StoreError (the backend cannot be used). Every message is
    one sentence, meant for the user.
    """

    limits: Limits

    # rooms
    @abc.abstractmethod
    def open_room(self, teacher_secret: str | None = None) -> tuple[Room, str]:
        """A new room with a fresh unique code, and its teacher secret (the given one, or a new random one)."""

    @abc.abstractmethod
    def get_room(self, code: str) -> Room:
        """The open room with this code (normalised: stripped, upper-cased); NotFound if none."""

    @abc.abstractmethod
    def close_room(self, code: str, secret: str | None) -> None:
        """Delete the room, its members and its board (teacher only)."""

    # members
    @abc.abstractmethod
    def join(self, code: str, display_name: str) -> tuple[Member, str]:
        """A new member with the cleaned name (a suffix " (2)" if taken) and their student token."""

    @abc.abstractmethod
    def rejoin(self, code: str, token: str | None) -> Member:
        """The member this token belongs to in this room; PermissionError if none."""

    # teacher powers
    @abc.abstractmethod
    def push_view(self, code: str, secret: str | None, view: View) -> int:
        """Set the view students follow; returns its version (1, 2, 3, ...)."""

    @abc.abstractmethod
    def set_frozen(self, code: str, secret: str | None, frozen: bool) -> None: ...

    @abc.abstractmethod
    def set_task(self, code: str, secret: str | None, markdown_text: str) -> None:
        """The task students see, as markdown text (at most TASK_CHARS characters; "" clears it)."""

    @abc.abstractmethod
    def hide_entry(self, code: str, secret: str | None, entry_id: int, hidden: bool = True) -> None: ...

    @abc.abstractmethod
    def remove_entry(self, code: str, secret: str | None, entry_id: int) -> None: ...

    @abc.abstractmethod
    def clear_board(self, code: str, secret: str | None) -> int:
        """Remove every entry; returns how many there were."""

    @abc.abstractmethod
    def share_dataset(self, code: str, secret: str | None, name: str, title: str, meta: dict,
                      blob: bytes) -> RoomDataset:
        """Share a dataset (aeviz.userdata.dataset_bytes) with the room, in place of the one shared before."""

    @abc.abstractmethod
    def unshare_dataset(self, code: str, secret: str | None) -> bool:
        """Take the room's dataset away; False if there was none. Entries trained on it stay on the board."""

    # students
    @abc.abstractmethod
    def room_state(self, code: str) -> RoomState:
        """(view, version, frozen, task), one read; cheap enough to poll every second."""

    @abc.abstractmethod
    def submit(self, code: str, student_token: str | None, name: str, meta: dict, blob: bytes) -> Entry:
        """Put a .safetensors checkpoint on the board under the student's display name; name is the model's name."""

    @abc.abstractmethod
    def entries(self, code: str, include_hidden: bool = False) -> list[Entry]:
        """The board, oldest first."""

    @abc.abstractmethod
    def entry_blob(self, code: str, entry_id: int) -> bytes:
        """The checkpoint bytes of an entry (hidden ones too: the teacher looks before unhiding)."""

    @abc.abstractmethod
    def withdraw(self, code: str, student_token: str | None, entry_id: int) -> None:
        """Remove one of the student's own entries; PermissionError for someone else's."""

    @abc.abstractmethod
    def room_dataset(self, code: str) -> RoomDataset | None:
        """The dataset the teacher shared with the room, without its bytes; None if none."""

    @abc.abstractmethod
    def dataset_blob(self, code: str) -> tuple[RoomDataset, bytes]:
        """The shared dataset and its bytes, read together (NotFound if the room has none)."""


OPERATIONS = ("open_room", "get_room", "close_room", "join", "rejoin", "push_view", "set_frozen", "set_task",
              "hide_entry", "remove_entry", "clear_board", "room_state", "submit", "entries", "entry_blob", "withdraw",
              "share_dataset", "unshare_dataset", "room_dataset", "dataset_blob")


def backend_errors_as_sentences(cls):
    """Class decorator: in every operation, the backend's own exceptions (cls.backend_errors) become the one-sentence
    exception that cls.failure(self, err) makes, so a UI that catches StoreError never shows a traceback."""
    for name in OPERATIONS:
        fn = cls.__dict__[name]

        @functools.wraps(fn)
        def operation(self, *args, _fn=fn, **kwargs):
            try:
                return _fn(self, *args, **kwargs)
            except self.backend_errors as err:
                raise self.failure(err) from err

        setattr(cls, name, operation)
    return cls


# ---------------------------------------------------------------- checks both backends share

def normalise_code(code: str) -> str:
    """The canonical form of a room code; NotFound (a LookupError) for anything that cannot be one."""
    text = str(code or "").strip().upper()
    if not CODE_RE.fullmatch(text):
        shown = text if len(text) <= 12 and text.isprintable() else "That"
        raise NotFound(f"{shown} is not a room code: codes are 4 to 6 letters and digits without 0, O, 1 or I.")
    return text


def new_code(length: int = 4) -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(length))


def code_lengths(attempts: int = 30):
    """Lengths to try for new codes: mostly 4 (about a million codes); 5 and 6 if 4 keeps colliding."""
    for i in range(attempts):
        yield 4 if i < 20 else 5 if i < 27 else 6


def new_secret() -> str:
    return secrets.token_urlsafe(24)


def hash_secret(secret: str) -> str:
    """sha256 is enough: secrets and tokens carry 192 random bits (a teacher-chosen one at least SECRET_MIN_CHARS)."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def check_new_secret(secret: str | None) -> str:
    if secret is None:
        return new_secret()
    if not isinstance(secret, str) or len(secret.strip()) < SECRET_MIN_CHARS:
        raise ValueError(f"A teacher secret needs at least {SECRET_MIN_CHARS} characters (AEVIZ_TEACHER_TOKEN).")
    return secret


def check_teacher(code: str, secret: str | None, stored_hash: str) -> None:
    """Constant-time check of a teacher secret against the stored hash; PermissionError if missing or wrong."""
    if not secret or not isinstance(secret, str):
        raise PermissionError(f"Only the teacher of room {code} can do this, and no teacher secret was given.")
    if not hmac.compare_digest(hash_secret(secret).encode(), stored_hash.encode()):
        raise PermissionError(f"The teacher secret for room {code} is wrong.")


def token_hash_or_refuse(code: str, token: str | None) -> str:
    if not token or not isinstance(token, str):
        raise PermissionError(unknown_token_message(code))
    return hash_secret(token)


def unknown_token_message(code: str) -> str:
    return f"This student token does not belong to room {code}; join the room again."


def not_your_entry_message(code: str, entry_id: int) -> str:
    return f"Entry {entry_id} in room {code} belongs to another student; you can only withdraw your own."


def no_room_message(code: str) -> str:
    return f"No open room has the code {code}."


def no_entry_message(code: str, entry_id) -> str:
    return f"Room {code} has no entry {entry_id}."


def entry_id_or_refuse(code: str, entry_id) -> int:
    try:
        value = int(entry_id)
    except (TypeError, ValueError):
        raise NotFound(no_entry_message(code, entry_id)) from None
    if value < 1 or str(value) != str(entry_id).strip():
        raise NotFound(no_entry_message(code, entry_id))
    return value


_KEEP_FORMAT = {"\u200d"}  # zero-width joiner: emoji sequences need it


def _drop(ch: str) -> bool:
    cat = unicodedata.category(ch)
    if cat in ("Cc", "Cs"):
        return True
    if cat == "Cf":  # bidi overrides, zero-width spaces, soft hyphens...; emoji joiners and tag characters stay
        return ch not in _KEEP_FORMAT and not ("\U000e0020" <= ch <= "\U000e007f")
    return False


def clean_line(text: str, what: str = "A display name", limit: int = NAME_CHARS) -> str:
    """One line of user text: NFC, whitespace runs (tabs and newlines too) become one space, control and
    invisible format characters are removed, trimmed; 1 to `limit` characters, else ValueError. HTML stays text."""
    if not isinstance(text, str):
        raise TypeError(f"{what} must be text.")
    text = unicodedata.normalize("NFC", text)
    text = "".join(" " if ch.isspace() else ch for ch in text if ch.isspace() or not _drop(ch))
    text = " ".join(text.split())
    if not text:
        raise ValueError(f"{what} needs at least one visible character.")
    if len(text) > limit:
        raise ValueError(f"{what} can have at most {limit} characters; this one has {len(text)}.")
    return text


def name_key(name: str) -> str:
    """Names that look alike collide: Ana, ANA and a full-width Ａｎａ are one name in a room."""
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split())


def name_candidates(name: str, count: int):
    """(key, display) for the name, then "name (2)", "name (3)", ... each within NAME_CHARS."""
    for n in range(1, count + 1):
        if n == 1:
            display = name
        else:
            suffix = f" ({n})"
            display = name[: NAME_CHARS - len(suffix)].rstrip() + suffix
        yield name_key(display), display


def clean_task(text: str) -> str:
    """The task's markdown: line ends normalised, control characters other than newline and tab removed, at most
    TASK_CHARS characters (LimitError)."""
    if not isinstance(text, str):
        raise TypeError("The task must be text.")
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch) not in ("Cc", "Cs")).strip()
    if len(text) > TASK_CHARS:
        raise LimitError(f"The task has {len(text)} characters, over the limit of {TASK_CHARS}.")
    return text


def view_json(view: View) -> str:
    if not isinstance(view, View):
        raise TypeError("push_view needs a View(page, model, params).")
    if not isinstance(view.page, str) or not view.page.strip() or len(view.page) > 100:
        raise ValueError("A view's page must be a name of 1 to 100 characters.")
    if not isinstance(view.model, str) or len(view.model) > 300:
        raise ValueError("A view's model must be text of at most 300 characters.")
    params = view.params
    if not isinstance(params, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in params.items()):
        raise ValueError("A view's params must map text to text, as query parameters do.")
    if len(json.dumps(params, ensure_ascii=False).encode()) > PARAMS_BYTES:
        raise LimitError(f"The view's query parameters are over the limit of {PARAMS_BYTES} bytes.")
    return json.dumps({"page": view.page, "model": view.model, "params": params}, ensure_ascii=False)


def view_from_json(data: str | bytes | None) -> View | None:
    if not data:
        return None
    d = json.loads(data)
    return View(d["page"], d["model"], d["params"])


def meta_json(meta: dict) -> str:
    if meta is None:
        meta = {}
    if not isinstance(meta, dict) or not all(isinstance(k, str) for k in meta):
        raise ValueError("An entry's metadata must be a dict with text keys.")
    try:
        data = json.dumps(meta, ensure_ascii=False, allow_nan=False, sort_keys=True)
    except (TypeError, ValueError):
        raise ValueError("An entry's metadata must be plain JSON: text, numbers, booleans, lists and dicts.") from None
    if len(data.encode()) > META_BYTES:
        raise LimitError(f"The entry's metadata is {len(data.encode())} bytes of JSON, over the limit of {META_BYTES}.")
    return data


# ---------------------------------------------------------------- limits' sentences

def too_big_message(size: int, limit: int) -> str:
    return f"This checkpoint is {size / 1e6:.1f} MB, over the limit of {limit / 1e6:g} MB for one entry."


def board_full_message(code: str, limit: int) -> str:
    return (f"The board of room {code} is full ({limit} entries); "
            f"the teacher can remove some, or you can withdraw one of yours.")


def rate_message(limit: int, now: float) -> str:
    wait = max(1, math.ceil(60 - now % 60))
    return f"Only {limit} submissions per minute are allowed; try again in {wait} s."


def rate_window(now: float) -> int:
    return int(now // 60)


def rooms_full_message(limit: int) -> str:
    return f"This server already has {limit} open rooms, the most it allows; close one before opening another."


def members_full_message(code: str, limit: int) -> str:
    return f"Room {code} is full ({limit} students); no one else can join."


def size_text(n: float) -> str:
    """'12.3 MB', or '40 kB' below 0.1 MB."""
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n / 1e3:.0f} kB"


def dataset_too_big_message(size: int, limit: int) -> str:
    return (f"This dataset is {size_text(size)} as stored, over the limit of {size_text(limit)} for a class dataset; read "
            f"fewer rows or smaller images, then share it again.")


def no_dataset_message(code: str) -> str:
    return f"The teacher of room {code} has not shared a dataset."


# ---------------------------------------------------------------- blobs

_DTYPE_BYTES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
                "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}


def checked_submission(code: str, name: str, meta: dict, blob: bytes, limits: Limits) -> tuple[str, str, str, str, bytes]:
    """(code, name, metadata as JSON, sha256, blob) of a board submission, each checked; one sentence otherwise."""
    code, name, meta_text = normalise_code(code), clean_line(name, "A model's name"), meta_json(meta)
    sha = check_blob(blob, limits.bytes_per_entry)
    return code, name, meta_text, sha, bytes(blob)


def check_blob(blob: bytes, limit: int) -> str:
    """Refuse anything that is not a complete .safetensors file, from its header alone (nothing is loaded, nothing
    unpickled); returns the blob's sha256. LimitError over `limit` bytes, else ValueError with a reason."""
    if not isinstance(blob, (bytes, bytearray, memoryview)):
        raise TypeError("A checkpoint must be given as bytes.")
    blob = bytes(blob)
    if len(blob) > limit:
        raise LimitError(too_big_message(len(blob), limit))
    safetensors_header(blob)
    return hashlib.sha256(blob).hexdigest()


def safetensors_header(blob: bytes, what: str = "checkpoint") -> dict:
    """The JSON header of a complete .safetensors file, every tensor's span checked against its dtype and shape;
    ValueError with a reason for anything else (a sentence about a .safetensors `what`)."""
    size = len(blob)
    # A pickle starts with 0x80 and a zip (torch.save) with "PK"; a safetensors header is JSON, so byte 8 is "{".
    if (blob[:1] == b"\x80" or blob[:2] == b"PK") and blob[8:9] != b"{":
        raise ValueError("This file looks like a PyTorch .pt/.pth checkpoint; only .safetensors files can be "
                         "submitted, and nothing is ever unpickled.")
    bad = f"This file is not a .safetensors {what}"
    if size < 10:
        raise ValueError(f"{bad}: it is only {size} bytes long.")
    (header_len,) = struct.unpack("<Q", blob[:8])
    if header_len > size - 8:
        raise ValueError(f"{bad}: its header claims {header_len} bytes but only {size - 8} follow.")
    if blob[8:9] != b"{":
        raise ValueError(f"{bad}: its header does not start with JSON.")
    try:
        header = json.loads(blob[8:8 + header_len])
    except (UnicodeDecodeError, ValueError):
        raise ValueError(f"{bad}: its header is not valid JSON.") from None
    if not isinstance(header, dict):
        raise ValueError(f"{bad}: its header is not a JSON object.")
    spans = []
    for key, info in header.items():
        if key == "__metadata__":
            if not isinstance(info, dict) or not all(isinstance(v, str) for v in info.values()):
                raise ValueError(f"{bad}: its __metadata__ is not a map of text to text.")
            continue
        try:
            dtype, shape, (begin, end) = info["dtype"], info["shape"], info["data_offsets"]
            count = math.prod(int(n) for n in shape) if all(isinstance(n, int) and n >= 0 for n in shape) else -1
        except (TypeError, KeyError, ValueError):
            raise ValueError(f"{bad}: the header entry for {key[:40]!r} is malformed.") from None
        if dtype not in _DTYPE_BYTES or count < 0 or not (isinstance(begin, int) and isinstance(end, int)):
            raise ValueError(f"{bad}: the header entry for {key[:40]!r} is malformed.")
        if end - begin != count * _DTYPE_BYTES[dtype] or begin < 0:
            raise ValueError(f"{bad}: tensor {key[:40]!r} has the wrong number of bytes for its shape.")
        spans.append((begin, end))
    position = 0
    for begin, end in sorted(spans):
        if begin != position:
            raise ValueError(f"{bad}: its tensors overlap or leave gaps.")
        position = end
    data = size - 8 - header_len
    if position != data:
        raise ValueError(f"{bad}: its tensors need {position} bytes but {data} follow the header "
                         f"(truncated or padded).")
    return header


def checked_dataset(code: str, name: str, title: str, meta: dict, blob: bytes,
                    limits: Limits) -> tuple[str, str, str, str, str, bytes]:
    """(code, name, title, metadata as JSON, sha256, blob) of a dataset to share, each checked from the bytes'
    header alone: an aeviz dataset file holds exactly x_train, y_train, x_test, y_test, whose shapes agree.
    LimitError over Limits.bytes_per_dataset, else ValueError (TypeError for a blob that is not bytes)."""
    code = normalise_code(code)
    if not isinstance(name, str) or not DATASET_NAME.fullmatch(name):
        raise ValueError(f"{str(name)[:80]!r} is not a dataset name: user: and then 1 to 64 letters, digits, "
                         f"'.', '_' or '-'.")
    title, meta_text = clean_line(title, "A dataset's title", NAME_CHARS), meta_json(meta)
    if not isinstance(blob, (bytes, bytearray, memoryview)):
        raise TypeError("A dataset must be given as bytes.")
    blob = bytes(blob)
    if len(blob) > limits.bytes_per_dataset:
        raise LimitError(dataset_too_big_message(len(blob), limits.bytes_per_dataset))
    header = safetensors_header(blob, "dataset")
    bad = "This file is not an aeviz dataset"
    if (header.get("__metadata__") or {}).get("format") != DATASET_FORMAT:
        raise ValueError(f"{bad}: its metadata does not say {DATASET_FORMAT}.")
    tensors = {k: v for k, v in header.items() if k != "__metadata__"}
    if set(tensors) != set(DATASET_TENSORS):
        raise ValueError(f"{bad}: it must hold exactly the tensors {', '.join(DATASET_TENSORS)}.")
    if any(tensors[k]["dtype"] not in dtypes for k, dtypes in DATASET_TENSORS.items()):
        raise ValueError(f"{bad}: its samples must be float32 and its labels int64 or float32.")
    shape = {k: v["shape"] for k, v in tensors.items()}
    for part in ("train", "test"):
        x, y = shape[f"x_{part}"], shape[f"y_{part}"]
        if len(x) < 2 or not x[0] or y != x[:1]:
            raise ValueError(f"{bad}: its {part} samples and labels do not match.")
    if shape["x_train"][1:] != shape["x_test"][1:]:
        raise ValueError(f"{bad}: its train and test samples have different shapes.")
    return code, name, title, meta_text, hashlib.sha256(blob).hexdigest(), blob


def dataset_json(d: RoomDataset) -> str:
    return json.dumps({"name": d.name, "title": d.title, "meta": d.meta, "size": d.size, "sha256": d.sha256,
                       "created": d.created}, ensure_ascii=False)


def dataset_from_json(code: str, data: str | bytes | None) -> RoomDataset | None:
    if not data:
        return None
    d = json.loads(data)
    return RoomDataset(code, d["name"], d["title"], d["meta"], d["size"], d["sha256"], d["created"])


Clock = Callable[[], float]
