"""Where Redis is, and how to reach it: the one answer every command and role uses.

Where, first match wins:
  1. ``REDIS_URL``, when set (the containers and the local stack's roles always set it);
  2. the running local stack's Redis (its URL is in ``<stack dir>/state.json``, written by ``make up``);
  3. the compose stack's Redis, when ``.env`` publishes it on the host (``compose.redis-port.yml`` in
     ``COMPOSE_FILE``): ``127.0.0.1:REDIS_PORT`` with ``REDIS_PASSWORD``;
  4. ``redis://localhost:6379/0``.

Every message names the place tried and where the address came from, never the password.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from seghw.errors import UserError

if TYPE_CHECKING:
    import redis

DEFAULT_REDIS_URL = "redis://localhost:6379/0"


class RedisUnavailable(UserError):
    """Redis does not answer, refuses the password, or the URL cannot be used."""


@dataclass(frozen=True)
class Location:
    url: str
    source: str  # where the URL came from, in words for messages

    def describe(self) -> str:
        return f"{describe_url(self.url)} ({self.source})"


def locate() -> Location:
    """Where Redis is, by the order in the module docstring."""
    import os

    url = os.environ.get("REDIS_URL", "").strip()
    if url:
        return Location(url, "REDIS_URL")
    from seghw.stack import settings

    state_file, stack_url = settings.local_stack_redis()
    if stack_url:
        return Location(stack_url, f"the local stack, {state_file}")
    published = settings.compose_published_redis()
    if published:
        return Location(*published)
    return Location(DEFAULT_REDIS_URL, "the default; set REDIS_URL, or start the stack with make up")


def redis_url() -> str:
    return locate().url


def url_with_password(host: str, port: int, password: str, db: int = 0) -> str:
    auth = f":{quote(password, safe='')}@" if password else ""
    return f"redis://{auth}{host}:{port}/{db}"


def describe_url(url: str) -> str:
    """The URL without its credentials, for messages (a password is never printed)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "<unparsable REDIS_URL>"
    if parts.scheme == "unix":
        return f"unix://{parts.path}"
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        at = url.rfind("@")
        return f"{url[: url.find('://') + 3] if '://' in url else ''}***{url[at:]}" if at >= 0 else url
    db = parts.path.lstrip("/") or "0"
    return f"{parts.scheme}://{parts.hostname}:{port or 6379}/{db}"


def _source_of(url: str) -> str:
    here = locate()
    return here.source if here.url == url else "given"


def unreachable_message(exc: BaseException, url: str | None = None) -> str:
    """One line: what was tried, where its address came from, and why it failed."""
    import redis as redis_lib

    url = url or redis_url()
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    # redis-py quotes host and port in its messages but never the password; strip the URL anyway.
    reason = reason.replace(url, describe_url(url))
    where = f"{describe_url(url)} ({_source_of(url)})"
    if isinstance(exc, redis_lib.AuthenticationError):
        return f"Redis at {where} refused the password: {reason}"
    if isinstance(exc, redis_lib.ResponseError):  # e.g. a password sent to a server that wants none
        return f"Redis at {where} refused: {reason}"
    return f"Redis unreachable at {where}: {reason}"


def connect(url: str | None = None, *, decode: bool = True, fast: bool = False,
            wait: float | None = None, socket_timeout: float | None = None) -> redis.Redis:
    """A client for ``url`` (default: ``locate()``).

    ``decode=False`` is what rq needs; ``fast``: short timeouts and no retries (interactive reads);
    ``socket_timeout`` replaces the default read timeout (None: none for fast=False). With
    ``wait``, the server must answer PING within that many seconds (0: once), else
    ``RedisUnavailable`` with one line; without it nothing is sent yet.
    """
    import redis as redis_lib
    from redis.backoff import ExponentialWithJitterBackoff, NoBackoff
    from redis.retry import Retry

    url = url or redis_url()
    options: dict[str, Any] = {"decode_responses": decode, "health_check_interval": 30}
    if fast:
        options.update(socket_connect_timeout=1.0, socket_timeout=2.0, retry=Retry(NoBackoff(), 0))
    else:
        options.update(
            socket_connect_timeout=5.0,
            socket_keepalive=True,
            retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=1.0), 3),
        )
    if socket_timeout is not None:
        options["socket_timeout"] = socket_timeout
    try:
        conn = redis_lib.Redis.from_url(url, **options)
    except ValueError as exc:
        raise RedisUnavailable(f"REDIS_URL {describe_url(url)} is not a usable Redis URL: {exc}") from None
    if wait is not None:
        ping(conn, url, wait)
    return conn


def ping(conn: redis.Redis, url: str, wait: float) -> None:
    """PING until the server answers, for up to ``wait`` seconds; a refused password fails at once."""
    import redis as redis_lib

    deadline = time.monotonic() + wait
    while True:
        try:
            conn.ping()
            return
        except (redis_lib.AuthenticationError, redis_lib.ResponseError) as exc:
            raise RedisUnavailable(unreachable_message(exc, url)) from None
        except (redis_lib.ConnectionError, redis_lib.TimeoutError, OSError) as exc:
            if time.monotonic() >= deadline:
                raise RedisUnavailable(unreachable_message(exc, url)) from None
            time.sleep(0.25)
