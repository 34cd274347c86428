"""Level 2 on Redis: raw bytes and plain hash fields, one round trip per call.

Key layout and semantics are those of :mod:`middleware.store.base`. Multi-step operations are Lua
scripts of our own (atomic, one round trip); nothing read back is unpickled or evaluated. Durations
are sent in milliseconds (``PX``/``PEXPIRE``) so fractional TTLs keep their meaning.

Every call is bounded by the client's socket timeouts and is never retried here: a dead or frozen
Redis costs at most about ``timeout`` per call, and the circuit breaker in front decides what next.
"""

from __future__ import annotations

from typing import Mapping

import redis
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError
from redis.retry import Retry

from .base import ResourceMeta

BLOB = "cb:b:"
INDEX = "cb:i:"
HASHES = "cb:h:"
SESSION = "cb:s:"
CODE = "cb:c:"
COUNTER = "cb:r:"

# KEYS: index, hash set. ARGV: url, ttl ms, blob key prefix.
# Returns {meta, body}, or nil when the index entry or the blob it names is gone. The blob key is
# derived from the index entry, so it cannot be passed in KEYS (fine on a standalone Redis).
_GET_RESOURCE = """
local meta = redis.call('HGET', KEYS[1], ARGV[1])
if not meta then return nil end
local blob = ARGV[3] .. string.match(meta, '^%S+')
local body = redis.call('GET', blob)
if not body then return nil end
redis.call('PEXPIRE', blob, ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return {meta, body}
"""

# KEYS: index, hash set, blob. ARGV: url, sha256, ttl ms.
# Links only what this session uploaded itself (its hash set) and only while the blob exists.
_LINK_RESOURCE = """
local meta = redis.call('HGET', KEYS[2], ARGV[2])
if not meta or redis.call('EXISTS', KEYS[3]) == 0 then return nil end
redis.call('HSET', KEYS[1], ARGV[1], meta)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('PEXPIRE', KEYS[3], ARGV[3])
return meta
"""

# KEYS: session record, code. ARGV: sid, ttl ms, then field/value pairs.
# The code is claimed first with NX, so a taken code writes nothing.
_CREATE_SESSION = """
if not redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return 0 end
redis.call('DEL', KEYS[1])
for i = 3, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""

# KEYS: session record. ARGV: ttl ms, code key prefix, sid.
# Slides the record and its code, unless the record is an ended tombstone: reading a tombstone
# must not keep it alive longer than tombstone_ttl.
_GET_SESSION = """
local flat = redis.call('HGETALL', KEYS[1])
if #flat == 0 then return nil end
local fields = {}
for i = 1, #flat, 2 do fields[flat[i]] = flat[i + 1] end
if fields['ended'] ~= '1' then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  if fields['code'] then
    local code = ARGV[2] .. fields['code']
    if redis.call('GET', code) == ARGV[3] then redis.call('PEXPIRE', code, ARGV[1]) end
  end
end
return flat
"""

# KEYS: session record. ARGV: field/value pairs. HSET on a gone record would create a record
# without TTL, hence the EXISTS check.
_UPDATE_SESSION = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
for i = 1, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
return 1
"""

# KEYS: session record, index, hash set. ARGV: tombstone ttl ms, code key prefix, sid.
# The tombstone is written even when the record is gone here, so that processes holding the
# session in level 1 learn it has ended.
_END_SESSION = """
local code = redis.call('HGET', KEYS[1], 'code')
if code then
  local key = ARGV[2] .. code
  if redis.call('GET', key) == ARGV[3] then redis.call('DEL', key) end
end
redis.call('HSET', KEYS[1], 'ended', '1')
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2], KEYS[3])
return 0
"""

# KEYS: counter. ARGV: window ms. The lifetime is set once, when the window opens.
_COUNT_ATTEMPT = """
local n = redis.call('INCR', KEYS[1])
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
"""

# KEYS: session record. ARGV: amount, limit. A missing record counts as 0 used; nothing is written
# to it then, because HINCRBY would create a record without TTL (a session that never expires).
_RESERVE_BYTES = """
local amount = tonumber(ARGV[1])
local used = tonumber(redis.call('HGET', KEYS[1], 'bytes') or '0')
if used + amount > tonumber(ARGV[2]) then return 0 end
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HINCRBY', KEYS[1], 'bytes', amount) end
return 1
"""


def _ms(seconds: float) -> int:
    """A duration in whole milliseconds, at least 1 (Redis refuses a zero expiry)."""
    return max(1, int(seconds * 1000))


def _flatten(fields: Mapping[str, str]) -> list[str]:
    """``{"a": "1", "b": "2"}`` -> ``["a", "1", "b", "2"]``, the argument shape of HSET."""
    return [item for pair in fields.items() for item in pair]


def _text(raw: bytes | str) -> str:
    return raw.decode("utf-8") if isinstance(raw, bytes) else raw


class RedisLevel2:
    """The level-2 contract on a Redis server (standalone, TLS or unix socket)."""

    name = "redis"

    def __init__(self, url: str, timeout: float = 0.2) -> None:
        client = redis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            health_check_interval=0,
            # No retries: each would add another full timeout to a call during an outage.
            retry=Retry(NoBackoff(), 0),
        )
        self._setup(client)

    @classmethod
    def from_client(cls, client: redis.Redis) -> "RedisLevel2":
        """Wrap an existing client (tests use ``fakeredis.FakeRedis``). It must return bytes."""
        store = cls.__new__(cls)
        store._setup(client)
        return store

    def _setup(self, client: redis.Redis) -> None:
        self.client = client
        self._get_resource = client.register_script(_GET_RESOURCE)
        self._link_resource = client.register_script(_LINK_RESOURCE)
        self._create_session = client.register_script(_CREATE_SESSION)
        self._get_session = client.register_script(_GET_SESSION)
        self._update_session = client.register_script(_UPDATE_SESSION)
        self._end_session = client.register_script(_END_SESSION)
        self._count_attempt = client.register_script(_COUNT_ATTEMPT)
        self._reserve_bytes = client.register_script(_RESERVE_BYTES)

    def ping(self) -> None:
        # A write, not PING: a Redis out of memory (noeviction) still answers PING while it
        # refuses every write, and level 2 must not be called up then.
        self.client.set("cb:ping", b"1", px=10_000)

    # --- sessions -------------------------------------------------------------------------

    def create_session(self, sid: str, fields: Mapping[str, str], code: str, ttl: float) -> bool:
        """See :class:`~middleware.store.base.Level2`. The record's field ``code`` is set to
        ``code``: it is how reads and ``end_session`` find the join code's key."""
        pairs = _flatten({**fields, "code": code})
        keys = [SESSION + sid, CODE + code]
        return bool(self._create_session(keys=keys, args=[sid, _ms(ttl), *pairs]))

    def get_session(self, sid: str, ttl: float) -> dict[str, str] | None:
        flat = self._get_session(keys=[SESSION + sid], args=[_ms(ttl), CODE, sid])
        if not flat:
            return None
        return {_text(flat[i]): _text(flat[i + 1]) for i in range(0, len(flat), 2)}

    def get_session_and_resource(
        self, sid: str, url: str, session_ttl: float, cache_ttl: float
    ) -> tuple[dict[str, str] | None, tuple[ResourceMeta, bytes] | None]:
        # The two scripts do not depend on each other: one pipeline, one round trip. EVALSHA
        # directly: a pipeline given Script objects first asks SCRIPT EXISTS, a round trip more.
        for attempt in (1, 2):
            pipe = self.client.pipeline(transaction=False)
            pipe.evalsha(self._get_session.sha, 1, SESSION + sid, _ms(session_ttl), CODE, sid)
            pipe.evalsha(self._get_resource.sha, 2, INDEX + sid, HASHES + sid, url, _ms(cache_ttl), BLOB)
            try:
                flat, found = pipe.execute()
                break
            except NoScriptError:  # a restarted Redis has forgotten our scripts
                if attempt == 2:
                    raise
                self.client.script_load(_GET_SESSION)
                self.client.script_load(_GET_RESOURCE)
        fields = {_text(flat[i]): _text(flat[i + 1]) for i in range(0, len(flat), 2)} if flat else None
        return fields, (ResourceMeta.decode(found[0]), bytes(found[1])) if found else None

    def update_session(self, sid: str, fields: Mapping[str, str]) -> None:
        if fields:
            self._update_session(keys=[SESSION + sid], args=_flatten(fields))

    def end_session(self, sid: str, tombstone_ttl: float) -> None:
        self._end_session(
            keys=[SESSION + sid, INDEX + sid, HASHES + sid], args=[_ms(tombstone_ttl), CODE, sid]
        )

    def session_for_code(self, code: str) -> str | None:
        sid = self.client.get(CODE + code)
        return None if sid is None else _text(sid)

    def count_attempt(self, key: str, window: float) -> int:
        return int(self._count_attempt(keys=[COUNTER + key], args=[_ms(window)]))

    def reserve_bytes(self, sid: str, amount: int, limit: int) -> bool:
        return bool(self._reserve_bytes(keys=[SESSION + sid], args=[amount, limit]))

    # --- resources ------------------------------------------------------------------------

    def put_resource(self, sid: str, url: str, meta: ResourceMeta, body: bytes, ttl: float) -> None:
        ms, encoded = _ms(ttl), meta.encode()
        pipe = self.client.pipeline(transaction=True)  # MULTI/EXEC: one round trip, all or nothing
        pipe.set(BLOB + meta.sha256, body, px=ms)
        pipe.hset(INDEX + sid, url, encoded)
        pipe.hset(HASHES + sid, meta.sha256, encoded)
        pipe.pexpire(INDEX + sid, ms)
        pipe.pexpire(HASHES + sid, ms)
        pipe.execute()

    def get_resource(self, sid: str, url: str, ttl: float) -> tuple[ResourceMeta, bytes] | None:
        found = self._get_resource(keys=[INDEX + sid, HASHES + sid], args=[url, _ms(ttl), BLOB])
        if not found:
            return None
        meta, body = found
        return ResourceMeta.decode(meta), bytes(body)

    def touch_resource(self, sid: str, sha256: str, ttl: float) -> None:
        ms = _ms(ttl)
        pipe = self.client.pipeline(transaction=False)
        pipe.pexpire(BLOB + sha256, ms)
        pipe.pexpire(INDEX + sid, ms)
        pipe.pexpire(HASHES + sid, ms)
        pipe.execute()

    def link_resource(self, sid: str, url: str, sha256: str, ttl: float) -> ResourceMeta | None:
        meta = self._link_resource(
            keys=[INDEX + sid, HASHES + sid, BLOB + sha256], args=[url, sha256, _ms(ttl)]
        )
        return None if meta is None else ResourceMeta.decode(meta)

    def list_resources(self, sid: str) -> dict[str, ResourceMeta]:
        index = self.client.hgetall(INDEX + sid)
        return {_text(url): ResourceMeta.decode(meta) for url, meta in index.items()}
