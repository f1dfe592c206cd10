"""The guide's ``python train_demo.py``: a short demo training on synthetic data.

Runs ``seghw train --preset cpu-demo --synthetic 64 --epochs 3`` (on the GPU when one is visible);
any extra flags are passed on, e.g. ``python train_demo.py --epochs 10 --log-root /tmp/models``.
"""

from __future__ import annotations

import sys

from seghw.cli import main

DEMO_ARGS = ["train", "--preset", "cpu-demo", "--synthetic", "64", "--epochs", "3"]

if __name__ == "__main__":
    sys.exit(main(DEMO_ARGS + sys.argv[1:]))
