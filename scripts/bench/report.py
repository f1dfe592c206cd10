"""The document: a header, the summary table gathered from every section that ran, each section's
own markdown, and the time sinks the sections report; in the order of the table in ``sections``."""

from __future__ import annotations

import os
import platform
from collections.abc import Sequence
from datetime import datetime

from .core import INVOCATION, Bench, Section, cpu_model, given_options


def versions() -> str:
    import numpy as np
    import paddle

    return f"Paddle {paddle.__version__}, numpy {np.__version__}"


def document(b: Bench, sections: Sequence[Section], argv: Sequence[str], started: datetime, seconds: float,
             load: tuple[tuple, tuple]) -> str:
    """``argv``: the command-line arguments (none for ``make bench``); ``load``: load averages at start and end."""
    ran = [(s, b.results[s.name]) for s in sections if s.name in b.results]
    full = given_options(b.args, (o.name for s in sections for o in s.options))
    invoked = " ".join([INVOCATION, *argv])
    lines = [
        "# Benchmarks",
        "",
        f"Written by `{'make bench' if not argv else 'python ' + invoked}` on "
        f"{started.strftime('%Y-%m-%d %H:%M UTC')} in {seconds / 60:.1f} min "
        f"(`.venv/bin/python {invoked}`, i.e. `{full}`).",
        f"Machine: {cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{versions()}; load average {load[0][0]:.2f} at the start, "
        f"{load[1][0]:.2f} at the end (the machine is shared: compare ratios, not absolute numbers, across runs).",
        "Every figure below names the command that measures it again; `--only SECTION` runs one section and",
        "prints without touching this file.",
        "",
        "## Summary",
        "",
        "| figure | result | goal | |",
        "|---|---|---|---|",
    ]
    lines += [row.markdown() for s, result in ran if s.summary for row in s.summary(b, result)]
    for s, result in ran:
        lines += s.render(b, result)
    lines += ["", "## Biggest time sinks", ""]
    lines += [f"- {sink}" for s, result in ran if s.sinks for sink in s.sinks(b, result)]
    return "\n".join(lines) + "\n"
