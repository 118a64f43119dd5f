"""The room store: the same tests on SQLite and on Redis (a redis-server started for the session on 127.0.0.1)."""
from __future__ import annotations

import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save

from aeviz.classroom import LimitError, Limits, NotFound, StoreError, View, open_store
from aeviz.classroom.sqlite import SQLiteStore
from aeviz.classroom.store import CODE_RE

REDIS_SERVER = Path("/usr/bin/redis-server")
START = 1_699_999_990.0  # 10 s into a minute: a test's submissions share one rate window


class Clock:
    def __init__(self):
        self.now = START

    def __call__(self) -> float:
        return self.now


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_redis(folder: Path, *options: str) -> tuple[subprocess.Popen, str]:
    """A redis-server on a free port of 127.0.0.1 without persistence, answering; (process, URL)."""
    import redis

    port = free_port()
    proc = subprocess.Popen([str(REDIS_SERVER), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(folder), *options],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    for _ in range(200):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if proc.poll() is not None:
                pytest.fail(f"redis-server exited with {proc.returncode}")
            time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail("redis-server did not answer within 10 s")
    client.close()
    return proc, url


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    if not REDIS_SERVER.exists():
        pytest.skip(f"{REDIS_SERVER} is not installed, so the Redis backend is not tested")
    proc, url = start_redis(tmp_path_factory.mktemp("redis"))
    yield url
    stop(proc)


@dataclass
class Backend:
    make: Callable  # make(limits=None) -> a new store object on the same data
    clock: Clock


@pytest.fixture(params=["sqlite", "redis"])
def backend(request, tmp_path) -> Backend:
    clock = Clock()
    if request.param == "sqlite":
        return Backend(lambda limits=None: SQLiteStore(tmp_path / "store", limits, clock), clock)
    from aeviz.classroom.redis_store import RedisStore

    url = request.getfixturevalue("redis_url")
    prefix = f"test-{uuid.uuid4().hex[:8]}:"  # each test its own namespace on the shared server
    return Backend(lambda limits=None: RedisStore(url, limits, clock, prefix=prefix), clock)


@pytest.fixture
def store(backend):
    return backend.make()


def checkpoint(values=(1.0, 2.0)) -> bytes:
    return save({"w": np.asarray(values, np.float32)}, metadata={"aeviz": "{}"})


def room_with_student(store, name="Ana"):
    room, secret = store.open_room()
    member, token = store.join(room.code, name)
    return room.code, secret, member, token


# ------------------------------------------------------------------ rooms and members

def test_open_join_rejoin(store):
    room, secret = store.open_room()
    assert CODE_RE.fullmatch(room.code) and not set(room.code) & set("01OI")
    assert len(secret) == 32  # token_urlsafe(24)
    assert room.expires == START + 24 * 3600
    assert store.get_room(room.code) == room
    member, token = store.join(room.code, "Ana")
    assert (member.code, member.name, member.joined) == (room.code, "Ana", START)
    assert len(token) == 32
    assert store.rejoin(room.code, token) == member
    entry = store.submit(room.code, token, "my VAE", {"loss": 0.25}, checkpoint())
    again = store.rejoin(room.code, token)  # a reload finds the name and the entries again
    assert [e.id for e in store.entries(room.code) if e.member_id == again.id] == [entry.id]
    with pytest.raises(PermissionError, match=f"^This student token does not belong to room {room.code}; "
                                              f"join the room again.$"):
        store.rejoin(room.code, "not-a-token")
    with pytest.raises(PermissionError):
        store.rejoin(room.code, None)


def test_teacher_secret_from_environment(store):
    room, secret = store.open_room("a-teacher-token-of-some-length")
    assert secret == "a-teacher-token-of-some-length"
    store.set_frozen(room.code, secret, True)
    with pytest.raises(ValueError, match="^A teacher secret needs at least 16 characters"):
        store.open_room("short")


def test_codes_are_normalised_and_validated(store):
    room, _ = store.open_room()
    assert store.get_room(f"  {room.code.lower()} ").code == room.code
    assert store.room_state(room.code.lower()).version == 0
    for bad in ["AB", "ABCD0", "ABCDEFG", "AB-D", "", "OOOO"]:
        with pytest.raises(NotFound, match="is not a room code: codes are 4 to 6 letters and digits without 0, "
                                           r"O, 1 or I\.$"):
            store.get_room(bad)
    unused = next(c for c in ("ZZZZ", "YYYY") if c != room.code)
    with pytest.raises(NotFound, match=f"^No open room has the code {unused}.$"):
        store.join(unused, "Ana")
    with pytest.raises(NotFound, match=f"^No open room has the code {unused}.$"):  # the room before the token
        store.rejoin(unused, None)


def test_restart_keeps_everything(backend):
    store = backend.make()
    code, secret, ana, token = room_with_student(store)
    store.push_view(code, secret, View("explorer", "vae-2d", {"digit": "3"}))
    store.set_frozen(code, secret, True)
    store.set_task(code, secret, "Train a **VAE** with β = 4.")
    kept = store.submit(code, token, "kept", {"epochs": 5}, checkpoint((1.0,)))
    hidden = store.submit(code, token, "hidden", {}, checkpoint((2.0,)))
    store.hide_entry(code, secret, hidden.id)
    del store

    again = backend.make()
    assert again.room_state(code) == (View("explorer", "vae-2d", {"digit": "3"}), 1, True, "Train a **VAE** with β = 4.")
    assert again.rejoin(code, token) == ana
    assert again.entries(code) == [kept]
    assert [e.hidden for e in again.entries(code, include_hidden=True)] == [False, True]
    assert again.entry_blob(code, kept.id) == checkpoint((1.0,))
    assert again.entry_blob(code, hidden.id) == checkpoint((2.0,))
    assert again.push_view(code, secret, View("lab")) == 2  # the secret still works, the version goes on
    assert again.join(code, "ana")[0].name == "ana (2)"  # names taken before the restart stay taken


def test_two_store_objects_share_a_room(backend):
    """The replica case: two Streamlit servers, one store each, on the same backend."""
    one, two = backend.make(), backend.make()
    room, secret = one.open_room()
    member, token = two.join(room.code, "Ana")
    assert one.rejoin(room.code, token) == member
    assert one.push_view(room.code, secret, View("compare", "ae", {"k": "v"})) == 1
    assert two.room_state(room.code) == (View("compare", "ae", {"k": "v"}), 1, False, "")
    assert two.push_view(room.code, secret, View("lab")) == 2
    assert one.room_state(room.code).version == 2
    entry = two.submit(room.code, token, "m", {}, checkpoint())
    assert one.entries(room.code) == [entry]
    one.set_frozen(room.code, secret, True)
    assert two.room_state(room.code).frozen is True
    one.withdraw(room.code, token, entry.id)
    assert two.entries(room.code) == []


def test_rooms_are_isolated(store):
    a, secret_a, _, token_a = room_with_student(store, "Ana")
    b, _, _, _ = room_with_student(store, "Ben")
    entry_a = store.submit(a, token_a, "a's model", {}, checkpoint())
    store.push_view(a, secret_a, View("lab"))
    store.set_task(a, secret_a, "room A's task")
    assert store.entries(b, include_hidden=True) == []
    assert store.room_state(b) == (None, 0, False, "")
    with pytest.raises(NotFound, match=f"^Room {b} has no entry {entry_a.id}.$"):
        store.entry_blob(b, entry_a.id)
    with pytest.raises(PermissionError, match=f"^This student token does not belong to room {b}"):
        store.rejoin(b, token_a)
    with pytest.raises(PermissionError):
        store.submit(b, token_a, "sneaky", {}, checkpoint())
    with pytest.raises(PermissionError):
        store.withdraw(b, token_a, entry_a.id)
    with pytest.raises(PermissionError, match=f"^The teacher secret for room {b} is wrong.$"):
        store.clear_board(b, secret_a)
    assert store.join(b, "Ana")[0].name == "Ana"  # names are per room
    assert store.entries(a) == [entry_a]


# ------------------------------------------------------------------ teacher powers

POWERS = {
    "push_view": lambda s, code, secret, entry: s.push_view(code, secret, View("lab")),
    "set_frozen": lambda s, code, secret, entry: s.set_frozen(code, secret, True),
    "set_task": lambda s, code, secret, entry: s.set_task(code, secret, "hijacked"),
    "hide_entry": lambda s, code, secret, entry: s.hide_entry(code, secret, entry),
    "remove_entry": lambda s, code, secret, entry: s.remove_entry(code, secret, entry),
    "clear_board": lambda s, code, secret, entry: s.clear_board(code, secret),
    "close_room": lambda s, code, secret, entry: s.close_room(code, secret),
}


@pytest.mark.parametrize("power", POWERS)
def test_teacher_powers_need_the_secret(store, power):
    code, secret, _, token = room_with_student(store)
    entry = store.submit(code, token, "m", {}, checkpoint())
    before = (store.room_state(code), store.entries(code, include_hidden=True))
    for wrong, message in [(None, f"^Only the teacher of room {code} can do this, and no teacher secret was given.$"),
                           ("", f"^Only the teacher of room {code} can do this, and no teacher secret was given.$"),
                           (secret[:-1] + ("A" if secret[-1] != "A" else "B"),
                            f"^The teacher secret for room {code} is wrong.$"),
                           (token, f"^The teacher secret for room {code} is wrong.$")]:
        with pytest.raises(PermissionError, match=message):
            POWERS[power](store, code, wrong, entry.id)
    assert (store.room_state(code), store.entries(code, include_hidden=True)) == before
    POWERS[power](store, code, secret, entry.id)  # and the right secret works


def test_push_versions_increase(store):
    room, secret = store.open_room()
    assert store.room_state(room.code) == (None, 0, False, "")
    versions = [store.push_view(room.code, secret, View("lab", f"model-{i}", {"i": str(i)})) for i in range(3)]
    assert versions == [1, 2, 3]
    assert store.room_state(room.code) == (View("lab", "model-2", {"i": "2"}), 3, False, "")
    store.set_frozen(room.code, secret, True)
    store.set_task(room.code, secret, "  Line one\r\nline two\x07  ")
    _, version, frozen, task = store.room_state(room.code)
    assert (version, frozen, task) == (3, True, "Line one\nline two")
    with pytest.raises(ValueError, match="^A view's params must map text to text"):
        store.push_view(room.code, secret, View("lab", "m", {"epochs": 5}))


def test_moderation(store):
    code, secret, _, token = room_with_student(store)
    first, second, third = (store.submit(code, token, f"m{i}", {}, checkpoint((float(i),))) for i in range(3))
    store.hide_entry(code, secret, second.id)
    assert [e.id for e in store.entries(code)] == [first.id, third.id]
    assert [(e.id, e.hidden) for e in store.entries(code, include_hidden=True)] == \
           [(first.id, False), (second.id, True), (third.id, False)]
    store.hide_entry(code, secret, second.id, hidden=False)
    assert len(store.entries(code)) == 3
    store.remove_entry(code, secret, first.id)
    with pytest.raises(NotFound, match=f"^Room {code} has no entry {first.id}.$"):
        store.entry_blob(code, first.id)
    with pytest.raises(NotFound, match=f"^Room {code} has no entry {first.id}.$"):
        store.remove_entry(code, secret, first.id)
    with pytest.raises(NotFound, match=f"^Room {code} has no entry 999999.$"):
        store.hide_entry(code, secret, 999999)
    assert store.clear_board(code, secret) == 2
    assert store.entries(code, include_hidden=True) == []


def test_student_withdraws_only_their_own(store):
    code, _, ana, ana_token = room_with_student(store, "Ana")
    _, ben_token = store.join(code, "Ben")
    entry = store.submit(code, ana_token, "ana's", {"loss": 0.5}, checkpoint())
    assert (entry.author, entry.member_id, entry.name, entry.meta) == ("Ana", ana.id, "ana's", {"loss": 0.5})
    with pytest.raises(PermissionError, match=f"^Entry {entry.id} in room {code} belongs to another student; "
                                              f"you can only withdraw your own.$"):
        store.withdraw(code, ben_token, entry.id)
    with pytest.raises(PermissionError, match="^This student token does not belong"):
        store.withdraw(code, None, entry.id)
    assert store.entries(code) == [entry]
    store.withdraw(code, ana_token, entry.id)
    assert store.entries(code) == []
    with pytest.raises(NotFound, match=f"^Room {code} has no entry {entry.id}.$"):
        store.withdraw(code, ana_token, entry.id)


def test_rooms_expire_and_close(backend):
    store = backend.make(Limits(rooms_per_server=2, room_hours=1))
    old, _ = store.open_room()
    room, secret = store.open_room()
    backend.clock.now += 1800
    with pytest.raises(LimitError):
        store.open_room()
    store.close_room(room.code, secret)
    with pytest.raises(NotFound, match=f"^No open room has the code {room.code}.$"):
        store.room_state(room.code)
    store.open_room()
    backend.clock.now += 1800  # the first room is an hour old now
    with pytest.raises(NotFound, match=f"^No open room has the code {old.code}.$"):
        store.get_room(old.code)
    store.open_room()  # the expired room no longer counts


# ------------------------------------------------------------------ names

def test_names_are_cleaned_but_html_stays_text(store):
    room, _ = store.open_room()
    code = room.code
    cases = {
        "  Ana\x00\x07 Lee \n": "Ana Lee",
        "Kai\tLi\r\n": "Kai Li",
        "Be\u202eN": "BeN",  # a right-to-left override would make the name read backwards
        "Zoe\u200b": "Zoe",  # zero-width space: would make a look-alike of "Zoe"
        "<script>alert(1)</script>": "<script>alert(1)</script>",
        "Ama 👩\u200d🔬": "Ama 👩\u200d🔬",
    }
    for raw, clean in cases.items():
        assert store.join(code, raw)[0].name == clean
    with pytest.raises(ValueError, match="^A display name needs at least one visible character.$"):
        store.join(code, " \x00\u200b\n ")
    with pytest.raises(ValueError, match="^A display name can have at most 40 characters; this one has 41.$"):
        store.join(code, "x" * 41)
    assert store.join(code, "y" * 40)[0].name == "y" * 40


def test_duplicate_names_get_a_suffix(store):
    room, _ = store.open_room()
    names = [store.join(room.code, n)[0].name for n in ["Ana", "ana", " ANA ", "Ａｎａ", "Ana (2)"]]
    assert names == ["Ana", "ana (2)", "ANA (3)", "Ａｎａ (4)", "Ana (2) (2)"]
    long = "L" * 40
    assert [store.join(room.code, long)[0].name for _ in range(2)] == [long, "L" * 36 + " (2)"]


# ------------------------------------------------------------------ limits

def test_limit_entries_per_room(backend):
    store = backend.make(Limits(entries_per_room=3, submissions_per_minute=100))
    code, secret, _, token = room_with_student(store)
    entries = [store.submit(code, token, "m", {}, checkpoint()) for _ in range(3)]
    message = (f"^The board of room {code} is full \\(3 entries\\); the teacher can remove some, "
               f"or you can withdraw one of yours.$")
    with pytest.raises(LimitError, match=message):
        store.submit(code, token, "one too many", {}, checkpoint())
    store.hide_entry(code, secret, entries[0].id)  # hidden entries still take a place
    with pytest.raises(LimitError, match=message):
        store.submit(code, token, "one too many", {}, checkpoint())
    store.withdraw(code, token, entries[1].id)
    store.submit(code, token, "fits again", {}, checkpoint())


def test_limit_bytes_per_entry(backend):
    store = backend.make(Limits(bytes_per_entry=1_000_000))
    code, _, _, token = room_with_student(store)
    fits = checkpoint(np.zeros(240_000))  # 960,000 bytes of tensor and a header
    assert len(fits) <= 1_000_000
    store.submit(code, token, "fits", {}, fits)
    big = checkpoint(np.zeros(300_000))
    with pytest.raises(LimitError, match="^This checkpoint is 1.2 MB, over the limit of 1 MB for one entry.$"):
        store.submit(code, token, "too big", {}, big)
    default = backend.make()
    with pytest.raises(LimitError, match="^This checkpoint is 8.0 MB, over the limit of 8 MB for one entry.$"):
        default.submit(code, token, "too big", {}, b"\0" * 8_000_001)


def test_limit_submissions_per_minute(backend):
    store = backend.make()
    code, _, _, token = room_with_student(store)
    _, other = store.join(code, "Ben")
    for _ in range(5):
        store.submit(code, token, "m", {}, checkpoint())
    with pytest.raises(LimitError, match="^Only 5 submissions per minute are allowed; try again in 50 s.$"):
        store.submit(code, token, "sixth", {}, checkpoint())
    store.submit(code, other, "another student's", {}, checkpoint())
    backend.clock.now += 50  # the next minute
    store.submit(code, token, "sixth", {}, checkpoint())
    assert len(store.entries(code)) == 7


def test_limit_rooms_per_server(backend):
    store = backend.make(Limits(rooms_per_server=3))
    for _ in range(3):
        store.open_room()
    with pytest.raises(LimitError, match="^This server already has 3 open rooms, the most it allows; "
                                         "close one before opening another.$"):
        store.open_room()
    with pytest.raises(LimitError):
        backend.make(Limits(rooms_per_server=3)).open_room()  # counted across store objects (replicas)


def test_limit_members_per_room(backend):
    store = backend.make(Limits(members_per_room=3))
    room, _ = store.open_room()
    names = [store.join(room.code, "Kim")[0].name for _ in range(3)]
    assert names == ["Kim", "Kim (2)", "Kim (3)"]
    with pytest.raises(LimitError, match=f"^Room {room.code} is full \\(3 students\\); no one else can join.$"):
        store.join(room.code, "Lee")


def test_limit_task_and_meta(store):
    code, secret, _, token = room_with_student(store)
    store.set_task(code, secret, "x" * 2000)
    with pytest.raises(LimitError, match="^The task has 2001 characters, over the limit of 2000.$"):
        store.set_task(code, secret, "x" * 2001)
    assert store.room_state(code).task == "x" * 2000
    with pytest.raises(LimitError, match="^The entry's metadata is 4010 bytes of JSON, over the limit of 4000.$"):
        store.submit(code, token, "m", {"notes": "n" * 3997}, checkpoint())
    with pytest.raises(ValueError, match="^An entry's metadata must be plain JSON"):
        store.submit(code, token, "m", {"loss": float("nan")}, checkpoint())


# ------------------------------------------------------------------ blobs

def test_only_safetensors_are_accepted(store):
    code, _, _, token = room_with_student(store)
    good = checkpoint((1.0, 2.0, 3.0))
    bad = {
        b"\x80\x04\x95" + b"\0" * 40: "looks like a PyTorch .pt/.pth checkpoint",
        b"PK\x03\x04" + b"\0" * 40: "looks like a PyTorch .pt/.pth checkpoint",
        b"hello": "it is only 5 bytes long",
        b"\xff" * 8 + b"{}": "its header claims",
        good[:-4]: "its tensors need 12 bytes but 8 follow the header",
        good + b"\0": "its tensors need 12 bytes but 13 follow the header",
        len(b"[1]").to_bytes(8, "little") + b"[1]": "its header does not start with JSON",
        len(b"{x}").to_bytes(8, "little") + b"{x}": "its header is not valid JSON",
    }
    for blob, reason in bad.items():
        with pytest.raises(ValueError, match=reason.replace(".", r"\.").replace("(", r"\(")):
            store.submit(code, token, "bad", {}, blob)
    assert store.entries(code) == []
    entry = store.submit(code, token, "good", {}, good)
    assert store.entry_blob(code, entry.id) == good


# ------------------------------------------------------------------ open_store

def test_open_store_urls(tmp_path, monkeypatch):
    monkeypatch.setenv("AEVIZ_DATA", str(tmp_path / "data"))
    monkeypatch.delenv("AEVIZ_STORE", raising=False)
    store = open_store()
    assert isinstance(store, SQLiteStore) and store.folder == tmp_path / "data" / "classroom"
    store = open_store(f"sqlite://{tmp_path}/elsewhere")
    assert store.folder == tmp_path / "elsewhere"
    monkeypatch.setenv("AEVIZ_STORE", f"sqlite://{tmp_path}/from-env")
    assert open_store().folder == tmp_path / "from-env"
    with pytest.raises(StoreError, match=r"^AEVIZ_STORE=ftp://x is not a room store URL: use sqlite:///folder or "
                                         r"redis://host:port/db\.$"):
        open_store("ftp://x")
    with pytest.raises(StoreError, match=r"^AEVIZ_STORE=sqlite:/// names no folder"):
        open_store("sqlite:///")


def test_open_store_redis(redis_url):
    from aeviz.classroom.redis_store import RedisStore

    assert isinstance(open_store(redis_url), RedisStore)
    port = free_port()  # nothing listens there
    with pytest.raises(StoreError, match=f"^Cannot reach the room store at redis://127.0.0.1:{port}/0: "
                                         f"is redis-server running\\?$"):
        open_store(f"redis://:hunter2@127.0.0.1:{port}/0")  # and the password stays out of the message


# ------------------------------------------------------------------ races

def race(calls) -> list:
    """Run the calls on threads released together; each result is a value or the exception it raised."""
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def run(i, call):
        barrier.wait()
        try:
            results[i] = call()
        except Exception as err:
            results[i] = err

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_caps_hold_when_replicas_race(backend):
    """Two store objects (two replicas), ten threads: the last places on a board and in a room go once."""
    limits = Limits(entries_per_room=4, members_per_room=6)
    one, two = backend.make(limits), backend.make(limits)
    room, _ = one.open_room()
    joined = race([lambda s=(one, two)[i % 2]: s.join(room.code, "Ana") for i in range(10)])
    members = [r for r in joined if not isinstance(r, Exception)]
    assert len(members) == 6 and all(isinstance(r, LimitError) for r in joined if r not in members)
    assert sorted(m.name for m, _ in members) == ["Ana"] + [f"Ana ({n})" for n in range(2, 7)]
    tokens = [token for _, token in members]
    submitted = race([lambda s=(one, two)[i % 2], t=tokens[i]: s.submit(room.code, t, "m", {}, checkpoint())
                      for i in range(6)])
    assert sum(not isinstance(r, Exception) for r in submitted) == 4
    assert sum(isinstance(r, LimitError) for r in submitted) == 2
    assert len(two.entries(room.code)) == 4


# ------------------------------------------------------------------ what each backend leaves behind

def test_sqlite_files_follow_the_board(tmp_path):
    store = SQLiteStore(tmp_path, clock=Clock())
    code, secret, _, token = room_with_student(store)
    entries = [store.submit(code, token, f"m{i}", {}, checkpoint((float(i),))) for i in range(4)]

    def files():
        return sorted(p.read_bytes() for p in (tmp_path / "blobs").rglob("*") if p.is_file())

    assert files() == sorted(checkpoint((float(i),)) for i in range(4))  # no temporary files either
    store.withdraw(code, token, entries[0].id)
    store.remove_entry(code, secret, entries[1].id)
    assert files() == sorted(checkpoint((float(i),)) for i in (2, 3))
    assert store.clear_board(code, secret) == 2 and files() == []
    store.submit(code, token, "again", {}, checkpoint())
    store.close_room(code, secret)
    assert list((tmp_path / "blobs").iterdir()) == []


def test_sqlite_refuses_a_newer_schema(tmp_path):
    import sqlite3

    SQLiteStore(tmp_path)
    with sqlite3.connect(tmp_path / "rooms.sqlite3") as con:
        assert con.execute("PRAGMA user_version").fetchone()[0] == 2
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        con.execute("PRAGMA user_version = 99")
    with pytest.raises(StoreError, match="has schema version 99, newer than this aeviz understands \\(2\\); "
                                         "update aeviz.$"):
        SQLiteStore(tmp_path)


def test_redis_keys_follow_the_rooms(redis_url):
    import redis

    from aeviz.classroom.redis_store import RedisStore

    clock, prefix = Clock(), f"keys-{uuid.uuid4().hex[:8]}:"
    store = RedisStore(redis_url, clock=clock, prefix=prefix)
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    code, secret, _, token = room_with_student(store)
    first = store.submit(code, token, "m", {}, checkpoint())
    second = store.submit(code, token, "m", {}, checkpoint())
    store.hide_entry(code, secret, second.id)
    room = f"{prefix}room:{code}"
    assert client.exists(f"{room}:blob:{first.id}", f"{room}:blob:{second.id}", f"{room}:hidden") == 3
    store.withdraw(code, token, second.id)
    assert client.exists(f"{room}:blob:{second.id}", f"{room}:hidden") == 0
    store.close_room(code, secret)
    def left():
        keys = (k.removeprefix(prefix) for k in client.scan_iter(f"{prefix}*"))
        return sorted(k for k in keys if not k.startswith("rate:"))

    assert left() == ["next_entry", "next_member"]
    rates = list(client.scan_iter(f"{prefix}rate:*"))
    assert len(rates) == 1 and client.ttl(rates[0]) > 0  # the rate counter expires by itself
    code, _, _, token = room_with_student(store)
    store.submit(code, token, "m", {}, checkpoint())
    clock.now += 25 * 3600
    new, _ = store.open_room()  # purges expired rooms first
    assert left() == sorted(["next_entry", "next_member", "rooms", f"room:{new.code}"])


def test_a_redis_that_goes_away_is_one_sentence():
    pytest.importorskip("redis")
    from aeviz.classroom.redis_store import RedisStore

    port = free_port()  # as if redis-server stopped after the app started
    store = RedisStore(f"redis://127.0.0.1:{port}/2")
    with pytest.raises(StoreError, match=f"^Cannot reach the room store at redis://127.0.0.1:{port}/2: "
                                         f"is redis-server running\\?$"):
        store.room_state("ABCD")


def test_a_full_redis_refuses_with_a_sentence(tmp_path):
    if not REDIS_SERVER.exists():
        pytest.skip(f"{REDIS_SERVER} is not installed")
    from aeviz.classroom.redis_store import RedisStore

    proc, url = start_redis(tmp_path, "--maxmemory", "8mb", "--maxmemory-policy", "noeviction")
    try:
        store = RedisStore(url, Limits(submissions_per_minute=100), Clock())
        code, secret, _, token = room_with_student(store)
        blob = checkpoint(np.zeros(250_000))  # 1 MB
        with pytest.raises(LimitError, match=f"^The room store at {url} is out of memory; the teacher can clear a "
                                             f"board or close a room.$"):
            for _ in range(20):
                store.submit(code, token, "m", {}, blob)
        entries = store.entries(code)
        assert 0 < len(entries) < 8 and all(store.entry_blob(code, e.id) == blob for e in entries)  # no half entry
        store.clear_board(code, secret)
        store.submit(code, token, "fits again", {}, blob)
    finally:
        stop(proc)


# ------------------------------------------------------------------ the room's shared dataset

def dataset_blob(n_train=24, n_test=6, d=4, seed=0, **meta) -> bytes:
    """A dataset file as aeviz.userdata.dataset_bytes writes one (float32 samples in [0, 1], int64 labels)."""
    rng = np.random.default_rng(seed)
    tensors = {"x_train": rng.random((n_train, d), np.float32), "y_train": np.arange(n_train) % 3,
               "x_test": rng.random((n_test, d), np.float32), "y_test": np.arange(n_test) % 3}
    return save(tensors, metadata={"format": "aeviz-userdata/1", "kind": "points", "description": "A table.",
                                   **meta})


INFO = {"rows": 30, "shape": [4], "description": "The teacher's file 'parts.csv': 4 numeric columns."}


def test_the_teacher_shares_a_dataset_that_every_member_reads(store):
    code, secret, _, token = room_with_student(store)
    assert store.room_dataset(code) is None
    with pytest.raises(NotFound, match=f"^The teacher of room {code} has not shared a dataset.$"):
        store.dataset_blob(code)
    blob = dataset_blob()
    shared = store.share_dataset(code, secret, "user:parts-1a2b", "  parts\tof the lab ", INFO, blob)
    assert (shared.code, shared.name, shared.title, shared.meta, shared.size, shared.created) == (
        code, "user:parts-1a2b", "parts of the lab", INFO, len(blob), START)
    assert store.room_dataset(code) == shared
    assert store.dataset_blob(code) == (shared, blob)
    entry = store.submit(code, token, "trained on it", {"dataset": shared.name}, checkpoint())
    other, _, _, _ = room_with_student(store, "Ben")
    assert store.room_dataset(other) is None  # rooms are isolated
    second = dataset_blob(seed=1)
    again = store.share_dataset(code, secret, "user:other-9f", "other", {}, second)  # replaces it
    assert store.dataset_blob(code) == (again, second)
    assert store.unshare_dataset(code, secret) is True and store.unshare_dataset(code, secret) is False
    assert store.room_dataset(code) is None
    assert store.entries(code) == [entry]  # entries trained on it stay


def test_only_the_teacher_shares_replaces_or_removes_the_dataset(store):
    code, secret, _, token = room_with_student(store)
    blob = dataset_blob()
    shared = store.share_dataset(code, secret, "user:parts", "parts", INFO, blob)
    for wrong, message in [(None, f"^Only the teacher of room {code} can do this, and no teacher secret was given.$"),
                           (token, f"^The teacher secret for room {code} is wrong.$")]:
        with pytest.raises(PermissionError, match=message):
            store.share_dataset(code, wrong, "user:mine", "mine", {}, dataset_blob(seed=2))
        with pytest.raises(PermissionError, match=message):
            store.unshare_dataset(code, wrong)
        with pytest.raises(PermissionError, match=message):  # the secret is checked before the bytes
            store.share_dataset(code, wrong, "user:mine", "mine", {}, b"not even a file")
    assert store.dataset_blob(code) == (shared, blob)


def test_restart_keeps_the_shared_dataset(backend):
    store = backend.make()
    code, secret, _, _ = room_with_student(store)
    blob = dataset_blob()
    shared = store.share_dataset(code, secret, "user:parts", "parts", INFO, blob)
    del store
    again = backend.make()
    assert again.dataset_blob(code) == (shared, blob)
    assert again.unshare_dataset(code, secret) is True  # the secret still works on it


def test_limit_bytes_per_dataset(backend):
    store = backend.make(Limits(bytes_per_dataset=100_000))
    code, secret, _, _ = room_with_student(store)
    fits = dataset_blob(n_train=4000, n_test=1000, d=4)  # 80,000 bytes of samples, 40,000 of labels: too big
    small = dataset_blob(n_train=2000, n_test=500, d=4)
    assert len(small) <= 100_000 < len(fits)
    store.share_dataset(code, secret, "user:small", "small", {}, small)
    with pytest.raises(LimitError, match=f"^This dataset is {len(fits) / 1e6:.1f} MB as stored, over the limit of "
                                         f"0.1 MB for a class dataset; read fewer rows or smaller images, then share "
                                         f"it again.$"):
        store.share_dataset(code, secret, "user:big", "big", {}, fits)
    assert store.room_dataset(code).name == "user:small"  # the one shared before stays
    assert backend.make().limits.bytes_per_dataset == 20_000_000


def test_only_dataset_files_can_be_shared(store):
    code, secret, _, _ = room_with_student(store)
    rng = np.random.default_rng(0)
    x = rng.random((8, 3), np.float32)
    bad = {
        b"\x80\x04\x95" + b"\0" * 40: "looks like a PyTorch .pt/.pth checkpoint",
        dataset_blob()[:-4]: "This file is not a .safetensors dataset: its tensors need",
        checkpoint(): "This file is not an aeviz dataset: its metadata does not say aeviz-userdata/1.",
        save({"x_train": x}, metadata={"format": "aeviz-userdata/1"}):
            "This file is not an aeviz dataset: it must hold exactly the tensors x_train, y_train, x_test, y_test.",
        save({"x_train": x, "y_train": np.arange(8), "x_test": x, "y_test": np.arange(7)},
             metadata={"format": "aeviz-userdata/1"}): "its test samples and labels do not match.",
        save({"x_train": x, "y_train": np.arange(8), "x_test": x[:, :2], "y_test": np.arange(8)},
             metadata={"format": "aeviz-userdata/1"}): "its train and test samples have different shapes.",
        save({"x_train": x.astype(np.float64), "y_train": np.arange(8), "x_test": x, "y_test": np.arange(8)},
             metadata={"format": "aeviz-userdata/1"}): "its samples must be float32 and its labels int64 or float32.",
    }
    for blob, reason in bad.items():
        with pytest.raises(ValueError, match=reason.replace(".", r"\.").replace("(", r"\(")):
            store.share_dataset(code, secret, "user:bad", "bad", {}, blob)
    with pytest.raises(ValueError, match="^'user:../etc' is not a dataset name"):
        store.share_dataset(code, secret, "user:../etc", "bad", {}, dataset_blob())
    with pytest.raises(ValueError, match="^A dataset's title needs at least one visible character.$"):
        store.share_dataset(code, secret, "user:ok", "\u200b ", {}, dataset_blob())
    assert store.room_dataset(code) is None


def test_closing_or_expiring_a_room_takes_its_dataset(backend):
    store = backend.make()
    code, secret, _, _ = room_with_student(store)
    store.share_dataset(code, secret, "user:parts", "parts", INFO, dataset_blob())
    store.close_room(code, secret)
    with pytest.raises(NotFound, match=f"^No open room has the code {code}.$"):
        store.room_dataset(code)
    with pytest.raises(NotFound):
        store.dataset_blob(code)


def test_sqlite_dataset_files_follow_the_room(tmp_path):
    store = SQLiteStore(tmp_path, clock=Clock())
    code, secret, _, _ = room_with_student(store)

    def files():
        return sorted(p.read_bytes() for p in (tmp_path / "blobs").rglob("*") if p.is_file())

    second = dataset_blob(seed=2)
    store.share_dataset(code, secret, "user:a", "a", {}, dataset_blob(seed=1))
    store.share_dataset(code, secret, "user:b", "b", {}, second)
    assert files() == [second]  # the replaced one's file is gone
    store.unshare_dataset(code, secret)
    assert files() == []


def test_sqlite_schema_1_gains_room_datasets(tmp_path):
    import sqlite3

    from aeviz.classroom import sqlite as backend_module

    old = backend_module._SCHEMA[:backend_module._SCHEMA.index("CREATE TABLE room_datasets")]
    with sqlite3.connect(tmp_path / "rooms.sqlite3") as con:
        con.executescript(old + "; PRAGMA user_version = 1;")
        con.execute("INSERT INTO rooms (code, uid, secret_hash, created, expires) VALUES ('ABCD', 'u', 'h', 0, ?)",
                    (START + 3600,))
    store = SQLiteStore(tmp_path, clock=Clock())
    assert store.room_dataset("ABCD") is None  # the old room is there, and the new table too
    with sqlite3.connect(tmp_path / "rooms.sqlite3") as con:
        assert con.execute("PRAGMA user_version").fetchone()[0] == 2


def test_redis_dataset_key_follows_the_room(redis_url):
    import redis

    from aeviz.classroom.redis_store import RedisStore

    prefix = f"ds-{uuid.uuid4().hex[:8]}:"
    store = RedisStore(redis_url, clock=Clock(), prefix=prefix)
    client = redis.Redis.from_url(redis_url)
    code, secret, _, _ = room_with_student(store)
    blob = dataset_blob()
    store.share_dataset(code, secret, "user:parts", "parts", INFO, blob)
    assert client.hget(f"{prefix}room:{code}:dataset", "blob") == blob
    store.close_room(code, secret)
    assert client.keys(f"{prefix}room:{code}*") == []
