"""The benchmark document rendered from hand-made results, without measuring anything: its headings,
its summary rows (gathered from the sections), its tables and its commands."""

from __future__ import annotations

import re
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from scripts.bench import cli, report  # noqa: E402
from scripts.bench.core import Bench  # noqa: E402
from scripts.bench.sections import BY_NAME, RUN_ORDER, SECTIONS  # noqa: E402

STARTED = datetime(2026, 1, 2, 3, 4, tzinfo=timezone.utc)
LOAD = ((1.0, 1.0, 1.0), (2.0, 2.0, 2.0))

HEADINGS = [
    "# Benchmarks",
    "## Summary",
    "## 1–2. Training rate, FLOP utilization and observer cost",
    "### CPU threads and graph mode",
    "## 3. Data",
    "## 4. Full page",
    "## 5. Status and monitor",
    "## 6. Footprint",
    "## Where the time goes",
    "## 7. Model quality",
    "## 8. Compose stack start-up",
    "## 9. VisualDL through the password proxy",
    "## Biggest time sinks",
]
# (figure, goal, verdict) of every summary row, for the results below.
SUMMARY = [
    ("training cpu-demo 64 px, FLOP/s ÷ matmul ceiling (observers off)", "≥ 35 %", "**not met**"),
    ("training cpu-demo 128 px, FLOP/s ÷ matmul ceiling (observers off)", "≥ 35 %", "met"),
    ("observer cost, cpu-demo img/s on ÷ off", "≥ 0.99", "met"),
    ("data wait, share of step time (cpu-demo, worst epoch)", "≤ 2 %", "met"),
    ("training cpu-demo, img/s with `--threads 2` ÷ default (1 thread)", "(none)", ""),
    ("training cpu-demo, img/s with `--nproc 2` (a process per core) ÷ default", "(none)", ""),
    ("training cpu-demo 64 px `--nproc 2`, FLOP/s ÷ matmul ceiling (as the trainer reports it, last epoch)",
     "≥ 35 %", "met"),
    ("training cpu-demo 128 px `--nproc 2`, same", "≥ 35 %", "met"),
    ("training cpu-demo, img/s static graph (default) ÷ `--eager`", "(none)", ""),
    ("full page 1240×1754, tiled inference", "≤ 10 s", "**not met**"),
    ("`seghw status --json` median wall time", "< 0.2 s", "met"),
    ("freshness, stats write → `seghw status` (max)", "≤ interval + 1 s = 2 s", "met"),
    ("cpu-demo after 10 min, PSNR gain over identity (synthetic, held-out seed)", "≥ 10 dB", "met"),
    ("same, PSNR gain over the classical baseline", "> 0 dB", "**not met**"),
    ("cpu-demo after 10 min, real print-only pages: printed ink kept", "≥ 99 %", "met"),
    ("same, PSNR(output, input)", "≥ 35 dB", "met"),
    ("cpu-demo after 10 min, real written pages: handwriting ink removed", "≥ 90 %", "**not met**"),
    ("same pages: printed ink kept", "≥ 98 %", "met"),
    ("same pages (real strokes over real print, exact truth): PSNR gain over identity", "≥ 6 dB", "**not met**"),
    ("same, PSNR gain over the classical baseline", "≥ 6 dB", "**not met**"),
    ("compose: `docker compose up -d` → all four services healthy", "(none)", ""),
    ("compose: `make train` → first point in VisualDL", "(none)", ""),
    ("VisualDL through the proxy ÷ direct, time to the first chart (remote link; cold, warm)", "(none)", ""),
]
TABLE_HEADERS = [
    "| figure | result | goal | |",
    "| configuration | observers | wall img/s | steps img/s | GFLOP/s | ceiling GFLOP/s | utilization |",
    "| variant | img/s over the epochs, per round | steps img/s in the last epoch, per round | "
    "÷ default, steady (median) | ÷ default, whole run (median) | utilization (last epoch, median) |",
    "| self time | function | where |",
    "| total time | function | where |",
    "| method | PSNR dB | SSIM | MS-SSIM | score | PSNR vs input | print kept | colour print kept "
    "| handwriting removed | s/image |",
    "| minutes | val PSNR dB | real print kept | real print PSNR vs input | real handwriting removed | "
    "print kept beside it | gain over identity (written) |",
    "| source | black | blue | all |",
    "| method | strokes missed (mask < 0.5) | strokes found, not painted back | beside strokes (2 px) "
    "| away from strokes (print, paper) |",
]


def training(label: str, size: int, utilization_off: float) -> dict:
    def run(wall: float) -> dict:
        return {"wall_rate": wall, "step_rate": wall * 1.25, "data_wait": [0.004, 0.006]}

    def side(wall: float, utilization: float) -> dict:
        return {"wall_rate": wall, "step_rate": wall * 1.25, "gflops": 20.0, "utilization": utilization,
                "peak": 100.0, "data_wait": [0.004, 0.006]}

    return {"label": label, "runs": {True: [run(49.5), run(50.5)], False: [run(50.0), run(50.0)]},
            "forward_flops": 1.25e8, "image_size": size, "batch_size": 8, "steps_per_epoch": 28,
            "on": side(50.0, 0.30), "off": side(50.5, utilization_off), "ratios": [0.99, 1.01], "ratio": 1.0}


def engine(seconds: float) -> dict:
    return {"times": [seconds, seconds + 0.5], "peaks": [100.0, 110.0], "model_share": 0.8,
            "seconds": seconds, "peak": 105.0, "gflops": 30.0}


DEFAULT = "--threads 1 (default, static graph)"
PROCS = "--nproc 2 (a process per core, data parallel)"
VARIANTS = [DEFAULT, "--eager (1 thread, the model in eager mode)", "--threads 2", "--threads 2, KMP_BLOCKTIME=0",
            PROCS]
METHODS = [("model (cpu-demo)", 33.0), ("identity (input as output)", 22.0), ("classical (baseline)", 33.5)]


REAL_POINT = {"real_print_kept": 0.997, "real_print_psnr": 41.5, "real_hw_removed": 0.73,
              "real_written_print_kept": 0.992, "real_gain_identity": 2.7, "real_gain_classical": 3.2}


def quality_rows(print_kept: float = 0.95) -> list[dict]:
    return [{"method": m, "psnr": p, "ssim": 0.9, "ms_ssim": 0.95, "score": 0.6, "psnr_input": 30.0,
             "print_kept": print_kept, "colour_kept": 0.9, "hw_removed": 0.7,
             "seconds_per_image": None if m.startswith("identity") else 0.05,
             "error_shares": {"missed": 0.25, "unpainted": 0.25, "beside": 0.1, "away": 0.4},
             "hw_over_print": 0.12, "hw_removed_over_print": 0.4, "hw_removed_over_paper": 0.75,
             **({"hw_removed_by": BY_SOURCE} if m.startswith("model") else {})}
            for m, p in METHODS]


def proxy_visits(way: str) -> dict[str, list[float]]:
    seconds, size = (5.0, 2_500_000) if way == "direct" else (3.0, 800_000)
    visits = {"cold_seconds": [seconds, seconds], "cold_bytes": [size, size], "cold_requests": [199, 199]}
    if way != "proxy, fresh":
        visits.update(warm_seconds=[seconds, seconds], warm_bytes=[size, size], warm_requests=[9, 9])
    return visits


BY_SOURCE = {"mnist in black": {"pixels": 300, "removed": 0.5}, "mnist in blue": {"pixels": 100, "removed": 1.0},
             "lasa in black": {"pixels": 100, "removed": 0.0}}


def results() -> dict[str, dict]:
    threads = {
        "cores": 2, "default": DEFAULT, "procs": PROCS, "procs_flag": "--nproc 2",
        "args": ["--preset", "cpu-demo", "--synthetic", "256", "--epochs", "3"],
        "runs": {name: [{"step_rate": 50.0, "epoch_rate": 40.0, "utilization": 0.4}] for name in VARIANTS},
        "procs_128": [{"step_rate": 10.0, "utilization": 0.5}],
        "procs_128_flags": ["--image-size", "128", "--nproc", "2"],
        "ratios": {name: [1.2] for name in VARIANTS[1:]}, "run_ratios": {name: [1.1] for name in VARIANTS[1:]},
    }
    fast = engine(12.0)
    return {
        "train": {"kernels": {"matmul": 80.0, "conv3x3 24ch 32px fwd+bwd": 20.0},
                  "train64": training("cpu-demo 64 px", 64, 0.30), "train128": training("cpu-demo 128 px", 128, 0.40)},
        "threads": threads,
        "data": {"pairs_per_second": {64: 120.0, 256: 20.0}},
        "page": {**fast, "engines": {"fast": fast, "eager": engine(20.0)}, "windows": 12, "gen_seconds": 1.5,
                 "cli": {"fast": 15.0, "eager": 22.0}, "cli_seconds": 15.0, "threads": 2,
                 "checkpoint_run": "logs_01020304"},
        "status": {"redis_server": "/usr/bin/redis-server", "runs": 4, "walls": [0.15, 0.16, 0.17], "median": 0.16,
                   "max": 0.17, "baseline": {"python": 0.02, "import redis": 0.1}, "fresh": [0.5, 0.9],
                   "fresh_median": 0.7, "fresh_max": 0.9, "memory_per_run": {"logs_a": 4000, "logs_b": 6000},
                   "used_memory": 2_000_000, "empty_memory": 1_000_000, "footprint_run_memory": 6000},
        "footprint": {"argv": ["/venv/bin/seghw", "train", "--preset", "cpu-demo", "--synthetic", "64", "--epochs",
                               "3", "--log-root", "/tmp/runs"], "seconds": 30.0, "maxrss_mb": 900.0,
                      "run_id": "logs_b", "import_rss_mb": 300.0, "epochs": 3, "steps_per_epoch": 7,
                      "vdl": {"total": 30_000, "one_off": 10_000, "per_epoch": {1: 7000, 2: 6500, 3: 6500},
                              "kinds": {"image": 20_000, "scalar": 10_000}},
                      "stats_bytes": 5000, "checkpoint_bytes": 2_000_000},
        "profile": {"seconds": 5.0, "fit_time": 4.0,
                    "self": [(("run_backward", "paddle/base/dygraph.py:10"), 2.0),
                             (("run_program", "paddle/jit.py:5"), 1.0)],
                    "inclusive": [(("fit", "seghw/train/loop.py:20"), 4.0),
                                  (("on_epoch_end", "seghw/train/callbacks.py:40"), 0.2)],
                    "threads": {"MainThread": 4.0, "native threads (Paddle's graph executor and kernels)": 1.0,
                                "seghw-loader": 0.3},
                    "observer_time": 0.2},
        "quality": {"rows": quality_rows(), "real_rows": {"print": quality_rows(0.997), "written": quality_rows(0.99)},
                    "curve": [{"minutes": i / 2, "val_psnr": 25.0 + i,
                               **({} if i % 3 else REAL_POINT)} for i in range(1, 31)],
                    "minutes": 10.0, "epochs_done": 30, "preset": "cpu-demo",
                    "pairs": 2048, "epoch_steps": 230, "val_images": 51, "epochs": 30, "images": 55_200,
                    "gain_identity": 11.0, "gain_classical": -0.5, **REAL_POINT},
        "compose": {"build_s": 5.0, "up_healthy_s": 33.0, "submit_s": 2.0, "first_point_s": 22.0,
                    "first_epoch_s": 30.0, "engine": "a private dockerd", "bases": "stand-in",
                    "train": "--preset cpu-demo --synthetic 64 --epochs 3"},
        "proxy": {"rounds": 2, "epochs": 50, "cpus": 2, "load": 1.5,
                  "visits": {network: {way: proxy_visits(way) for way in ("direct", "proxy", "proxy, fresh")}
                             for network in ("loopback", "remote")}},
    }


def bench(tmp_path: Path, argv: list[str], measured: dict[str, dict]) -> Bench:
    args, _chosen = cli.parse_args(argv)
    return Bench(args=args, tmp=tmp_path, seghw="seghw", env={}, sections=BY_NAME, results=measured)


def document(tmp_path: Path, argv: list[str] | None = None, measured: dict[str, dict] | None = None) -> str:
    b = bench(tmp_path, argv or [], results() if measured is None else measured)
    return report.document(b, SECTIONS, argv or [], STARTED, 600.0, LOAD)


def headings(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("#")]


def summary_rows(text: str) -> list[tuple[str, str, str]]:
    block = text.split("## Summary\n", 1)[1].split("\n## ", 1)[0]
    cells = [[c.strip() for c in line.strip("|").split(" | ")] for line in block.splitlines() if line.startswith("| ")]
    return [(c[0], c[2], c[3] if len(c) > 3 else "") for c in cells[1:]]


def test_every_section_is_in_the_table_and_runs_once():
    assert sorted(RUN_ORDER) == sorted(BY_NAME)
    assert len(BY_NAME) == len(SECTIONS)
    flags = [o.flag for s in SECTIONS for o in s.options]
    assert len(flags) == len(set(flags))
    for s in SECTIONS:
        assert s.reproduce, s.name
        assert all(hasattr(cli.parse_args([])[0], name) for name in s.reproduce), s.name


def test_full_document_structure(tmp_path):
    text = document(tmp_path)
    assert headings(text) == HEADINGS
    assert summary_rows(text) == SUMMARY
    lines = text.splitlines()
    for header in TABLE_HEADERS:
        assert header in lines
        assert lines[lines.index(header) + 1].startswith("|---")
    # Each section's own table rows.
    assert sum(line.startswith("| cpu-demo 64 px (batch 8, 28 steps/epoch) |") for line in lines) == 2
    assert [line.split(" | ")[0][2:] for line in lines if line.startswith("| --")] == VARIANTS
    shares = "0.6000 | 30.00 | 95.0 % | 90.0 % | 70.0 %"  # score, PSNR vs input, print, colour print, removed
    assert f"| model (cpu-demo) | 33.00 | 0.9000 | 0.9500 | {shares} | 0.050 |" in lines
    assert f"| identity (input as output) | 22.00 | 0.9000 | 0.9500 | {shares} | n/a |" in lines
    # The written pages by source and ink (pooled by pixels), and where the error sits.
    assert "| mnist | 50.0 % (300) | 100.0 % (100) | 62.5 % (400) |" in lines
    assert "| all | 37.5 % (400) | 100.0 % (100) | 50.0 % (500) |" in lines
    assert "| model (cpu-demo) | 25.0 % | 25.0 % | 10.0 % | 40.0 % |" in lines
    assert ("12.0 % of the handwriting's ink pixels lie over print (the truth there is printed ink, so removing "
            "them means putting the print back): the model removed 40.0 % of those and 75.0 % of the strokes "
            "over paper.") in lines
    curve = [line for line in lines if re.match(r"\| \d+\.\d \| \d+\.\d\d \| ", line)]
    # Only the points that measured the real set too: every third epoch here.
    assert len(curve) == 10 and curve[-1] == "| 15.0 | 55.00 | 99.7 % | 41.50 dB | 73.0 % | 99.2 % | +2.70 dB |"
    # Cross-section figures: the training runs' data wait under Data, the footprint run's Redis keys.
    assert "- Data wait (cpu-demo 64 px, `data_wait_share` of every epoch of every run above): median 0.5 %, " \
           "worst 0.6 % (goal ≤ 2 %)." in lines
    assert "- Redis: this run's keys take 6,000 B (see below)." in lines
    assert "(median of the rounds' ratios: 0.990, 1.010)" in text
    assert "(per epoch: 7,000, 6,500, 6,500)" in text
    assert "over 2 trials (0.50, 0.90)" in text
    sinks = text.split("## Biggest time sinks\n\n", 1)[1].splitlines()
    assert [s.split(":", 1)[0] for s in sinks] == [
        "- Paddle's kernels", "- Observers", "- Outside the steady optimizer steps (validation every epoch, epoch-end "
        "metrics, loader start-up, tracing the static graph in the first epoch)", "- CPU threads", "- CPU processes",
        "- Full pages", "- `seghw status`", "- Memory", "- Background threads (data loader, VisualDL writer) used 6.0 %"
        " of one core during the profiled epoch (seghw-loader 0.30 s)"]


def test_header_names_the_command(tmp_path):
    make = document(tmp_path).splitlines()
    assert make[2].startswith("Written by `make bench` on 2026-01-02 03:04 UTC in 10.0 min "
                              "(`.venv/bin/python -m scripts.bench`, i.e. `--rounds 7 --epochs 2 --synthetic 256 ")
    quick = document(tmp_path, ["--quick", "--out", "x.md"]).splitlines()
    assert quick[2].startswith("Written by `python -m scripts.bench --quick --out x.md` on ")
    assert "--rounds 1 --epochs 1 --synthetic 48 " in quick[2]
    assert quick[3].startswith("Machine: ") and "load average 1.00 at the start, 2.00 at the end" in quick[3]


def test_reproduce_commands_repeat_each_sections_options(tmp_path):
    text = document(tmp_path, ["--quick"])
    commands = re.findall(r"Reproduce: `([^`]*)`", text)
    assert commands == [
        ".venv/bin/python -m scripts.bench --only train --rounds 1 --epochs 1 --synthetic 48 --rounds-128 1 "
        "--synthetic-128 24",
        ".venv/bin/python -m scripts.bench --only threads --thread-rounds 1 --thread-epochs 2 --thread-synthetic 32",
        ".venv/bin/python -m scripts.bench --only data --synth-seconds 1.0",
        ".venv/bin/python -m scripts.bench --only page --page-repeats 1",
        ".venv/bin/python -m scripts.bench --only status --status-runs 5 --fresh-trials 2",
        ".venv/bin/python -m scripts.bench --only footprint --footprint-synthetic 48 --footprint-epochs 1",
        ".venv/bin/python -m scripts.bench --only profile --synthetic 48",
        ".venv/bin/python -m scripts.bench --only quality --quality-minutes 1.0 --quality-synthetic 64 "
        "--quality-epoch-steps 4 --quality-preset cpu-demo --quality-rate 55.0 --quality-curve-every 1 "
        "--realset build/realset",
        ".venv/bin/python -m scripts.bench --only compose --compose-epochs 1",
        ".venv/bin/python -m scripts.bench --only proxy --proxy-rounds 2",
    ]


def test_quality_sized_by_epochs_names_them_in_its_command(tmp_path):
    text = document(tmp_path, ["--quick", "--quality-epochs", "18"])
    quality = next(c for c in re.findall(r"Reproduce: `([^`]*)`", text) if "--only quality" in c)
    assert "--quality-epochs 18" in quality
    assert "None" not in text


@pytest.mark.parametrize("flag, value, why", [("--quality-epochs", "-3", "must be greater than 0 (got -3)"),
                                              ("--page-repeats", "0", "must be greater than 0 (got 0)"),
                                              ("--quality-minutes", "ten", "not a number: 'ten'")])
def test_a_count_or_duration_that_cannot_be_is_refused_by_name(flag, value, why, capsys):
    with pytest.raises(SystemExit) as stop:
        cli.parse_args([flag, value])
    assert stop.value.code == 2
    assert f"argument {flag}: {why}" in capsys.readouterr().err


def test_only_the_sections_that_ran(tmp_path):
    measured = results()
    text = document(tmp_path, ["--only", "page,status"], {k: measured[k] for k in ("page", "status")})
    assert headings(text) == ["# Benchmarks", "## Summary", "## 4. Full page", "## 5. Status and monitor",
                              "## Biggest time sinks"]
    assert [row[0] for row in summary_rows(text)] == [SUMMARY[9][0], SUMMARY[10][0], SUMMARY[11][0]]
    # Without the training section, Data shows the generator alone; without status, Footprint has no Redis line.
    text = document(tmp_path, ["--only", "data,footprint"], {k: measured[k] for k in ("data", "footprint")})
    assert "Data wait" not in text and "- Redis:" not in text
    assert summary_rows(text) == []


def test_quick_and_only_options():
    args, chosen = cli.parse_args(["--quick", "--rounds", "3"])
    assert chosen == RUN_ORDER
    assert (args.rounds, args.epochs, args.quality_minutes, args.synth_seconds) == (3, 1, 1.0, 1.0)
    args, chosen = cli.parse_args(["--only", "status, page"])
    assert chosen == ("status", "page") and args.rounds == 7
    with pytest.raises(SystemExit):
        cli.parse_args(["--only", "nope"])


def test_the_profile_counts_the_time_spent_in_observers():
    """The observers' share of the training thread comes from the hooks the loop calls them through;
    a profile of a slow observer behind them must find its time."""
    import time

    from pyinstrument import Profiler

    from scripts.bench.sections import profile
    from seghw.train.observers.base import Observer, ObserverList

    class Slow(Observer):
        def on_epoch_end(self, state, result):
            time.sleep(0.2)

    hooks = ObserverList([Slow()])
    profiler = Profiler(interval=0.002)
    with profiler:
        hooks.on_epoch_end(None, None)
    _, inclusive = profile.frame_times(profiler.last_session.root_frame())
    assert profile.observer_time(inclusive) >= 0.15
    assert {fn for fn, _ in profile.observer_hooks()} == {
        "on_train_start", "on_epoch_start", "on_step_end", "on_epoch_end", "on_train_end"}
