"""Status and monitor: a real redis-server and `seghw serve monitor` over this benchmark's runs;
how long `seghw status` takes, how fresh it is, and what each run costs in Redis."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from typing import Any

from ..core import Bench, Goal, Option, Row, free_port, listed, median, stop_process, verdict, wait_for
from ..training import tiny_run

NAME = "status"
OPTIONS = (
    Option("status_runs", int, 15, 5, "`seghw status --json` invocations"),
    Option("fresh_trials", int, 5, 2, "freshness trials"),
)
MONITOR_INTERVAL = 1.0
STATUS_MEDIAN = Goal("< 0.2 s", lambda v: v < 0.2)
FRESHNESS = Goal(f"≤ interval + 1 s = {MONITOR_INTERVAL + 1:.0f} s", lambda v: v <= MONITOR_INTERVAL + 1.0)


def measure(b: Bench) -> dict[str, Any]:
    import redis

    from seghw import paths
    from seghw.atomic import write_json_atomic
    from seghw.cli import status as status_cmd
    from seghw.monitor import store
    from seghw.stack.local import redis_server_binary

    tiny_run(b)
    runs = [r for r in paths.list_runs(b.runs_root) if (r / paths.STATS_FILE).exists()]
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    workdir = b.tmp / "redis"
    workdir.mkdir(exist_ok=True)
    binary = redis_server_binary()
    server = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                               "--appendonly", "no", "--dir", str(workdir), "--loglevel", "warning"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    monitor = None
    os.environ["REDIS_URL"] = b.env["REDIS_URL"] = url
    try:
        conn = redis.Redis.from_url(url, decode_responses=True)

        def pong() -> bool:
            try:
                return bool(conn.ping())
            except redis.ConnectionError:
                return False

        wait_for(pong, 10, "redis-server")
        empty_memory = int(conn.info("memory")["used_memory"])
        argv = [b.seghw, "serve", "monitor", "--interval", str(MONITOR_INTERVAL), "--log-root", str(b.runs_root)]
        monitor = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=b.env)
        wait_for(lambda: len(status_cmd.read_view(None).runs) == len(runs), 60, f"{len(runs)} runs in Redis")
        b.say(f"status: {len(runs)} runs collected into Redis by `seghw serve monitor --interval {MONITOR_INTERVAL:g}`")

        walls = []
        for _ in range(b.args.status_runs):
            t0 = time.perf_counter()
            proc = subprocess.run([b.seghw, "status", "--json"], capture_output=True, text=True, env=b.env)
            walls.append(time.perf_counter() - t0)
            doc = json.loads(proc.stdout)
            if len(doc["runs"]) != len(runs):
                raise RuntimeError(f"seghw status --json showed {len(doc['runs'])} runs, expected {len(runs)}")
        b.say(f"  `seghw status --json`: median {median(walls):.3f} s, max {max(walls):.3f} s over {len(walls)}")
        # What a Python process costs before it reads Redis: the interpreter, then redis-py's import.
        baseline = {}
        for what, code in (("python", "pass"), ("import redis", "import redis")):
            ts = []
            for _ in range(5):
                t0 = time.perf_counter()
                subprocess.run([sys.executable, "-c", code], env=b.env, check=True)
                ts.append(time.perf_counter() - t0)
            baseline[what] = median(ts)
        b.say(f"  baseline: python start {baseline['python']:.3f} s, python + import redis "
              f"{baseline['import redis']:.3f} s")

        # Freshness: rewrite one stats file with a new global_step, then watch what `seghw status --json`
        # reports (the same read, in this process, every 20 ms) until the new value shows.
        target = runs[-1]
        doc = json.loads((target / paths.STATS_FILE).read_text())
        delays = []
        rng = random.Random(1)
        for _ in range(b.args.fresh_trials):
            time.sleep(rng.uniform(0.0, MONITOR_INTERVAL))  # land anywhere in the collect cycle
            doc["global_step"] += 1
            write_json_atomic(target / paths.STATS_FILE, doc)
            t0 = time.perf_counter()

            def shown(step=doc["global_step"]) -> bool:
                view = status_cmd.read_view(target.name).to_json()
                return bool(view["runs"]) and view["runs"][0]["global_step"] == step

            wait_for(shown, 30, "the new global_step in seghw status", every=0.02)
            delays.append(time.perf_counter() - t0)
        check = json.loads(subprocess.run([b.seghw, "status", "--json", "--run", target.name], capture_output=True,
                                          text=True, env=b.env).stdout)
        assert check["runs"][0]["global_step"] == doc["global_step"], check
        b.say(f"  freshness: median {median(delays):.2f} s, max {max(delays):.2f} s over {len(delays)} "
              f"(interval {MONITOR_INTERVAL:g} s)")

        per_run = {}
        for run_id in store.known_runs(conn):
            # samples=0: every field counted (the default samples 5 fields of a large hash and extrapolates)
            per_run[run_id] = sum(conn.memory_usage(k, samples=0) or 0 for k in (store.run_key(run_id),
                                                                        store.heartbeat_key(run_id)))
        used = int(conn.info("memory")["used_memory"])
        fp = b.results.get("footprint", {})
        b.say(f"  Redis: {median(list(per_run.values())):,.0f} B per run (MEMORY USAGE), used_memory "
              f"{used - empty_memory:+,} B for {len(per_run)} runs and the monitor's keys")
        return {
            "redis_server": binary, "runs": len(runs), "walls": walls, "median": median(walls), "max": max(walls),
            "baseline": baseline, "fresh": delays, "fresh_median": median(delays), "fresh_max": max(delays),
            "memory_per_run": per_run, "used_memory": used, "empty_memory": empty_memory,
            "footprint_run_memory": per_run.get(fp.get("run_id")) if fp else None,
        }
    finally:
        if monitor is not None:
            stop_process(monitor)
        stop_process(server)


def summary(b: Bench, s: dict[str, Any]) -> list[Row]:
    return [Row("`seghw status --json` median wall time", f"{s['median']:.3f} s", STATUS_MEDIAN, s["median"]),
            Row("freshness, stats write → `seghw status` (max)", f"{s['fresh_max']:.2f} s", FRESHNESS, s["fresh_max"])]


def render(b: Bench, s: dict[str, Any]) -> list[str]:
    mem = list(s["memory_per_run"].values())
    return ["", "## 5. Status and monitor", "",
            f"A real redis-server (`{s['redis_server']}`, free port), `seghw serve monitor --interval "
            f"{MONITOR_INTERVAL:g} --log-root DIR` as a subprocess, {s['runs']} real runs of this benchmark in "
            "DIR.", "",
            f"- `seghw status --json` (a new process each time): median **{s['median']:.3f} s**, max "
            f"{s['max']:.3f} s over {len(s['walls'])} runs; goal {STATUS_MEDIAN.text}: "
            f"{verdict(STATUS_MEDIAN, s['median'])}. For scale, in the same minute: a bare "
            f"`python -c pass` takes {s['baseline']['python']:.3f} s and `python -c 'import redis'` "
            f"{s['baseline']['import redis']:.3f} s (redis-py loads its asyncio client at import).",
            f"- Freshness: a stats file rewritten with a new `global_step` (atomically, at a random moment of "
            f"the collect cycle) until `seghw status --json` shows it (its read, polled every 20 ms in-process, "
            f"then confirmed by the CLI): median **{s['fresh_median']:.2f} s**, max **{s['fresh_max']:.2f} s** "
            f"over {len(s['fresh'])} trials ({listed(s['fresh'])}); interval "
            f"{MONITOR_INTERVAL:g} s, goal {FRESHNESS.text}: {verdict(FRESHNESS, s['fresh_max'])}.",
            f"- Redis memory per run (`MEMORY USAGE` of `seghw:run:<id>` and its heartbeat key; the hash keeps "
            f"a copy of the last stats document, so it grows with the epoch history): median "
            f"{median(mem):,.0f} B, max {max(mem):,} B; `used_memory` grew by "
            f"{s['used_memory'] - s['empty_memory']:,} B for "
            f"{len(mem)} runs plus the monitor's own keys (rq queue, scheduler, events stream).",
            "", f"Reproduce: `{b.command(NAME)}`."]


def sinks(b: Bench, s: dict[str, Any]) -> list[str]:
    base = s["baseline"]
    return [f"`seghw status`: of its {s['median']:.3f} s, the interpreter takes {base['python']:.3f} s and "
            f"`import redis` {base['import redis'] - base['python']:.3f} s more; the Redis reads and the JSON "
            "output are the remainder."]
