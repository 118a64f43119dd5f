"""The room store on Redis, shared by Streamlit replicas on any number of hosts (AEVIZ_STORE=redis://host:port/db).

Keys, under a prefix (default ``aeviz:``):
- ``rooms``: sorted set, room code -> expiry time (what the rooms-per-server limit counts)
- ``room:<code>``: hash with secret_hash, created, expires, view (JSON), version, frozen, task
- ``room:<code>:tokens``: hash, sha256 of a student token -> member JSON; ``room:<code>:names``: name key -> id
- ``room:<code>:members``: hash, member id -> member JSON
- ``room:<code>:entries``: hash, entry id -> entry JSON; ``room:<code>:hidden``: set of hidden entry ids
- ``room:<code>:blob:<id>``: the checkpoint bytes (at most Limits.bytes_per_entry)
- ``room:<code>:dataset``: hash with ``info`` (the RoomDataset as JSON) and ``blob`` (its bytes, at most
  Limits.bytes_per_dataset), written and read together
- ``next_member``, ``next_entry``: INCR counters, so ids never repeat, even across rooms
- ``rate:<member id>:<minute>``: INCR + EXPIRE counter of a student's submissions in one minute

Every write that depends on a check (room still open, count under its cap, name free, entry still there) is one Lua
script, so two replicas cannot both take the last place on a board. Teacher secrets are checked in Python with
hmac.compare_digest before the script runs; the script re-checks that the room is still the same one.
Single-node Redis only: the scripts build some key names themselves (not Redis Cluster compatible).

Running it for a class: keep data across a Redis restart with `appendonly yes`; never let Redis evict room keys
(`maxmemory-policy noeviction`: a full Redis then refuses a submission with a LimitError sentence). Checkpoints live in
memory: at the default limits the worst case is 50 rooms x (60 entries x 8 MB + a 20 MB dataset) = 25 GB, while a typical aeviz
checkpoint is 0.1-2 MB (60 x 1 MB took 63 MB of used_memory in `python -m aeviz.classroom.measure`); set
`maxmemory` and, if needed, lower Limits.
"""
from __future__ import annotations

import json
import secrets
import time

import redis

from . import store as base  # the interface, the data classes and the checks every backend shares

# ARGV[1] prefix, ARGV[2] code, ARGV[3] now; a script that needs an open room starts with this.
_OPEN_ROOM = """
local p, code, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
local room = p .. 'room:' .. code
local expires = tonumber(redis.call('HGET', room, 'expires'))
if not expires or expires <= now then return {'gone'} end
"""

# ARGV[4] secret hash, ARGV[5] expires, ARGV[6] rooms per server, ARGV[7] created
_OPEN = """
local p, code, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
local rooms = p .. 'rooms'
if redis.call('ZCOUNT', rooms, '(' .. ARGV[3], '+inf') >= tonumber(ARGV[6]) then return 'full' end
local room = p .. 'room:' .. code
if redis.call('EXISTS', room) == 1 then return 'taken' end
redis.call('HSET', room, 'secret_hash', ARGV[4], 'created', ARGV[7], 'expires', ARGV[5], 'version', 0,
           'frozen', 0, 'task', '')
redis.call('ZADD', rooms, ARGV[5], code)
return 'ok'
"""

# Deletes a room and all its keys. ARGV[4] 'expired' (only if it has expired by now) or a secret hash (only if
# the room still has it: not a room reopened with the same code meanwhile).
_PURGE = """
local p, code, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
local room = p .. 'room:' .. code
local info = redis.call('HMGET', room, 'expires', 'secret_hash')
if ARGV[4] == 'expired' then
  if info[1] and tonumber(info[1]) > now then return 0 end
elseif info[2] ~= ARGV[4] then
  return 0
end
for _, id in ipairs(redis.call('HKEYS', room .. ':entries')) do redis.call('DEL', room .. ':blob:' .. id) end
redis.call('DEL', room, room .. ':tokens', room .. ':names', room .. ':members', room .. ':entries',
           room .. ':hidden', room .. ':dataset')
redis.call('ZREM', p .. 'rooms', code)
return 1
"""

# ARGV[4] token hash, ARGV[5] members per room, then (name key, display name) pairs to try in order.
_JOIN = _OPEN_ROOM + """
if redis.call('HLEN', room .. ':members') >= tonumber(ARGV[5]) then return {'full'} end
local id = redis.call('INCR', p .. 'next_member')
for i = 6, #ARGV, 2 do
  if redis.call('HSETNX', room .. ':names', ARGV[i], id) == 1 then
    local member = cjson.encode({id = tostring(id), name = ARGV[i + 1], joined = ARGV[3]})
    redis.call('HSET', room .. ':members', id, member)
    redis.call('HSET', room .. ':tokens', ARGV[4], member)
    return {'ok', member}
  end
end
return {'taken'}
"""

# ARGV[4] token hash, ARGV[5] entries per room, ARGV[6] submissions per minute, ARGV[7] minute,
# ARGV[8] entry JSON without its id, ARGV[9] blob
_SUBMIT = _OPEN_ROOM + """
local member = redis.call('HGET', room .. ':tokens', ARGV[4])
if not member then return {'token'} end
if redis.call('HLEN', room .. ':entries') >= tonumber(ARGV[5]) then return {'full'} end
local mid = cjson.decode(member)['id']
local rate = p .. 'rate:' .. mid .. ':' .. ARGV[7]
if tonumber(redis.call('GET', rate) or '0') >= tonumber(ARGV[6]) then return {'rate'} end
redis.call('INCR', rate)
redis.call('EXPIRE', rate, 120)
local id = redis.call('INCR', p .. 'next_entry')
redis.call('HSET', room .. ':entries', id, ARGV[8])
redis.call('SET', room .. ':blob:' .. id, ARGV[9])
return {'ok', tostring(id), member}
"""

# ARGV[4] secret hash the caller checked; then the operation.
_TEACHER = _OPEN_ROOM + """
if redis.call('HGET', room, 'secret_hash') ~= ARGV[4] then return {'gone'} end
local op = ARGV[5]
if op == 'view' then
  redis.call('HSET', room, 'view', ARGV[6])
  return {'ok', tostring(redis.call('HINCRBY', room, 'version', 1))}
elseif op == 'set' then
  redis.call('HSET', room, ARGV[6], ARGV[7])
  return {'ok'}
elseif op == 'hide' or op == 'show' then
  if redis.call('HEXISTS', room .. ':entries', ARGV[6]) == 0 then return {'no entry'} end
  if op == 'hide' then redis.call('SADD', room .. ':hidden', ARGV[6])
  else redis.call('SREM', room .. ':hidden', ARGV[6]) end
  return {'ok'}
elseif op == 'remove' then
  if redis.call('HDEL', room .. ':entries', ARGV[6]) == 0 then return {'no entry'} end
  redis.call('DEL', room .. ':blob:' .. ARGV[6])
  redis.call('SREM', room .. ':hidden', ARGV[6])
  return {'ok'}
elseif op == 'clear' then
  local ids = redis.call('HKEYS', room .. ':entries')
  for _, id in ipairs(ids) do redis.call('DEL', room .. ':blob:' .. id) end
  redis.call('DEL', room .. ':entries', room .. ':hidden')
  return {'ok', tostring(#ids)}
elseif op == 'share' then
  redis.call('HSET', room .. ':dataset', 'info', ARGV[6], 'blob', ARGV[7])
  return {'ok'}
elseif op == 'unshare' then
  return {'ok', tostring(redis.call('DEL', room .. ':dataset'))}
end
return redis.error_reply('unknown operation ' .. op)
"""

# ARGV[4] entry id, ARGV[5] the member id that must own it
_WITHDRAW = _OPEN_ROOM + """
local entry = redis.call('HGET', room .. ':entries', ARGV[4])
if not entry then return {'no entry'} end
if tostring(cjson.decode(entry)['member_id']) ~= ARGV[5] then return {'not yours'} end
redis.call('HDEL', room .. ':entries', ARGV[4])
redis.call('DEL', room .. ':blob:' .. ARGV[4])
redis.call('SREM', room .. ':hidden', ARGV[4])
return {'ok'}
"""


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _status(reply) -> str:
    return _text(reply[0] if isinstance(reply, list) else reply)


def where(client: redis.Redis) -> str:
    """The server a client talks to, as a URL without a password, for messages."""
    kw = client.connection_pool.connection_kwargs
    if "path" in kw:
        return f"unix://{kw['path']}?db={kw.get('db', 0)}"
    return f"redis://{kw.get('host', 'localhost')}:{kw.get('port', 6379)}/{kw.get('db', 0)}"


def unreachable_message(shown: str) -> str:
    return f"Cannot reach the room store at {shown}: is redis-server running?"


@base.backend_errors_as_sentences
class RedisStore(base.RoomStore):
    """The room store in a Redis database. `client` is a redis.Redis (bytes replies) or a URL."""

    def __init__(self, client: redis.Redis | str, limits: base.Limits | None = None, clock: base.Clock = time.time,
                 prefix: str = "aeviz:"):
        if isinstance(client, str):
            client = redis.Redis.from_url(client, socket_connect_timeout=3, socket_timeout=10,
                                          health_check_interval=30)
        self.r = client
        self.limits = limits or base.Limits()
        self.clock = clock
        self.prefix = prefix
        self._open = self.r.register_script(_OPEN)
        self._purge = self.r.register_script(_PURGE)
        self._join = self.r.register_script(_JOIN)
        self._submit = self.r.register_script(_SUBMIT)
        self._teacher_op = self.r.register_script(_TEACHER)
        self._withdraw = self.r.register_script(_WITHDRAW)

    def __repr__(self) -> str:
        return f"RedisStore({where(self.r)!r}, prefix={self.prefix!r})"

    backend_errors = (redis.RedisError,)

    def failure(self, err: Exception) -> Exception:
        if isinstance(err, (redis.ConnectionError, redis.TimeoutError)):
            return base.StoreError(unreachable_message(where(self.r)))
        if str(err).startswith("OOM") or "maxmemory" in str(err):  # the text differs inside a script
            return base.LimitError(f"The room store at {where(self.r)} is out of memory; the teacher can clear a board "
                              f"or close a room.")
        return base.StoreError(f"The room store at {where(self.r)} answered with an error ({err}).")

    # ------------------------------------------------------------ helpers

    def _key(self, code: str, part: str = "") -> str:
        return f"{self.prefix}room:{code}{part}"

    def _args(self, code: str, *rest) -> list:
        return [self.prefix, code, repr(float(self.clock())), *rest]

    def _fields(self, code: str, *names: str) -> list:
        """Fields of an open room's hash, in one round trip; NotFound if it is closed or expired."""
        values = self.r.hmget(self._key(code), "expires", *names)
        if values[0] is None or float(values[0]) <= self.clock():
            raise base.NotFound(base.no_room_message(code))
        return values[1:]

    def _check_teacher(self, code: str, secret: str | None) -> str:
        (stored,) = self._fields(code, "secret_hash")
        base.check_teacher(code, secret, _text(stored))
        return _text(stored)

    def _teacher(self, code: str, secret: str | None, *op) -> list:
        stored = self._check_teacher(code, secret)
        reply = self._teacher_op(args=self._args(code, stored, *op))
        if _status(reply) == "gone":
            raise base.NotFound(base.no_room_message(code))
        return reply

    def _member(self, code: str, token: str | None) -> base.Member:
        token_hash = base.hash_secret(token) if token and isinstance(token, str) else ""
        with self.r.pipeline(transaction=False) as pipe:  # one round trip
            pipe.hget(self._key(code), "expires")
            pipe.hget(self._key(code, ":tokens"), token_hash)
            expires, member = pipe.execute()
        if expires is None or float(expires) <= self.clock():  # the room first, as in SQLite
            raise base.NotFound(base.no_room_message(code))
        if not token_hash or member is None:
            raise PermissionError(base.unknown_token_message(code))
        return self._member_from(code, member)

    @staticmethod
    def _member_from(code: str, data) -> base.Member:
        d = json.loads(data)
        return base.Member(int(d["id"]), code, d["name"], float(d["joined"]))

    def _purge_expired(self) -> None:
        now = self.clock()
        for code in self.r.zrangebyscore(f"{self.prefix}rooms", "-inf", now):
            self._purge(args=self._args(_text(code), "expired"))

    # ------------------------------------------------------------ rooms

    def open_room(self, teacher_secret: str | None = None) -> tuple[base.Room, str]:
        secret = base.check_new_secret(teacher_secret)
        self._purge_expired()
        now = self.clock()
        expires = now + self.limits.room_hours * 3600
        for length in base.code_lengths():
            code = base.new_code(length)
            status = _status(self._open(args=self._args(code, base.hash_secret(secret), repr(expires),
                                                        self.limits.rooms_per_server, repr(now))))
            if status == "full":
                raise base.LimitError(base.rooms_full_message(self.limits.rooms_per_server))
            if status == "ok":
                return base.Room(code, now, expires), secret
        raise base.StoreError("Could not find a free room code; try again.")

    def get_room(self, code: str) -> base.Room:
        code = base.normalise_code(code)
        created, expires = self._fields(code, "created", "expires")
        return base.Room(code, float(created), float(expires))

    def close_room(self, code: str, secret: str | None) -> None:
        code = base.normalise_code(code)
        stored = self._check_teacher(code, secret)
        self._purge(args=self._args(code, stored))

    # ------------------------------------------------------------ members

    def join(self, code: str, display_name: str) -> tuple[base.Member, str]:
        code = base.normalise_code(code)
        name = base.clean_line(display_name)
        self._fields(code)
        token = secrets.token_urlsafe(24)
        limit = self.limits.members_per_room
        pairs = [x for pair in base.name_candidates(name, limit + 1) for x in pair]
        reply = self._join(args=self._args(code, base.hash_secret(token), limit, *pairs))
        status = _status(reply)
        if status == "gone":
            raise base.NotFound(base.no_room_message(code))
        if status == "full":
            raise base.LimitError(base.members_full_message(code, limit))
        if status != "ok":  # cannot happen: there are more candidates than places
            raise base.StoreError(f"Could not find a free name in room {code}.")
        return self._member_from(code, reply[1]), token

    def rejoin(self, code: str, token: str | None) -> base.Member:
        return self._member(base.normalise_code(code), token)

    # ------------------------------------------------------------ teacher powers

    def push_view(self, code: str, secret: str | None, view: base.View) -> int:
        code = base.normalise_code(code)
        data = base.view_json(view)
        return int(self._teacher(code, secret, "view", data)[1])

    def set_frozen(self, code: str, secret: str | None, frozen: bool) -> None:
        code = base.normalise_code(code)
        self._teacher(code, secret, "set", "frozen", int(bool(frozen)))

    def set_task(self, code: str, secret: str | None, markdown_text: str) -> None:
        code = base.normalise_code(code)
        stored = self._check_teacher(code, secret)  # the secret before the text's own checks, as in SQLite
        task = base.clean_task(markdown_text)
        if _status(self._teacher_op(args=self._args(code, stored, "set", "task", task))) == "gone":
            raise base.NotFound(base.no_room_message(code))

    def hide_entry(self, code: str, secret: str | None, entry_id: int, hidden: bool = True) -> None:
        code = base.normalise_code(code)
        entry_id = base.entry_id_or_refuse(code, entry_id)
        if _status(self._teacher(code, secret, "hide" if hidden else "show", entry_id)) == "no entry":
            raise base.NotFound(base.no_entry_message(code, entry_id))

    def remove_entry(self, code: str, secret: str | None, entry_id: int) -> None:
        code = base.normalise_code(code)
        entry_id = base.entry_id_or_refuse(code, entry_id)
        if _status(self._teacher(code, secret, "remove", entry_id)) == "no entry":
            raise base.NotFound(base.no_entry_message(code, entry_id))

    def clear_board(self, code: str, secret: str | None) -> int:
        code = base.normalise_code(code)
        return int(self._teacher(code, secret, "clear")[1])

    # ------------------------------------------------------------ students

    def room_state(self, code: str) -> base.RoomState:
        code = base.normalise_code(code)
        view, version, frozen, task = self._fields(code, "view", "version", "frozen", "task")
        return base.RoomState(base.view_from_json(view), int(version or 0), frozen == b"1", _text(task or b""))

    def submit(self, code: str, student_token: str | None, name: str, meta: dict, blob: bytes) -> base.Entry:
        code, name, meta_text, sha, blob = base.checked_submission(code, name, meta, blob, self.limits)
        limits = self.limits
        member = self._member(code, student_token)
        now = self.clock()
        entry = {"member_id": member.id, "author": member.name, "name": name, "meta": json.loads(meta_text),
                 "size": len(blob), "sha256": sha, "created": now}
        reply = self._submit(args=self._args(code, base.hash_secret(student_token), limits.entries_per_room,
                                             limits.submissions_per_minute, base.rate_window(now),
                                             json.dumps(entry, ensure_ascii=False), blob))
        status = _status(reply)
        if status == "gone":
            raise base.NotFound(base.no_room_message(code))
        if status == "token":
            raise PermissionError(base.unknown_token_message(code))
        if status == "full":
            raise base.LimitError(base.board_full_message(code, limits.entries_per_room))
        if status == "rate":
            raise base.LimitError(base.rate_message(limits.submissions_per_minute, now))
        return base.Entry(int(reply[1]), code, member.id, member.name, name, entry["meta"], len(blob), sha, now)

    def entries(self, code: str, include_hidden: bool = False) -> list[base.Entry]:
        code = base.normalise_code(code)
        with self.r.pipeline(transaction=True) as pipe:  # MULTI: the entries and the hidden set of one moment
            pipe.hget(self._key(code), "expires")
            pipe.hgetall(self._key(code, ":entries"))
            pipe.smembers(self._key(code, ":hidden"))
            expires, rows, hidden = pipe.execute()
        if expires is None or float(expires) <= self.clock():
            raise base.NotFound(base.no_room_message(code))
        hidden = {int(h) for h in hidden}
        out = []
        for id_, data in sorted(rows.items(), key=lambda kv: int(kv[0])):
            id_ = int(id_)
            if id_ in hidden and not include_hidden:
                continue
            d = json.loads(data)
            out.append(base.Entry(id_, code, d["member_id"], d["author"], d["name"], d["meta"], d["size"], d["sha256"],
                             d["created"], id_ in hidden))
        return out

    def entry_blob(self, code: str, entry_id: int) -> bytes:
        code = base.normalise_code(code)
        self._fields(code)
        entry_id = base.entry_id_or_refuse(code, entry_id)
        blob = self.r.get(self._key(code, f":blob:{entry_id}"))
        if blob is None:
            raise base.NotFound(base.no_entry_message(code, entry_id))
        return blob

    def withdraw(self, code: str, student_token: str | None, entry_id: int) -> None:
        code = base.normalise_code(code)
        member = self._member(code, student_token)
        entry_id = base.entry_id_or_refuse(code, entry_id)
        status = _status(self._withdraw(args=self._args(code, entry_id, str(member.id))))
        if status == "gone":
            raise base.NotFound(base.no_room_message(code))
        if status == "no entry":
            raise base.NotFound(base.no_entry_message(code, entry_id))
        if status == "not yours":
            raise PermissionError(base.not_your_entry_message(code, entry_id))

    # ------------------------------------------------------------ the room's shared dataset

    def share_dataset(self, code: str, secret: str | None, name: str, title: str, meta: dict,
                      blob: bytes) -> base.RoomDataset:
        code = base.normalise_code(code)
        stored = self._check_teacher(code, secret)  # the secret before the bytes' own checks, as in SQLite
        code, name, title, meta_text, sha, blob = base.checked_dataset(code, name, title, meta, blob, self.limits)
        shared = base.RoomDataset(code, name, title, json.loads(meta_text), len(blob), sha, self.clock())
        reply = self._teacher_op(args=self._args(code, stored, "share", base.dataset_json(shared), blob))
        if _status(reply) == "gone":
            raise base.NotFound(base.no_room_message(code))
        return shared

    def unshare_dataset(self, code: str, secret: str | None) -> bool:
        code = base.normalise_code(code)
        return self._teacher(code, secret, "unshare")[1] == b"1"

    def _dataset(self, code: str, *fields: str) -> list:
        with self.r.pipeline(transaction=True) as pipe:  # MULTI: the room's state and its dataset of one moment
            pipe.hget(self._key(code), "expires")
            pipe.hmget(self._key(code, ":dataset"), *fields)
            expires, values = pipe.execute()
        if expires is None or float(expires) <= self.clock():
            raise base.NotFound(base.no_room_message(code))
        return values

    def room_dataset(self, code: str) -> base.RoomDataset | None:
        code = base.normalise_code(code)
        (info,) = self._dataset(code, "info")
        return base.dataset_from_json(code, info)

    def dataset_blob(self, code: str) -> tuple[base.RoomDataset, bytes]:
        code = base.normalise_code(code)
        info, blob = self._dataset(code, "info", "blob")
        if info is None or blob is None:
            raise base.NotFound(base.no_dataset_message(code))
        return base.dataset_from_json(code, info), blob
