"""What the roles' rq workers share: a shutdown that survives Redis having gone first.

rq's worker unregisters itself from Redis and leaves its pub/sub channel as it exits. When Redis
stopped first (``make down`` stops the roles together, a Redis restart under a stopping container),
those last commands raise and the worker dies with a traceback wall. Its registration has a TTL and
expires by itself, so one line says so instead.
"""

from __future__ import annotations


class SurvivesRedisGone:
    """Mixin for ``rq.Worker`` subclasses (put it first in the bases)."""

    def teardown(self) -> None:
        import redis

        try:
            super().teardown()
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            self.log.warning("Worker %s: Redis went away before the worker could unregister (%s); "
                             "its registration expires by itself", self.name, reason)
