"""The room store on one server: metadata in SQLite (WAL), checkpoints as files beside it.

Layout of the folder: ``rooms.sqlite3`` (schema version in ``PRAGMA user_version``) and
``blobs/<code>-<room uid>/<random>.safetensors`` (board entries and the room's shared dataset), each written to a
temporary file, fsynced and renamed into place before its row is committed. A new store object on the same folder
(a restart, or another process on the same host) sees everything. Several processes may share the folder on a local
disk, not on a network share: replicas on several hosts need the Redis store.
"""
from __future__ import annotations

import json
import os
import queue
import secrets
import shutil
import sqlite3
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from . import store as base  # the interface, the data classes and the checks every backend shares

SCHEMA_VERSION = 2  # 2 added room_datasets
POOL_IDLE = 8  # idle connections kept; more are opened while more threads are in the store at once

_SCHEMA = """
CREATE TABLE rooms (
    code TEXT PRIMARY KEY,
    uid TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    created REAL NOT NULL,
    expires REAL NOT NULL,
    frozen INTEGER NOT NULL DEFAULT 0,
    task TEXT NOT NULL DEFAULT '',
    view TEXT,
    version INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX rooms_expires ON rooms(expires);
CREATE TABLE members (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    code TEXT NOT NULL REFERENCES rooms(code) ON DELETE CASCADE,
    name TEXT NOT NULL,
    name_key TEXT NOT NULL,
    token_hash TEXT NOT NULL,
    joined REAL NOT NULL,
    UNIQUE (code, name_key),
    UNIQUE (code, token_hash)
);
CREATE TABLE entries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    code TEXT NOT NULL REFERENCES rooms(code) ON DELETE CASCADE,
    member_id INTEGER NOT NULL REFERENCES members(id) ON DELETE CASCADE,
    author TEXT NOT NULL,
    name TEXT NOT NULL,
    meta TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    created REAL NOT NULL,
    hidden INTEGER NOT NULL DEFAULT 0,
    file TEXT NOT NULL
);
CREATE INDEX entries_room ON entries(code, id);
CREATE TABLE submissions (
    member_id INTEGER NOT NULL REFERENCES members(id) ON DELETE CASCADE,
    window INTEGER NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (member_id, window)
);
CREATE TABLE room_datasets (
    code TEXT PRIMARY KEY REFERENCES rooms(code) ON DELETE CASCADE,
    name TEXT NOT NULL,
    title TEXT NOT NULL,
    meta TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    created REAL NOT NULL,
    file TEXT NOT NULL
);
"""
_MIGRATIONS = {1: _SCHEMA[_SCHEMA.index("CREATE TABLE room_datasets"):]}  # from version n to n + 1
_DATASET_COLUMNS = "name, title, meta, size, sha256, created"

_ENTRY_COLUMNS = "id, code, member_id, author, name, meta, size, sha256, created, hidden"


def _entry(row) -> base.Entry:
    id_, code, member_id, author, name, meta, size, sha, created, hidden = row
    return base.Entry(id_, code, member_id, author, name, json.loads(meta), size, sha, created, bool(hidden))


@base.backend_errors_as_sentences
class SQLiteStore(base.RoomStore):
    """The room store in a folder. Thread-safe. `connections`: "pool" (default) lends each call an idle connection
    (a new one only when all are busy); "thread" keeps one per thread; "shared" is one behind a lock.
    Streamlit runs each rerun on a new thread, which makes "thread" open a connection per rerun. Measured with
    `python -m aeviz.classroom.measure` (2 shared cores, busy): room_state takes a median 10 us in every mode,
    but called from a fresh thread each time it took 120 us with "pool" or "shared" and 300-330 us with "thread"
    (the connect). "pool" keeps both: no connect per rerun, and readers do not queue behind one lock."""

    def __init__(self, folder: str | os.PathLike, limits: base.Limits | None = None, clock: base.Clock = time.time,
                 connections: str = "pool"):
        self.folder = Path(folder).expanduser()
        self.limits = limits or base.Limits()
        self.clock = clock
        self.db_path = self.folder / "rooms.sqlite3"
        self.blob_root = self.folder / "blobs"
        if connections not in ("pool", "thread", "shared"):
            raise ValueError('connections is "pool", "thread" or "shared".')
        self._mode = connections
        self._local = threading.local()
        self._lock = threading.RLock()
        self._shared: sqlite3.Connection | None = None
        self._idle: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()
        try:
            self.blob_root.mkdir(parents=True, exist_ok=True)
            self._create_schema()
        except (OSError, sqlite3.Error) as err:
            raise base.StoreError(f"Cannot open the room store in {self.folder}: {err}.") from err

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.folder)!r})"

    backend_errors = (sqlite3.Error,)

    def failure(self, err: Exception) -> Exception:
        return base.StoreError(f"The room store in {self.folder} failed ({err}).")

    # ------------------------------------------------------------ connections and transactions

    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.db_path, timeout=10, isolation_level=None,
                              check_same_thread=self._mode == "thread")  # pooled ones serve one thread at a time
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=NORMAL")  # WAL: a commit survives a crash of the app, not of the power
        con.execute("PRAGMA foreign_keys=ON")
        return con

    @contextmanager
    def _con(self):
        """A connection for reads (autocommit: each statement is its own snapshot)."""
        if self._mode == "pool":
            try:
                con = self._idle.get_nowait()
            except queue.Empty:
                con = self._connect()
            try:
                yield con
            finally:
                if con.in_transaction:  # only if a COMMIT or ROLLBACK itself failed
                    con.close()
                elif self._idle.qsize() < POOL_IDLE:
                    self._idle.put(con)
                else:
                    con.close()
        elif self._mode == "shared":
            with self._lock:
                if self._shared is None:
                    self._shared = self._connect()
                yield self._shared
        else:
            con = getattr(self._local, "con", None)
            if con is None:
                con = self._local.con = self._connect()
            yield con

    @contextmanager
    def _tx(self):
        """A write transaction; BEGIN IMMEDIATE takes the write lock up front, so checks and writes are atomic."""
        with self._con() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    def _create_schema(self) -> None:
        with self._tx() as con:
            version = con.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise base.StoreError(f"The room store in {self.folder} has schema version {version}, newer than this "
                                 f"aeviz understands ({SCHEMA_VERSION}); update aeviz.")
            if version < SCHEMA_VERSION:
                # executescript() would commit on its own: run the statements one by one inside this transaction
                script = _SCHEMA if version == 0 else "".join(_MIGRATIONS[v] for v in range(version, SCHEMA_VERSION))
                for statement in filter(str.strip, script.split(";")):
                    con.execute(statement)
                con.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    # ------------------------------------------------------------ helpers

    def _room_row(self, con, code: str, columns: str):
        row = con.execute(f"SELECT {columns} FROM rooms WHERE code = ? AND expires > ?",
                          (code, self.clock())).fetchone()
        if row is None:
            raise base.NotFound(base.no_room_message(code))
        return row

    def _teacher(self, con, code: str, secret: str | None) -> None:
        (stored,) = self._room_row(con, code, "secret_hash")
        base.check_teacher(code, secret, stored)

    def _member(self, con, code: str, token: str | None) -> base.Member:
        self._room_row(con, code, "1")
        token_hash = base.token_hash_or_refuse(code, token)
        row = con.execute("SELECT id, name, joined FROM members WHERE code = ? AND token_hash = ?",
                          (code, token_hash)).fetchone()
        if row is None:
            raise PermissionError(base.unknown_token_message(code))
        return base.Member(row[0], code, row[1], row[2])

    def _blob_dir(self, code: str, uid: str) -> Path:
        return self.blob_root / f"{code}-{uid}"

    def _unlink(self, relative: str) -> None:
        try:
            (self.blob_root / relative).unlink()
        except FileNotFoundError:
            pass

    def _write_blob(self, folder: Path, blob: bytes, what: str = "checkpoint") -> Path:
        """Temp file, fsync, rename: a reader never sees half a checkpoint."""
        path = folder / f"{secrets.token_hex(8)}.safetensors"
        tmp = None
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".part")
            with os.fdopen(fd, "wb") as f:
                f.write(blob)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException as err:
            if tmp:
                Path(tmp).unlink(missing_ok=True)
            if isinstance(err, OSError):  # a full disk, say
                raise base.StoreError(f"Could not save the {what} in {folder} ({err.strerror or err}).") from err
            raise
        return path

    # ------------------------------------------------------------ rooms

    def open_room(self, teacher_secret: str | None = None) -> tuple[base.Room, str]:
        secret = base.check_new_secret(teacher_secret)
        now = self.clock()
        expires = now + self.limits.room_hours * 3600
        with self._tx() as con:
            stale = con.execute("SELECT code, uid FROM rooms WHERE expires <= ?", (now,)).fetchall()
            con.execute("DELETE FROM rooms WHERE expires <= ?", (now,))
            (count,) = con.execute("SELECT COUNT(*) FROM rooms").fetchone()
            if count >= self.limits.rooms_per_server:
                raise base.LimitError(base.rooms_full_message(self.limits.rooms_per_server))
            for length in base.code_lengths():
                code = base.new_code(length)
                if con.execute("SELECT 1 FROM rooms WHERE code = ?", (code,)).fetchone() is None:
                    break
            else:
                raise base.StoreError("Could not find a free room code; try again.")
            con.execute("INSERT INTO rooms (code, uid, secret_hash, created, expires) VALUES (?, ?, ?, ?, ?)",
                        (code, secrets.token_hex(4), base.hash_secret(secret), now, expires))
        for old_code, uid in stale:
            shutil.rmtree(self._blob_dir(old_code, uid), ignore_errors=True)
        return base.Room(code, now, expires), secret

    def get_room(self, code: str) -> base.Room:
        code = base.normalise_code(code)
        with self._con() as con:
            created, expires = self._room_row(con, code, "created, expires")
        return base.Room(code, created, expires)

    def close_room(self, code: str, secret: str | None) -> None:
        code = base.normalise_code(code)
        with self._tx() as con:
            self._teacher(con, code, secret)
            (uid,) = self._room_row(con, code, "uid")
            con.execute("DELETE FROM rooms WHERE code = ?", (code,))
        shutil.rmtree(self._blob_dir(code, uid), ignore_errors=True)

    # ------------------------------------------------------------ members

    def join(self, code: str, display_name: str) -> tuple[base.Member, str]:
        code = base.normalise_code(code)
        name = base.clean_line(display_name)
        token = secrets.token_urlsafe(24)
        now = self.clock()
        limit = self.limits.members_per_room
        with self._tx() as con:
            self._room_row(con, code, "1")
            (count,) = con.execute("SELECT COUNT(*) FROM members WHERE code = ?", (code,)).fetchone()
            if count >= limit:
                raise base.LimitError(base.members_full_message(code, limit))
            taken = {k for (k,) in con.execute("SELECT name_key FROM members WHERE code = ?", (code,))}
            key, display = next((k, d) for k, d in base.name_candidates(name, limit + 1) if k not in taken)
            cur = con.execute("INSERT INTO members (code, name, name_key, token_hash, joined) VALUES (?, ?, ?, ?, ?)",
                              (code, display, key, base.hash_secret(token), now))
        return base.Member(cur.lastrowid, code, display, now), token

    def rejoin(self, code: str, token: str | None) -> base.Member:
        code = base.normalise_code(code)
        with self._con() as con:
            return self._member(con, code, token)

    # ------------------------------------------------------------ teacher powers

    def push_view(self, code: str, secret: str | None, view: base.View) -> int:
        code = base.normalise_code(code)
        data = base.view_json(view)
        with self._tx() as con:
            self._teacher(con, code, secret)
            con.execute("UPDATE rooms SET view = ?, version = version + 1 WHERE code = ?", (data, code))
            (version,) = con.execute("SELECT version FROM rooms WHERE code = ?", (code,)).fetchone()
        return version

    def set_frozen(self, code: str, secret: str | None, frozen: bool) -> None:
        code = base.normalise_code(code)
        with self._tx() as con:
            self._teacher(con, code, secret)
            con.execute("UPDATE rooms SET frozen = ? WHERE code = ?", (int(bool(frozen)), code))

    def set_task(self, code: str, secret: str | None, markdown_text: str) -> None:
        code = base.normalise_code(code)
        with self._tx() as con:
            self._teacher(con, code, secret)
            con.execute("UPDATE rooms SET task = ? WHERE code = ?", (base.clean_task(markdown_text), code))

    def hide_entry(self, code: str, secret: str | None, entry_id: int, hidden: bool = True) -> None:
        code = base.normalise_code(code)
        entry_id = base.entry_id_or_refuse(code, entry_id)
        with self._tx() as con:
            self._teacher(con, code, secret)
            cur = con.execute("UPDATE entries SET hidden = ? WHERE code = ? AND id = ?",
                              (int(bool(hidden)), code, entry_id))
            if cur.rowcount == 0:
                raise base.NotFound(base.no_entry_message(code, entry_id))

    def remove_entry(self, code: str, secret: str | None, entry_id: int) -> None:
        code = base.normalise_code(code)
        entry_id = base.entry_id_or_refuse(code, entry_id)
        with self._tx() as con:
            self._teacher(con, code, secret)
            row = con.execute("SELECT file FROM entries WHERE code = ? AND id = ?", (code, entry_id)).fetchone()
            if row is None:
                raise base.NotFound(base.no_entry_message(code, entry_id))
            con.execute("DELETE FROM entries WHERE id = ?", (entry_id,))
        self._unlink(row[0])

    def clear_board(self, code: str, secret: str | None) -> int:
        code = base.normalise_code(code)
        with self._tx() as con:
            self._teacher(con, code, secret)
            files = [f for (f,) in con.execute("SELECT file FROM entries WHERE code = ?", (code,))]
            con.execute("DELETE FROM entries WHERE code = ?", (code,))
        for f in files:
            self._unlink(f)
        return len(files)

    # ------------------------------------------------------------ students

    def room_state(self, code: str) -> base.RoomState:
        code = base.normalise_code(code)
        with self._con() as con:
            view, version, frozen, task = self._room_row(con, code, "view, version, frozen, task")
        return base.RoomState(base.view_from_json(view), version, bool(frozen), task)

    def submit(self, code: str, student_token: str | None, name: str, meta: dict, blob: bytes) -> base.Entry:
        code, name, meta_text, sha, blob = base.checked_submission(code, name, meta, blob, self.limits)
        limits = self.limits
        now = self.clock()
        window = base.rate_window(now)

        def refuse_if_over(con, member: base.Member) -> None:
            (count,) = con.execute("SELECT COUNT(*) FROM entries WHERE code = ?", (code,)).fetchone()
            if count >= limits.entries_per_room:
                raise base.LimitError(base.board_full_message(code, limits.entries_per_room))
            row = con.execute("SELECT count FROM submissions WHERE member_id = ? AND window = ?",
                              (member.id, window)).fetchone()
            if row is not None and row[0] >= limits.submissions_per_minute:
                raise base.LimitError(base.rate_message(limits.submissions_per_minute, now))

        with self._con() as con:  # refuse early, before writing megabytes; checked again below, atomically
            member = self._member(con, code, student_token)
            refuse_if_over(con, member)
            (uid,) = self._room_row(con, code, "uid")
        path = self._write_blob(self._blob_dir(code, uid), blob)
        relative = path.relative_to(self.blob_root).as_posix()
        try:
            with self._tx() as con:
                member = self._member(con, code, student_token)
                if self._room_row(con, code, "uid")[0] != uid:  # closed and reopened with the same code meanwhile
                    raise base.NotFound(base.no_room_message(code))
                refuse_if_over(con, member)
                con.execute("DELETE FROM submissions WHERE member_id = ? AND window < ?", (member.id, window))
                con.execute("INSERT INTO submissions (member_id, window, count) VALUES (?, ?, 1) "
                            "ON CONFLICT (member_id, window) DO UPDATE SET count = count + 1", (member.id, window))
                cur = con.execute("INSERT INTO entries (code, member_id, author, name, meta, size, sha256, created, "
                                  "file) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                  (code, member.id, member.name, name, meta_text, len(blob), sha, now, relative))
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return base.Entry(cur.lastrowid, code, member.id, member.name, name, json.loads(meta_text), len(blob), sha, now)

    def entries(self, code: str, include_hidden: bool = False) -> list[base.Entry]:
        code = base.normalise_code(code)
        hidden = "" if include_hidden else " AND hidden = 0"
        with self._con() as con:
            self._room_row(con, code, "1")
            rows = con.execute(f"SELECT {_ENTRY_COLUMNS} FROM entries WHERE code = ?{hidden} ORDER BY id",
                               (code,)).fetchall()
        return [_entry(r) for r in rows]

    def entry_blob(self, code: str, entry_id: int) -> bytes:
        code = base.normalise_code(code)
        with self._con() as con:
            self._room_row(con, code, "1")
            entry_id = base.entry_id_or_refuse(code, entry_id)
            row = con.execute("SELECT file FROM entries WHERE code = ? AND id = ?", (code, entry_id)).fetchone()
        if row is None:
            raise base.NotFound(base.no_entry_message(code, entry_id))
        try:
            return (self.blob_root / row[0]).read_bytes()
        except FileNotFoundError:  # removed between the query and the read
            raise base.NotFound(base.no_entry_message(code, entry_id)) from None

    def withdraw(self, code: str, student_token: str | None, entry_id: int) -> None:
        code = base.normalise_code(code)
        with self._tx() as con:
            member = self._member(con, code, student_token)
            entry_id = base.entry_id_or_refuse(code, entry_id)
            row = con.execute("SELECT member_id, file FROM entries WHERE code = ? AND id = ?",
                              (code, entry_id)).fetchone()
            if row is None:
                raise base.NotFound(base.no_entry_message(code, entry_id))
            if row[0] != member.id:
                raise PermissionError(base.not_your_entry_message(code, entry_id))
            con.execute("DELETE FROM entries WHERE id = ?", (entry_id,))
        self._unlink(row[1])

    # ------------------------------------------------------------ the room's shared dataset

    def share_dataset(self, code: str, secret: str | None, name: str, title: str, meta: dict,
                      blob: bytes) -> base.RoomDataset:
        code = base.normalise_code(code)
        with self._con() as con:  # the secret before the bytes' own checks, and before writing megabytes
            self._teacher(con, code, secret)
            (uid,) = self._room_row(con, code, "uid")
        code, name, title, meta_text, sha, blob = base.checked_dataset(code, name, title, meta, blob, self.limits)
        now = self.clock()
        path = self._write_blob(self._blob_dir(code, uid), blob, "dataset")
        relative = path.relative_to(self.blob_root).as_posix()
        try:
            with self._tx() as con:
                self._teacher(con, code, secret)
                if self._room_row(con, code, "uid")[0] != uid:  # closed and reopened with the same code meanwhile
                    raise base.NotFound(base.no_room_message(code))
                old = con.execute("SELECT file FROM room_datasets WHERE code = ?", (code,)).fetchone()
                con.execute("INSERT OR REPLACE INTO room_datasets (code, name, title, meta, size, sha256, created, "
                            "file) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                            (code, name, title, meta_text, len(blob), sha, now, relative))
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        if old:
            self._unlink(old[0])
        return base.RoomDataset(code, name, title, json.loads(meta_text), len(blob), sha, now)

    def unshare_dataset(self, code: str, secret: str | None) -> bool:
        code = base.normalise_code(code)
        with self._tx() as con:
            self._teacher(con, code, secret)
            old = con.execute("SELECT file FROM room_datasets WHERE code = ?", (code,)).fetchone()
            con.execute("DELETE FROM room_datasets WHERE code = ?", (code,))
        if old:
            self._unlink(old[0])
        return old is not None

    def room_dataset(self, code: str) -> base.RoomDataset | None:
        code = base.normalise_code(code)
        with self._con() as con:
            self._room_row(con, code, "1")
            row = con.execute(f"SELECT {_DATASET_COLUMNS} FROM room_datasets WHERE code = ?", (code,)).fetchone()
        if row is None:
            return None
        name, title, meta, size, sha, created = row
        return base.RoomDataset(code, name, title, json.loads(meta), size, sha, created)

    def dataset_blob(self, code: str) -> tuple[base.RoomDataset, bytes]:
        code = base.normalise_code(code)
        with self._con() as con:
            self._room_row(con, code, "1")
            row = con.execute(f"SELECT {_DATASET_COLUMNS}, file FROM room_datasets WHERE code = ?",
                              (code,)).fetchone()
        if row is None:
            raise base.NotFound(base.no_dataset_message(code))
        name, title, meta, size, sha, created, file = row
        try:
            blob = (self.blob_root / file).read_bytes()
        except FileNotFoundError:  # replaced or removed between the query and the read
            raise base.NotFound(base.no_dataset_message(code)) from None
        return base.RoomDataset(code, name, title, json.loads(meta), size, sha, created), blob
