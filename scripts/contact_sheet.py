"""Write docs/images/synthetic_samples.png: synthetic pairs as image | ground truth | mask rows."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np
from PIL import Image

from seghw.atomic import write_bytes_atomic
from seghw.data.synth import generate_pair

ROOT = Path(__file__).resolve().parents[1]


def contact_sheet(seeds: list[int], size: int) -> np.ndarray:
    rows = []
    for seed in seeds:
        image, gt, mask = generate_pair(seed, size)
        gap = np.full((size, 4, 3), 255, np.uint8)
        rows.append(np.concatenate([image, gap, gt, gap, np.repeat(mask[..., None], 3, axis=2)], axis=1))
        rows.append(np.full((4, rows[-1].shape[1], 3), 255, np.uint8))
    return np.concatenate(rows[:-1], axis=0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4, 5])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "synthetic_samples.png")
    args = parser.parse_args()
    buf = io.BytesIO()
    Image.fromarray(contact_sheet(args.seeds, args.size)).save(buf, format="PNG", optimize=True)
    write_bytes_atomic(args.out, buf.getvalue())
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
