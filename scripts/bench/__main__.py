"""Entry point: ``python -m scripts.bench`` from the project root (what ``make bench`` runs), or
``python scripts/bench`` from anywhere."""

import sys
from pathlib import Path

if not __package__:  # run as a folder: import the package from the project root, not from this folder
    sys.path[0] = str(Path(__file__).resolve().parents[2])

from scripts.bench.cli import main  # noqa: E402

sys.exit(main())
