"""Measure speed and footprint and write docs/BENCHMARKS.md (``make bench``).

Comparisons are ratios taken in the same run, alternating the configurations, because the
machine is shared and noisy; the FLOP ceiling is measured again before every training round.
``--quick`` is a smoke version (about two minutes) that prints without rewriting the document
unless ``--out`` is given; ``--only`` runs some sections (printing only).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

from . import report
from .core import DOC, INVOCATION, ROOT, Bench
from .sections import BY_NAME, RUN_ORDER, SECTIONS


def _positive(kind: type):
    """Every number the sections take is a count or a duration: ``0`` or ``-3`` is refused by name."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be greater than 0 (got {text})")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"python {INVOCATION}", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smoke version (~2 min); writes only with --out")
    p.add_argument("--only", help=f"comma-separated sections of {', '.join(RUN_ORDER)} (prints only)")
    p.add_argument("--out", type=Path, help=f"where to write the report (default {DOC.relative_to(ROOT)})")
    p.add_argument("--no-write", action="store_true", help="print only")
    for section in SECTIONS:
        for o in section.options:
            kind = _positive(o.type) if o.type in (int, float) else o.type
            p.add_argument(o.flag, type=kind, default=o.default, help=o.help)
    return p


def parse_args(argv: Sequence[str]) -> tuple[argparse.Namespace, tuple[str, ...]]:
    """The options, and the names of the sections to run."""
    p = parser()
    args = p.parse_args(argv)
    if args.quick:  # the --quick value of every option not given another value
        for o in (o for s in SECTIONS for o in s.options):
            if getattr(args, o.name) == o.default:
                setattr(args, o.name, o.quick)
    if not args.only:
        return args, RUN_ORDER
    chosen = tuple(s.strip() for s in args.only.split(",") if s.strip())
    unknown = set(chosen) - set(RUN_ORDER)
    if unknown:
        p.error(f"unknown section(s) {', '.join(sorted(unknown))}; choose from {', '.join(RUN_ORDER)}")
    return args, chosen


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args, chosen = parse_args(argv)
    out = None if args.no_write or args.only else (args.out or (None if args.quick else DOC))
    args.writes_doc = out == DOC  # sections that illustrate the document write its pictures too

    from seghw.device import import_paddle

    import_paddle()  # the trainer's thread settings, set before Paddle or numpy is imported
    started, t_start, load_start = datetime.now(timezone.utc), time.perf_counter(), os.getloadavg()
    seghw = str(Path(sys.executable).with_name("seghw"))
    if not Path(seghw).exists():
        seghw = shutil.which("seghw") or "seghw"
    with tempfile.TemporaryDirectory(prefix="seghw-bench-") as tmp:
        cache = Path(tmp) / "cache"
        os.environ["SEGHW_CACHE_DIR"] = str(cache)
        env = {**os.environ, "SEGHW_CACHE_DIR": str(cache), "PYTHONUNBUFFERED": "1"}
        env.pop("SEGHW_LOG_ROOT", None)
        b = Bench(args=args, tmp=Path(tmp), seghw=seghw, env=env, sections=BY_NAME)
        for name in RUN_ORDER:
            if name in chosen:
                t0 = time.perf_counter()
                b.results[name] = BY_NAME[name].measure(b)
                b.say(f"  ({name}: {time.perf_counter() - t0:.0f} s)")
        seconds = time.perf_counter() - t_start
        text = report.document(b, SECTIONS, argv, started, seconds, (load_start, os.getloadavg()))
    b.say(f"done in {seconds / 60:.1f} min")
    if out is None:
        print("\n" + text)
        return 0
    out.parent.mkdir(parents=True, exist_ok=True)
    from seghw.atomic import write_bytes_atomic

    write_bytes_atomic(out, text.encode("utf-8"))
    print(f"wrote {out}")
    return 0
