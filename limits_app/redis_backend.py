"""The Redis backend of the limiter: the algorithm of limiter.py as one Lua script, so that a request costs one
round trip (EVALSHA) and every process and replica sees one quota per deployment, atomically.

The state of a deployment is one hash (``<prefix>:<deployment>``) that expires after a quiet minute:
``m``/``ts``/``rs`` the minute ring's newest bucket and its token and request totals, ``t<i>``/``r<i>`` its
buckets; ``w``/``ws``/``wg`` the short window's newest bucket, total and bucket length, ``w<i>`` its buckets.
The clock is Redis's own (TIME), so replicas on different machines agree on it.

Requests that arrive in the same event-loop iteration are sent together, as one pipeline of EVALSHA calls
(each still atomic on its own): under load that is one round trip for several requests, and it divides the
client's CPU per request by two to four, which matters on a hot path whose whole budget is ~270 µs.
"""

from __future__ import annotations

import asyncio

import redis
import redis.asyncio
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry

from limits_app.limiter import (
    MINUTE_BUCKET_MS,
    MINUTE_SLOTS,
    NEVER_MS,
    REASON_REQUESTS,
    REASON_TOKENS,
    WINDOW_SLOTS,
    Decision,
    LimitRule,
)

# KEYS[1]: the deployment's hash. ARGV: mode ("admit" | "peek"), cost, TPM, RPM, window requests,
# window bucket ms, now in ms ("" = Redis TIME). Returns {admitted, tokens, requests, window, wait_ms, reason}
# with reason 0 (none), 1 (tokens) or 2 (requests).
ADMIT_SCRIPT = """
local key = KEYS[1]
local admit = ARGV[1] == 'admit'
local cost = tonumber(ARGV[2])
local tpm = tonumber(ARGV[3])
local rpm = tonumber(ARGV[4])
local wlimit = tonumber(ARGV[5])
local wg = tonumber(ARGV[6])
local now = tonumber(ARGV[7])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local MG, MS, WS, NEVER = @MINUTE_BUCKET_MS@, @MINUTE_SLOTS@, @WINDOW_SLOTS@, @NEVER_MS@

local head = redis.call('HMGET', key, 'm', 'ts', 'rs', 'w', 'ws', 'wg')
local exists = head[1] ~= false
if not admit and not exists then
  return {1, 0, 0, 0, 0, 0}
end

local function names(prefixes, first, last, slots)
  local out = {}
  for i = first, last do
    for _, p in ipairs(prefixes) do out[#out + 1] = p .. (i % slots) end
  end
  return out
end

-- Move a ring to bucket cur (never backwards); returns the bucket and the totals that remain.
local function advance(prefixes, last, cur, slots, totals)
  if last and cur < last then cur = last end
  if last == nil or cur - last >= slots then
    if last ~= nil then redis.call('HDEL', key, unpack(names(prefixes, 0, slots - 1, slots))) end
    for i = 1, #totals do totals[i] = 0 end
  elseif cur > last then
    local gone = names(prefixes, last + 1, cur, slots)
    local values = redis.call('HMGET', key, unpack(gone))
    for i = 1, #values do
      local k = ((i - 1) % #prefixes) + 1
      totals[k] = totals[k] - (tonumber(values[i]) or 0)
    end
    redis.call('HDEL', key, unpack(gone))
  end
  return cur
end

local minute = {tonumber(head[2]) or 0, tonumber(head[3]) or 0}
local mcur = advance({'t', 'r'}, tonumber(head[1]), math.floor(now / MG), MS, minute)
local wlast = tonumber(head[4])
if wlast and tonumber(head[6]) ~= wg then
  -- the window length changed: restart the short window
  redis.call('HDEL', key, unpack(names({'w'}, 0, WS - 1, WS)))
  wlast = nil
end
local window = {tonumber(head[5]) or 0}
local wcur = advance({'w'}, wlast, math.floor(now / wg), WS, window)
local ts, rs, ws = minute[1], minute[2], window[1]

local over_t = ts + cost > tpm
local over_r = rs + 1 > rpm
local over_w = ws + 1 > wlimit
local admitted = admit and not (over_t or over_r or over_w)
if admitted then
  redis.call('HINCRBY', key, 't' .. (mcur % MS), cost)
  redis.call('HINCRBY', key, 'r' .. (mcur % MS), 1)
  redis.call('HINCRBY', key, 'w' .. (wcur % WS), 1)
  ts, rs, ws = ts + cost, rs + 1, ws + 1
end
redis.call('HSET', key, 'm', mcur, 'ts', ts, 'rs', rs, 'w', wcur, 'ws', ws, 'wg', wg)
redis.call('PEXPIRE', key, math.max(MS * MG, WS * wg) + 1000)
if not admit or admitted then
  return {1, ts, rs, ws, 0, 0}
end

-- Refused: how long until enough of the oldest buckets leave each crossed window.
local function wait_for(prefix, cur, slots, g, need, clock)
  local values = redis.call('HMGET', key, unpack(names({prefix}, cur - slots + 1, cur, slots)))
  local freed = 0
  for i = 1, #values do
    freed = freed + (tonumber(values[i]) or 0)
    if freed >= need then return math.max(1, (cur - slots + i + slots) * g - clock) end
  end
  return slots * g
end
local mclock = math.max(now, mcur * MG)
local wclock = math.max(now, wcur * wg)
local token_wait, request_wait = 0, 0
if over_t then
  if cost > tpm then token_wait = NEVER else token_wait = wait_for('t', mcur, MS, MG, ts + cost - tpm, mclock) end
end
if over_r then request_wait = wait_for('r', mcur, MS, MG, rs + 1 - rpm, mclock) end
if over_w then request_wait = math.max(request_wait, wait_for('w', wcur, WS, wg, ws + 1 - wlimit, wclock)) end
if request_wait >= token_wait then
  return {0, ts, rs, ws, request_wait, 2}
end
return {0, ts, rs, ws, token_wait, 1}
"""
for _name, _value in {"MINUTE_BUCKET_MS": MINUTE_BUCKET_MS, "MINUTE_SLOTS": MINUTE_SLOTS,
                      "WINDOW_SLOTS": WINDOW_SLOTS, "NEVER_MS": NEVER_MS}.items():
    ADMIT_SCRIPT = ADMIT_SCRIPT.replace(f"@{_name}@", str(_value))

_REASONS = {0: None, 1: REASON_TOKENS, 2: REASON_REQUESTS}


def _decision(rule: LimitRule, reply: list[int]) -> Decision:
    admitted, tokens, requests, window, wait_ms, reason = (int(value) for value in reply)
    return Decision(bool(admitted), rule, tokens, requests, window, wait_ms, _REASONS[reason])


def _args(mode: str, rule: LimitRule, cost: int, now_ms: int | None) -> list[object]:
    return [mode, cost, rule.tokens_per_minute, rule.requests_per_minute, rule.window_requests,
            rule.window_bucket_ms, "" if now_ms is None else now_ms]


class RedisBackend:
    """The shared limiter. Errors (Redis unreachable, timeouts) propagate: FailoverLimiter handles them."""

    name = "redis"

    def __init__(self, url: str, *, key_prefix: str = "simulator:limits", timeout_s: float = 1.0) -> None:
        self.url = url
        self.key_prefix = key_prefix
        self.timeout_s = timeout_s
        self._client: redis.asyncio.Redis | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._script = None
        self._pending: list[tuple[str, list[object], asyncio.Future]] = []
        self._sync_client: redis.Redis | None = None
        self._sync_script = None

    def key(self, deployment: str) -> str:
        return f"{self.key_prefix}:{deployment}"

    def _options(self) -> dict[str, object]:
        # One quick reconnect for a connection the server dropped; no backoff: the fallback is the backoff.
        return {"socket_timeout": self.timeout_s, "socket_connect_timeout": self.timeout_s,
                "retry": None, "retry_on_error": [], "health_check_interval": 0}

    def _async_script(self):  # redis-py's AsyncScript
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            # A client belongs to the event loop it first ran on (one per worker; tests make several).
            options = self._options()
            options["retry"] = AsyncRetry(NoBackoff(), 1)
            self._client = redis.asyncio.Redis.from_url(self.url, **options)
            self._script = self._client.register_script(ADMIT_SCRIPT)
            self._loop = loop
        return self._script

    async def _run(self, key: str, args: list[object]) -> list[int]:
        """Queue one script call for this loop iteration's batch and wait for its reply."""
        self._async_script()
        future = self._loop.create_future()
        self._pending.append((self.key(key), args, future))
        if len(self._pending) == 1:
            self._loop.call_soon(self._send_batch)
        return await future

    def _send_batch(self) -> None:
        batch, self._pending = self._pending, []
        if batch:
            self._loop.create_task(self._send(batch))

    async def _send(self, batch: list[tuple[str, list[object], asyncio.Future]]) -> None:
        try:
            if len(batch) == 1:  # a pipeline of one costs more than a plain call
                key, args, _ = batch[0]
                replies = [await self._script(keys=[key], args=args)]
            else:
                replies = await self._pipeline(batch)
        except BaseException as error:  # unreachable, timed out, cancelled: every waiter gets to know
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(error)
            if not isinstance(error, Exception):
                raise
            return
        for (_, _, future), reply in zip(batch, replies, strict=True):
            if not future.done():
                if isinstance(reply, Exception):
                    future.set_exception(reply)
                else:
                    future.set_result(reply)

    async def _pipeline(self, batch: list[tuple[str, list[object], asyncio.Future]]) -> list[object]:
        sha = self._script.sha
        for attempt in range(2):
            pipe = self._client.pipeline(transaction=False)
            for key, args, _ in batch:
                pipe.evalsha(sha, 1, key, *args)
            replies = await pipe.execute(raise_on_error=False)
            if attempt == 0 and any(isinstance(r, redis.exceptions.NoScriptError) for r in replies):
                await self._client.script_load(ADMIT_SCRIPT)  # Redis restarted and forgot it
                continue
            return replies
        return replies

    async def admit(self, key: str, rule: LimitRule, cost: int, now_ms: int | None = None) -> Decision:
        return _decision(rule, await self._run(key, _args("admit", rule, cost, now_ms)))

    async def peek(self, key: str, rule: LimitRule, now_ms: int | None = None) -> Decision:
        return _decision(rule, await self._run(key, _args("peek", rule, 0, now_ms)))

    async def reset(self, key: str) -> None:
        self._async_script()
        await self._client.delete(self.key(key))

    async def ping(self) -> None:
        self._async_script()
        await self._client.ping()

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # Synchronous twins for admin actions and the management API (Django's sync views).

    def _sync(self):  # redis-py's Script
        if self._sync_client is None:
            options = self._options()
            options["retry"] = Retry(NoBackoff(), 1)
            self._sync_client = redis.Redis.from_url(self.url, **options)
            self._sync_script = self._sync_client.register_script(ADMIT_SCRIPT)
        return self._sync_script

    def peek_sync(self, key: str, rule: LimitRule, now_ms: int | None = None) -> Decision:
        return _decision(rule, self._sync()(keys=[self.key(key)], args=_args("peek", rule, 0, now_ms)))

    def admit_sync(self, key: str, rule: LimitRule, cost: int, now_ms: int | None = None) -> Decision:
        return _decision(rule, self._sync()(keys=[self.key(key)], args=_args("admit", rule, cost, now_ms)))

    def reset_sync(self, key: str) -> None:
        self._sync()
        self._sync_client.delete(self.key(key))
