"""Rooms and a class board, in a store that several Streamlit replicas can share. Never imports streamlit.

    store = open_store()                       # AEVIZ_STORE: empty or sqlite:///folder -> SQLite, redis://... -> Redis
    room, secret = store.open_room(os.environ.get("AEVIZ_TEACHER_TOKEN"))
    member, token = store.join(room.code, "Ana")
    store.push_view(room.code, secret, View("explorer", "vae-2d", {"digit": "3"}))
    view, version, frozen, task = store.room_state(room.code)

Open one store per process (st.cache_resource) and share it: it is thread-safe.
"""
from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from ..workspace import data_dir
from .store import (
    CODE_ALPHABET,
    NAME_CHARS,
    TASK_CHARS,
    Entry,
    LimitError,
    Limits,
    Member,
    NotFound,
    Room,
    RoomDataset,
    RoomState,
    RoomStore,
    StoreError,
    View,
)

__all__ = ["CODE_ALPHABET", "NAME_CHARS", "TASK_CHARS", "Entry", "Limits", "LimitError", "Member", "NotFound", "Room",
           "RoomDataset", "RoomState", "RoomStore", "StoreError", "View", "data_dir", "open_store"]




def _shown(url: str) -> str:
    """The URL without a password, for messages."""
    try:
        parts = urlsplit(url)
        if parts.password is not None or parts.username:
            host = parts.hostname or ""
            netloc = f"{host}:{parts.port}" if parts.port else host
            return urlunsplit(parts._replace(netloc=netloc))
    except ValueError:
        pass
    return url


def open_store(url: str | None = None, limits: Limits | None = None) -> RoomStore:
    """The room store that `url` (else AEVIZ_STORE) names: empty -> SQLite in data_dir()/classroom;
    sqlite:///folder -> SQLite in that folder; redis://host:port/db (or rediss://) -> Redis.
    StoreError, with one sentence, for a bad URL or a Redis that cannot be reached."""
    if url is None:
        url = os.environ.get("AEVIZ_STORE", "")
    url = url.strip()
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if not url or url in ("sqlite:", "sqlite://"):
        from .sqlite import SQLiteStore

        return SQLiteStore(data_dir() / "classroom", limits)
    if scheme == "sqlite":
        from .sqlite import SQLiteStore

        path = urlsplit(url).path if url.startswith("sqlite://") else ""
        if not path.strip("/"):
            raise StoreError(f"AEVIZ_STORE={_shown(url)} names no folder: write sqlite:///absolute/folder.")
        return SQLiteStore(Path(path), limits)
    if scheme in ("redis", "rediss"):
        return _open_redis(url, limits)
    raise StoreError(f"AEVIZ_STORE={_shown(url)} is not a room store URL: use sqlite:///folder or "
                     f"redis://host:port/db.")


def _open_redis(url: str, limits: Limits | None) -> RoomStore:
    shown = _shown(url)
    try:
        import redis
    except ImportError:
        raise StoreError(f"The room store at {shown} needs the redis package (pip install redis).") from None
    from .redis_store import RedisStore, unreachable_message

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=10, health_check_interval=30)
    except ValueError as err:
        raise StoreError(f"AEVIZ_STORE={shown} is not a valid Redis URL ({err}).") from None
    try:
        client.ping()
    except redis.AuthenticationError:
        raise StoreError(f"The room store at {shown} refused the password in AEVIZ_STORE.") from None
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        raise StoreError(unreachable_message(shown)) from None
    except redis.RedisError as err:
        raise StoreError(f"The room store at {shown} answered with an error ({err}).") from None
    return RedisStore(client, limits)
