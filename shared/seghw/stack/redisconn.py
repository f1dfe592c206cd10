"""One Redis connection for the stack commands, with a wait for a server that is still starting."""

from __future__ import annotations

import time
from urllib.parse import urlsplit, urlunsplit

from seghw.stack.settings import StackError, redis_url


def masked(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    user = parts.username or ""
    return urlunsplit((parts.scheme, f"{user}:***@{host}", parts.path, parts.query, parts.fragment))


def connect(url: str | None = None, wait: float = 0.0, socket_timeout: float = 10.0):
    """A ``redis.Redis`` that has answered PING; retries for up to ``wait`` seconds."""
    import redis

    url = url or redis_url()
    deadline = time.monotonic() + wait
    conn = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=socket_timeout)
    while True:
        try:
            conn.ping()
            return conn
        except redis.AuthenticationError:
            raise StackError(f"Redis at {masked(url)} refused the password (REDIS_PASSWORD)") from None
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            if time.monotonic() >= deadline:
                raise StackError(f"Redis at {masked(url)} does not answer: {exc}") from None
            time.sleep(0.25)
