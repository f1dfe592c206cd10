"""The real-source set builder on a tiny sample: its layout, its truth, and the measures on it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from seghw.data import realset
from seghw.data.dataset import scan_pairs
from seghw.evaluate import evaluate_dataset, evaluation_sets, read_rgb


def _page(seed: int) -> np.ndarray:
    """A 200-px page with rows of dark printed bars, like lines of text."""
    rng = np.random.default_rng(seed)
    page = np.full((200, 200, 3), 245, np.uint8)
    for y in range(12, 190, 22):
        x = 10
        while x < 180:
            w = int(rng.integers(6, 20))
            page[y : y + 10, x : x + w] = 30
            x += w + 5
    return page


def _hands() -> realset.HandSources:
    digit = np.zeros((28, 28), np.float32)
    cv2.circle(digit, (14, 14), 9, 1.0, 3)
    lasa = realset.draw_trajectory(np.stack([np.sin(np.linspace(0, 6, 200)), np.linspace(0, 1, 200)], 1),
                                   40.0, 2.5, np.random.default_rng(0))
    return realset.HandSources({"mnist": [digit], "lasa": [lasa]})


def test_builds_both_sets_with_exact_truth(tmp_path: Path) -> None:
    pages = [(f"p{i}", _page(i), 14.0) for i in range(3)]
    photo = np.tile(np.linspace(0, 255, 64, dtype=np.uint8)[None, :, None], (64, 1, 3))
    manifest = realset.build(tmp_path, pages, _hands(), [photo], seed=3, print_count=5, written_count=4)
    assert [len(manifest["print"]), len(manifest["written"])] == [5, 4]
    assert json.loads((tmp_path / "realset.json").read_text()) == manifest
    assert {item["kind"] for item in manifest["print"]} == {"text", "figure", "inverse"}
    for pair in scan_pairs(tmp_path / "print"):
        assert np.array_equal(read_rgb(pair.image), read_rgb(pair.gt))
        assert not read_rgb(pair.mask).any()
    for pair in scan_pairs(tmp_path / "written"):
        image, gt, mask = read_rgb(pair.image), read_rgb(pair.gt), read_rgb(pair.mask)[..., 0]
        assert mask.any()
        # The scan is the same for both: beyond the strokes' reach (blur, JPEG blocks) they are equal.
        far = cv2.dilate(mask, np.ones((49, 49), np.uint8)) == 0
        assert far.any() and np.array_equal(image[far], gt[far])
        assert np.abs(image.astype(int) - gt.astype(int))[mask > 0].max() > 40
        # Every mask pixel is labelled with the source and ink of its strokes, and nothing else is.
        label = np.asarray(Image.open(tmp_path / "written" / "sources" / f"{pair.name}.png"))
        assert np.array_equal(label > 0, mask > 0)
        names = json.loads((tmp_path / "written" / "sources" / "labels.json").read_text())
        item = next(w for w in manifest["written"] if w["name"] == pair.name)
        assert {names[v - 1] for v in np.unique(label[label > 0])} <= set(item["handwriting"])


def test_the_same_seed_builds_the_same_set(tmp_path: Path) -> None:
    pages = [("p", _page(0), 14.0)]
    for out in ("a", "b"):
        realset.build(tmp_path / out, pages, _hands(), [], seed=5, print_count=2, written_count=2)
    for sub in ("print/images/print_001.png", "written/images/written_001.png", "written/masks/written_001.png",
                "written/sources/written_001.png"):
        assert (tmp_path / "a" / sub).read_bytes() == (tmp_path / "b" / sub).read_bytes()


def test_evaluation_reports_harm_and_removal(tmp_path: Path) -> None:
    realset.build(tmp_path, [("p", _page(1), 14.0)], _hands(), [], seed=1, print_count=2, written_count=3)
    printed = {r["method"]: r for r in evaluate_dataset(tmp_path / "print", None)}
    assert printed["identity"]["print_kept"] == 1.0 and printed["identity"]["psnr_input"] == 100.0
    assert printed["identity"]["hw_removed"] is None
    written = {r["method"]: r for r in evaluate_dataset(tmp_path / "written", None)}
    assert written["identity"]["hw_removed"] == 0.0 and written["identity"]["print_kept"] == 1.0
    # By source: the identity removes nothing of any of them, and misses every stroke.
    by = written["identity"]["hw_removed_by"]
    assert by and {k.split(" in ")[0] for k in by} <= {"mnist", "lasa"}
    assert all(c["removed"] == 0.0 and c["pixels"] > 0 for c in by.values())
    assert written["identity"]["error_shares"]["missed"] > 0.5
    assert written["identity"]["error_shares"]["unpainted"] == 0.0

    def erase_everything(batch):  # a "model" that paints the whole page white
        return np.ones_like(batch), np.ones_like(batch[:, :1])

    harm = {r["method"]: r for r in evaluate_dataset(tmp_path / "print", erase_everything, window=64)}
    assert harm["model"]["print_kept"] == 0.0 and harm["model"]["psnr_input"] < 15


def test_eval_takes_the_sets_root_or_one_set(tmp_path: Path) -> None:
    realset.build(tmp_path / "realset", [("p", _page(1), 14.0)], _hands(), [], seed=1, print_count=1,
                  written_count=1)
    (tmp_path / "realset" / "notes").mkdir()  # a folder that is no set is left out
    root = tmp_path / "realset"
    assert evaluation_sets(root) == {"print": root / "print", "written": root / "written"}
    assert evaluation_sets(root / "written") == {"written": root / "written"}
    # Neither a set nor a folder of sets: the folder itself, so that the layout error names it.
    assert evaluation_sets(root / "notes") == {"notes": root / "notes"}
    assert evaluation_sets(tmp_path / "missing") == {"missing": tmp_path / "missing"}


def test_mnist_json_and_photo_strokes(tmp_path: Path) -> None:
    for d in range(10):
        digits = np.zeros((3, 784))
        digits[:, 300 + d] = 1.0
        (tmp_path / f"{d}.json").write_text(json.dumps({"data": digits.ravel().tolist()}))
    out = realset.mnist_digits(tmp_path, per_digit=2)
    assert len(out) == 20 and out[0].shape == (28, 28)
    photo = np.full((120, 200), 190, np.uint8)
    cv2.putText(photo, "x+1", (20, 80), cv2.FONT_HERSHEY_SCRIPT_SIMPLEX, 2.0, 40, 3)
    strokes = realset.photo_strokes(photo)
    assert strokes and all(s.max() > 0.9 and s.dtype == np.float32 for s in strokes)


def test_the_builders_tools_are_named_with_the_install_line(tmp_path: Path) -> None:
    """``make realset``/``make bench`` check pdftoppm, pdfinfo and npm first: without them (and
    without root to install them), one line naming the packages and the target, exit 1."""
    script = Path(__file__).resolve().parents[1] / "scripts" / "install_tools.py"
    cmd = [sys.executable, str(script), "realset"]
    if os.geteuid() == 0:  # as root it would install them; the message is for everyone else
        cmd = [shutil.which("setpriv") or "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *cmd]
    done = subprocess.run(cmd, env={"PATH": str(tmp_path)}, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("make realset needs pdftoppm and pdfinfo"), lines
    assert "npm" in lines[0] and "sudo apt-get install npm poppler-utils" in lines[0]
    for_bench = subprocess.run([*cmd, "--for", "make bench"], env={"PATH": str(tmp_path)}, capture_output=True,
                               text=True, timeout=60)
    assert for_bench.returncode == 1 and for_bench.stderr.startswith("make bench needs pdftoppm"), for_bench.stderr
    assert for_bench.stderr.strip().endswith("then make bench again"), for_bench.stderr
    bad = subprocess.run([sys.executable, str(script), "nonsense"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "usage: install_tools.py [test|realset] [--for TARGET]" in bad.stderr
