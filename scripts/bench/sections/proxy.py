"""Proxy: VisualDL directly vs through the password proxy (``seghw serve proxy``).

The guide says a reverse proxy improves access performance. This measures it: one run of 50
epochs written by the trainer's own VisualDL logger, one VisualDL, one proxy in front of it, and
headless Chromium loading the Scalars page until the Loss/Train chart is drawn, in the same run,
alternating the order every round. For each visit: the time from navigation to the drawn chart,
and the bytes that came over the wire (CDP ``Network.loadingFinished.encodedDataLength``, headers
included; what the browser's cache answers counts 0). A cold visit is a new browser context (empty
cache), a warm one the next visit in the same context. Each on two networks: this machine's
loopback, and a remote link that Chromium emulates (10 Mbit/s down, 2 up, 50 ms round trip: VisualDL
on a cloud GPU host seen from an office), the case the guide's advice is meant for. Three ways in:

- ``direct``: VisualDL's own port;
- ``proxy``: through nginx, whose cache of VisualDL's UI files is already filled (any visit after the
  first since the proxy started);
- ``proxy, fresh``: through nginx restarted with its cache emptied, so every UI file comes from
  VisualDL (cold visits only: warm, the browser's cache answers as for ``proxy``).

The browser sends the same ``Authorization`` header on every way in (VisualDL ignores it), as a
browser does once the password has been typed, so the client side does the same work.

"""

from __future__ import annotations

import base64
import math
import os
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from ..core import ROOT, Bench, Option, Row, free_port

# Chromium and the trainer's logger are driven by the same code as in the tests (tests/*.py).
sys.path.insert(0, str(ROOT / "tests"))

NAME = "proxy"
OPTIONS = (Option("proxy_rounds", int, 7, 2, "alternating rounds of the proxy's page loads"),)
EPOCHS = 50
RUN = "logs_12011200"
USER, PASSWORD = "visualdl", "bench-password"
WAYS = ("direct", "proxy", "proxy, fresh")
# name -> CDP Network.emulateNetworkConditions (None: as it is)
NETWORKS = {
    "loopback": None,
    "remote": {"offline": False, "latency": 50, "downloadThroughput": 10e6 / 8, "uploadThroughput": 2e6 / 8},
}


def _seghw() -> str:
    beside = Path(sys.executable).with_name("seghw")
    return str(beside) if beside.exists() else (shutil.which("seghw") or "seghw")


def _wait(url: str, want: int, proc: subprocess.Popen, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == want:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not answer within {timeout:.0f} s")


def _stop(proc: subprocess.Popen | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def make_run(root: Path, epochs: int = EPOCHS) -> Path:
    """A run of ``epochs`` epochs: every scalar and histogram the trainer's VisualDL logger writes."""
    from trainer_helpers import epoch_result, start_logger

    state, logger = start_logger(root, RUN)
    for epoch in range(1, epochs + 1):
        state.epoch = epoch
        logger.on_epoch_end(state, epoch_result(train_loss=1.0 / epoch, val_loss=1.2 / epoch))
    logger.on_train_end(state)
    return root / RUN


class Servers:
    """VisualDL and the proxy in front of it, as the stack runs them (``seghw serve ...``)."""

    def __init__(self, tmp: Path, log_root: Path):
        self.tmp, self.seghw = tmp, _seghw()
        self.vdl_port, self.proxy_port = free_port(), free_port()
        self.direct = f"http://127.0.0.1:{self.vdl_port}"
        self.proxied = f"http://127.0.0.1:{self.proxy_port}"
        self.proxy_dir = tmp / "proxy"
        self.log = open(tmp / "servers.log", "ab")  # noqa: SIM115 (the servers' output, for a failure)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("VISUALDL_", "PROXY_"))}
        self.env.update(SEGHW_LOG_ROOT=str(log_root), VISUALDL_HOST="127.0.0.1", VISUALDL_PORT=str(self.vdl_port))
        self.visualdl = subprocess.Popen([self.seghw, "serve", "visualdl"], stdout=self.log,
                                         stderr=subprocess.STDOUT, env=self.env)
        self.proxy: subprocess.Popen | None = None
        _wait(self.direct + "/alive", 204, self.visualdl, "VisualDL")
        self.restart_proxy()

    def restart_proxy(self) -> None:
        """A proxy with an empty cache of VisualDL's UI files."""
        _stop(self.proxy)
        shutil.rmtree(self.proxy_dir / "cache", ignore_errors=True)
        env = {**self.env, "VISUALDL_PASSWORD": PASSWORD, "VISUALDL_UPSTREAM": f"127.0.0.1:{self.vdl_port}",
               "PROXY_PORT": str(self.proxy_port), "SEGHW_PROXY_DIR": str(self.proxy_dir)}
        self.proxy = subprocess.Popen([self.seghw, "serve", "proxy"], stdout=self.log, stderr=subprocess.STDOUT,
                                      env=env)
        _wait(self.proxied + "/proxy/health", 200, self.proxy, "the proxy")

    def close(self) -> None:
        _stop(self.proxy)
        _stop(self.visualdl)
        self.log.close()


def _visit(context, url: str, network: dict | None = None) -> dict[str, float]:
    """One page load in ``context``: seconds to the drawn Loss/Train chart, bytes and requests that
    went over the wire (a response from the browser's cache has no bytes)."""
    from browser_helpers import show_scalar_chart

    page = context.new_page()
    cdp = context.new_cdp_session(page)
    seen = {"bytes": 0.0, "requests": 0}

    def finished(event: dict) -> None:
        sent = event.get("encodedDataLength", 0)
        seen["bytes"] += sent
        seen["requests"] += sent > 0

    cdp.on("Network.loadingFinished", finished)
    cdp.send("Network.enable")
    if network is not None:
        cdp.send("Network.emulateNetworkConditions", network)
    t0 = time.perf_counter()
    points = show_scalar_chart(page, url, RUN, "Loss/Train")
    seen["seconds"] = time.perf_counter() - t0
    if len(points) != EPOCHS:
        raise RuntimeError(f"the chart at {url} has {len(points)} points, not {EPOCHS}")
    cdp.detach()
    page.close()
    return seen


def _visits(browser, headers: dict, url: str, network: dict | None, kinds: tuple[str, ...],
            attempts: int = 3) -> tuple[dict[str, dict], int]:
    """A cold visit in a new browser context, then the warm one in it: (visits by kind, failures).

    Chromium drops every request in flight when the host's network changes (a Docker bridge coming
    up on this shared machine: net::ERR_NETWORK_CHANGED), and the page then stays blank. Such an
    attempt is left out, counted and tried again in a new context."""
    from playwright.sync_api import Error as PlaywrightError

    failures = 0
    for _ in range(attempts):
        context = browser.new_context(viewport={"width": 1280, "height": 900}, extra_http_headers=headers)
        try:
            return {kind: _visit(context, url, network) for kind in kinds}, failures
        except PlaywrightError as exc:
            failures += 1
            print(f"bench proxy: a visit to {url} failed, tried again: {str(exc).splitlines()[0]}", file=sys.stderr)
        finally:
            context.close()
    return {}, failures


def measure(b: Bench) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    from browser_helpers import CHROMIUM, CHROMIUM_ARGS

    tmp_dir, rounds = b.tmp / "proxy", b.args.proxy_rounds
    log_root = tmp_dir / "models"
    log_root.mkdir(parents=True, exist_ok=True)
    make_run(log_root)
    servers = Servers(tmp_dir, log_root)
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    headers = {"Authorization": f"Basic {token}"}
    visits: dict[str, dict[str, dict[str, list[float]]]] = {n: {w: {} for w in WAYS} for n in NETWORKS}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            try:
                # One visit each first, not counted: VisualDL reads the run and fills its caches.
                for url in (servers.direct, servers.proxied):
                    _visits(browser, headers, url, None, ("cold",))
                for r in range(rounds):
                    for name, network in NETWORKS.items():
                        for way in WAYS if r % 2 == 0 else WAYS[::-1]:
                            if way == "proxy, fresh":
                                servers.restart_proxy()
                            url = servers.direct if way == "direct" else servers.proxied
                            kinds = ("cold",) if way == "proxy, fresh" else ("cold", "warm")
                            got, failed = _visits(browser, headers, url, network, kinds)
                            seen = visits[name][way]
                            seen["failed"] = seen.get("failed", 0) + failed
                            for kind in kinds:
                                for key in ("seconds", "bytes", "requests"):
                                    seen.setdefault(f"{kind}_{key}", []).append(got.get(kind, {}).get(key, math.nan))
            finally:
                browser.close()
    finally:
        servers.close()
    return {"rounds": rounds, "epochs": EPOCHS, "visits": visits, "cpus": os.cpu_count(),
            "load": os.getloadavg()[0]}


def _median(values: list[float]) -> float:
    """The median of what was measured (a failed visit is NaN)."""
    values = [v for v in values if not math.isnan(v)]
    return statistics.median(values) if values else math.nan


def summary(b: Bench, result: dict[str, Any]) -> list[Row]:
    ways = result["visits"]["remote"]
    return [Row("VisualDL through the proxy ÷ direct, time to the first chart (remote link; cold, warm)",
                f"{_ratio(_paired(ways, 'cold_seconds'))}; {_ratio(_paired(ways, 'warm_seconds'))}")]


def render(b: Bench, result: dict[str, Any]) -> list[str]:
    lines = [
        "",
        "## 9. VisualDL through the password proxy",
        "",
        f"One run of {result['epochs']} epochs (every scalar and histogram the trainer writes); the Scalars page "
        "in headless Chromium until the Loss/Train chart is drawn. Medians of "
        f"{result['rounds']} alternating rounds in the same run ({result['cpus']} CPUs, load "
        f"{result['load']:.1f} at the end). Cold: a new browser context; warm: the next visit in it. Bytes and "
        "requests: what went over the wire (headers included; what the browser's cache answers counts 0). "
        "Remote: a link Chromium emulates, 10 Mbit/s down, 2 up, 50 ms round trip. Ratios: the median of each "
        "round's proxy / direct (the two visited back to back), with the range over the rounds.",
        "",
        "| network | way in | cold: to chart | cold: bytes | cold: requests | warm: to chart | warm: bytes "
        "| warm: requests |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    verdicts = []
    for name, ways in result["visits"].items():
        def med(way: str, key: str, ways=ways) -> float:
            return _median(ways[way].get(key, []))

        for way in WAYS:
            cells = []
            for visit in ("cold", "warm"):
                if f"{visit}_seconds" not in ways[way]:
                    cells += ["", "", ""]
                    continue
                cells += [f"{med(way, f'{visit}_seconds'):.2f} s", f"{med(way, f'{visit}_bytes') / 1024:,.0f} KB",
                          f"{med(way, f'{visit}_requests'):.0f}"]
            lines.append(f"| {name} | {way} | " + " | ".join(cells) + " |")
        time_ratio = {v: _paired(ways, f"{v}_seconds") for v in ("cold", "warm")}
        fresh = _paired(ways, "cold_seconds", "proxy, fresh")
        byte_ratio = {v: med("proxy", f"{v}_bytes") / med("direct", f"{v}_bytes") for v in ("cold", "warm")}
        verdicts.append(
            f"- {name}: proxy / direct, time {_ratio(time_ratio['cold'])} cold and {_ratio(time_ratio['warm'])} warm "
            f"({_ratio(fresh)} for the first visit after the proxy started); bytes × {byte_ratio['cold']:.2f} cold "
            f"and × {byte_ratio['warm']:.2f} warm. " + _say(time_ratio))
    failed = sum(w.get("failed", 0) for ways in result["visits"].values() for w in ways.values())
    if failed:
        verdicts.append(f"- {failed} visits failed (the chart not drawn within a minute, e.g. Chromium dropping its "
                        "requests when a Docker bridge came up on this shared machine) and were made again.")
    return lines + ["", *verdicts, "",
                    "The bytes come from gzip (VisualDL compresses nothing) and from a week of browser cache for "
                    "VisualDL's UI files, which VisualDL serves with no cache header, so that without the proxy "
                    "every visit fetches all of them again.", "", f"Reproduce: `{b.command(NAME)}`."]


def _paired(ways: dict, key: str, way: str = "proxy") -> list[float]:
    """Each round's ``way`` / direct, sorted."""
    pairs = zip(ways[way].get(key, []), ways["direct"].get(key, []), strict=False)
    return sorted(a / b for a, b in pairs if not (math.isnan(a) or math.isnan(b)))


def _ratio(ratios: list[float]) -> str:
    if not ratios:
        return "n/a"
    return f"× {_median(ratios):.2f} ({ratios[0]:.2f}–{ratios[-1]:.2f})"


def _trend(ratios: list[float]) -> int:
    """-1 sooner through the proxy, 1 later, 0 no clear difference: the median 5 % off 1 and two
    rounds in three on its side (this machine is shared; single visits vary by a second)."""
    if not ratios or abs(_median(ratios) - 1) <= 0.05:
        return 0
    sooner = _median(ratios) < 1
    agree = sum((r < 1) == sooner for r in ratios)
    return (-1 if sooner else 1) if agree * 3 >= len(ratios) * 2 else 0


def _say(time_ratio: dict[str, list[float]]) -> str:
    trend = {visit: _trend(r) for visit, r in time_ratio.items()}
    words = {-1: "sooner through the proxy", 1: "later through the proxy", 0: "no clear difference"}
    seen = set(trend.values())
    head = ("Mixed" if {-1, 1} <= seen else "The proxy helps" if -1 in seen
            else "The proxy does not help" if 1 in seen else "No clear difference")
    return f"**{head}**: " + "; ".join(f"{visit} visits {words[t]}" for visit, t in trend.items()) + "."
