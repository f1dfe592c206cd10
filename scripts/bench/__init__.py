"""Measure speed and footprint and write docs/BENCHMARKS.md (``make bench``).

Run it from the project root: ``.venv/bin/python -m scripts.bench [--quick] [--only page,status]
[--out FILE]`` (``make bench`` runs it with no options; ``.venv/bin/python scripts/bench`` works
too, from anywhere). ``--help`` lists every option.

Layout:

- ``cli``: the options, the run (sections in ``RUN_ORDER``), writing the file.
- ``report``: the document: header, summary table, each section's markdown, time sinks.
- ``core``: ``Bench``, ``Section``, ``Option``, ``Goal``, ``Row``, formatting, child-process helpers.
- ``training``: training runs in this process or as ``seghw train``, shared by the sections.
- ``sections/``: one module per section, and in ``sections/__init__.py`` the table of them.

A section is a module with:

- ``NAME``: its ``--only`` name and its key in ``bench.results``.
- ``measure(bench) -> dict``: runs the measurement (``bench.args`` holds the options,
  ``bench.tmp`` a scratch folder, ``bench.runs_root`` the runs the monitor sees, ``bench.env`` the
  environment for children, ``bench.seghw`` the CLI), prints progress with ``bench.say`` and
  returns its figures. It may read sections that ran before it in ``bench.results``.
- ``render(bench, result) -> list[str]``: its markdown, called only when it ran, with what
  ``measure`` returned: lines starting with an empty line and its ``##`` heading, ending with
  ``f"Reproduce: `{bench.command(NAME)}`."``.

and optionally:

- ``OPTIONS``: a tuple of ``core.Option(name, type, default, quick, help)``; each becomes
  ``--name-with-dashes``, and ``--quick`` uses the ``quick`` value.
- ``REPRODUCE``: the option names ``bench.command(NAME)`` repeats (default: those of ``OPTIONS``).
- ``summary(bench, result) -> list[core.Row]``: its rows of the summary table; a row with a
  ``core.Goal`` and the value it checks shows the goal and "met" / "**not met**".
- ``sinks(bench, result) -> list[str]``: its bullets under *Biggest time sinks*.

To add one: write ``sections/NAME.py``, import it in ``sections/__init__.py``, put it in
``SECTIONS`` where its markdown belongs in the document and its name in ``RUN_ORDER`` where it
should run, and give ``tests/test_bench_structure.py`` a hand-made result for it.
"""
