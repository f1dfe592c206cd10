"""``python -m seghw.stack.waitfor``: block until ``REDIS_URL`` answers (local stack start-up order)."""

from __future__ import annotations

import os
import sys

from seghw.connection import RedisUnavailable, connect


def main() -> int:
    wait = float(os.environ.get("SEGHW_REDIS_WAIT", "60"))
    try:
        connect(wait=wait)
    except RedisUnavailable as exc:
        print(f"seghw: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
