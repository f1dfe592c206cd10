"""CPU threads and graph mode: the trainer as a subprocess in variants (threads, eager mode, a
process per core, MKL's code path), alternating, against its default."""

from __future__ import annotations

import os
from typing import Any

from ..core import Bench, Option, Row, median, pct, rates
from ..training import cli_train, forced_avx2_is_safe
from .train import UTILIZATION

NAME = "threads"
OPTIONS = (
    Option("thread_rounds", int, 3, 1, "rounds of the CPU thread variants"),
    Option("thread_epochs", int, 3, 2, "epochs of each CPU thread variant run"),
    Option("thread_synthetic", int, 256, 32, "synthetic pairs, CPU thread variants"),
)


def measure(b: Bench) -> dict[str, Any]:
    """The trainer as a subprocess with its default (one thread, static graph), in eager mode, with a
    thread per core, with a thread per core plus KMP_BLOCKTIME=0 (Paddle's Intel OpenMP workers
    stop spinning after each parallel region), as a process per core (data parallel, one thread
    each), and, where seghw.device picked MKL's code path, with MKL's own choice (elsewhere, on a CPU
    with AVX2, with MKL's AVX2 path forced); the variants alternate, reversing their order each round."""
    a = b.args
    cores = os.cpu_count() or 1
    base = ["--preset", "cpu-demo", "--synthetic", str(a.thread_synthetic), "--epochs", str(a.thread_epochs)]
    procs = f"--nproc {cores} (a process per core, data parallel)"
    # name: (extra flags, extra environment)
    variants = {
        "--threads 1 (default, static graph)": (["--threads", "1"], {}),
        "--eager (1 thread, the model in eager mode)": (["--threads", "1", "--eager"], {}),
        f"--threads {cores}": (["--threads", str(cores)], {}),
        f"--threads {cores}, KMP_BLOCKTIME=0": (["--threads", str(cores)], {"KMP_BLOCKTIME": "0"}),
        procs: (["--nproc", str(cores)], {}),
    }
    from seghw.device import MKL_AVX2

    mkl_path = os.environ.get("MKL_DEBUG_CPU_TYPE")
    if mkl_path:  # seghw.device chose MKL's code path for this CPU: measure MKL's own choice against it
        variants["MKL's own code path (`MKL_DEBUG_CPU_TYPE=`; 1 thread)"] = (["--threads", "1"],
                                                                           {"MKL_DEBUG_CPU_TYPE": ""})
    elif forced_avx2_is_safe():  # MKL runs its own choice (an Intel CPU): measure the AVX2 path against it
        variants[f"MKL's AVX2 path forced (`MKL_DEBUG_CPU_TYPE={MKL_AVX2}`; 1 thread)"] = (
            ["--threads", "1"], {"MKL_DEBUG_CPU_TYPE": MKL_AVX2})
    b.say(f"threads: {' / '.join(variants)}, {a.thread_rounds} rounds")
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
    names = list(variants)
    big_flags = ["--image-size", "128", "--nproc", str(cores)]
    big: list[dict[str, float]] = []
    for r in range(a.thread_rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            flags, extra = variants[name]
            _run, stats = cli_train(b, [*base, *flags], b.tmp / f"threads{len(runs[name])}", env={**b.env, **extra})
            hist = stats["history"]
            processes = stats["data"].get("processes", 1)
            images = stats["global_step"] * stats["config"]["batch_size"] * processes
            # The last epoch's step rate is the steady state; the whole run includes start-up (the static
            # graph is traced and built during the first steps of each mode). Rates count every process.
            res = {"step_rate": hist[-1]["samples_per_sec"],
                   "epoch_rate": images / sum(h["epoch_duration"] for h in hist),
                   "utilization": hist[-1].get("flops_utilization")}
            runs[name].append(res)
            b.say(f"  round {r + 1}: {name}: {res['epoch_rate']:.1f} img/s over the epochs "
                  f"(steps {res['step_rate']:.1f} img/s in the last)")
        # The 128-px configuration as a process per core, for its utilization only (no ÷ default).
        _run, stats = cli_train(b, [*base, *big_flags], b.tmp / f"threads128_{r}")
        big.append({"step_rate": stats["history"][-1]["samples_per_sec"],
                    "utilization": stats["history"][-1].get("flops_utilization")})
        b.say(f"  round {r + 1}: 128 px, --nproc {cores}: steps {big[-1]['step_rate']:.1f} img/s in the last epoch")
    default = names[0]

    def ratios(name: str, key: str) -> list[float]:
        return [x[key] / d[key] for x, d in zip(runs[name], runs[default], strict=True)]

    for name in names[1:]:
        b.say(f"  {name} ÷ default: {median(ratios(name, 'step_rate')):.2f} steady, "
              f"{median(ratios(name, 'epoch_rate')):.2f} over the whole run")
    return {"cores": cores, "runs": runs, "args": base, "default": default,
            "procs": procs, "procs_flag": f"--nproc {cores}", "procs_128": big,
            "procs_128_flags": big_flags,
            "ratios": {name: ratios(name, "step_rate") for name in names[1:]},
            "run_ratios": {name: ratios(name, "epoch_rate") for name in names[1:]}}


def reported_utilization(runs: list[dict[str, Any]]) -> float | None:
    """Median of the utilization the trainer reported in its last epoch, over the runs that had one."""
    values = [x["utilization"] for x in runs if x.get("utilization") is not None]
    return median(values) if values else None


def summary(b: Bench, th: dict[str, Any]) -> list[Row]:
    many = f"--threads {th['cores']}"
    procs, flag = th["procs"], th["procs_flag"]
    rows = [Row(f"training cpu-demo, img/s with `{many}` ÷ default (1 thread)", f"{median(th['ratios'][many]):.2f}"),
            Row(f"training cpu-demo, img/s with `{flag}` (a process per core) ÷ default",
                f"{median(th['ratios'][procs]):.2f}")]
    for figure, runs in ((f"training cpu-demo 64 px `{flag}`, FLOP/s ÷ matmul ceiling (as the trainer reports it, "
                          "last epoch)", th["runs"][procs]),
                         (f"training cpu-demo 128 px `{flag}`, same", th.get("procs_128") or [])):
        util = reported_utilization(runs)
        if util is not None:
            rows.append(Row(figure, pct(util), UTILIZATION, util))
    eager = next((median(v) for k, v in th["ratios"].items() if k.startswith("--eager")), None)
    if eager:
        rows.append(Row("training cpu-demo, img/s static graph (default) ÷ `--eager`", f"{1 / eager:.2f}"))
    return rows


def render(b: Bench, th: dict[str, Any]) -> list[str]:
    cmd = " ".join(["seghw train", *th["args"]])
    lines = ["", "### CPU threads and graph mode", "",
             "The trainer uses one thread by default (`--threads`, env `SEGHW_THREADS`) and runs the model as "
             "a static graph (`paddle.jit.to_static`; `--eager` turns it off). The same cpu-demo run as a "
             f"subprocess, `{cmd}` plus the variant's flags, in variants that alternate (img/s over "
             "the epochs, validation included; *steps* as above). `KMP_BLOCKTIME=0` tells Paddle's Intel "
             "OpenMP runtime not to keep its workers spinning after each parallel region.", "",
             "| variant | img/s over the epochs, per round | steps img/s in the last epoch, per round | "
             "÷ default, steady (median) | ÷ default, whole run (median) | utilization (last epoch, median) |",
             "|---|---|---|---|---|---|"]
    for name, rs in th["runs"].items():
        ratio = f"{median(th['ratios'][name]):.2f}" if name in th["ratios"] else "1"
        run_ratio = f"{median(th['run_ratios'][name]):.2f}" if name in th["run_ratios"] else "1"
        util = reported_utilization(rs)
        lines.append(f"| {name} | {rates(rs, 'epoch_rate')} | {rates(rs, 'step_rate')} | {ratio} | {run_ratio} | "
                     f"{'n/a' if util is None else pct(util)} |")
    lines += ["", "*Steady* compares the step rates of the last epoch; *whole run* includes start-up, where "
              "the static graph is traced and built (once for training, once for validation). Rates and "
              "utilization count the images of every process; with processes, each one trains a batch of "
              "the configured size (the step's batch is their sum) and gradients are averaged over gloo."]
    big = th.get("procs_128") or []
    if big:
        big_cmd = " ".join(["seghw train", *th["args"], *th["procs_128_flags"]])
        lines += ["", f"The 128-px configuration as a process per core, `{big_cmd}`, once per round: steps "
                  f"{rates(big, 'step_rate')} img/s in the last epoch, utilization "
                  f"{pct(reported_utilization(big))} (median, as the trainer reports it)."]
    lines += ["", f"Reproduce: `{b.command(NAME)}`."]
    return lines


def sinks(b: Bench, th: dict[str, Any]) -> list[str]:
    many = f"--threads {th['cores']}"
    if many not in th["ratios"]:
        return []
    ratio = median(th["ratios"][many])
    kmp = next((median(v) for k, v in th["ratios"].items() if "KMP" in k), float("nan"))
    return [f"CPU threads: a thread per core (`{many}`) trains at {ratio:.2f}× the speed of the default "
            f"one thread on this machine; with `KMP_BLOCKTIME=0` at {kmp:.2f}× (see *CPU threads and graph "
            "mode*). Every in-process figure here uses the default, as `seghw train` does.",
            f"CPU processes: a process per core (`{th['procs_flag']}`, data parallel) trains "
            f"{median(th['ratios'][th['procs']]):.2f}× the images per second of one process (steady), "
            "with a batch as many times larger per step."]
