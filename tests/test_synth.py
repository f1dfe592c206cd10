"""Synthetic pairs: deterministic files, ink only where the mask says, every ink shows up."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from seghw.data import fonts as fontmod
from seghw.data.synth import (
    GENERATOR_VERSION,
    MANIFEST,
    body_text_px,
    cached_dataset,
    default_workers,
    generate_pair,
    pair_seed,
    write_dataset,
)
from seghw.errors import ConfigError


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _inks(image: np.ndarray, gt: np.ndarray, mask: np.ndarray) -> set[str]:
    """Inks present, judged from how the image darkens the gt per channel under the mask."""
    sel = (mask > 0) & (np.abs(image.astype(int) - gt.astype(int)).max(axis=2) > 40) & (gt.min(axis=2) > 60)
    ratio = image[sel].astype(float) / gt[sel].astype(float)
    found = set()
    if ((ratio[:, 2] - ratio[:, 0]) > 0.25).sum() >= 5:
        found.add("blue")
    if ((ratio[:, 0] - ratio[:, 1]) > 0.3).sum() >= 5:
        found.add("red")
    if ((ratio.max(axis=1) < 0.45) & (np.ptp(ratio, axis=1) < 0.15)).sum() >= 5:
        found.add("black")
    return found


def test_same_seed_same_bytes_and_different_seed_differs(tmp_path: Path) -> None:
    a = _files(write_dataset(tmp_path / "a", count=3, size=48, seed=7, progress=False))
    b = _files(write_dataset(tmp_path / "b", count=3, size=48, seed=7, progress=False))
    c = _files(write_dataset(tmp_path / "c", count=3, size=48, seed=8, progress=False))
    assert sorted(a) == [
        MANIFEST,
        *[f"gts/syn_00000{i}.png" for i in range(3)],
        *[f"images/syn_00000{i}.jpg" for i in range(3)],
        *[f"masks/syn_00000{i}.png" for i in range(3)],
    ]
    assert a == b
    assert all(a[k] != c[k] for k in a if k.startswith("images/"))
    manifest = json.loads(a[MANIFEST])
    assert (manifest["count"], manifest["size"], manifest["seed"]) == (3, 48, 7)
    assert manifest["generator_version"] == GENERATOR_VERSION


def test_processes_write_the_same_bytes_as_one(tmp_path: Path) -> None:
    one = _files(write_dataset(tmp_path / "one", count=5, size=32, seed=5, progress=False, workers=1))
    two = _files(write_dataset(tmp_path / "two", count=5, size=32, seed=5, progress=False, workers=2))
    assert len(one) == 1 + 3 * 5
    assert two == one


def test_default_workers_only_for_large_sets() -> None:
    assert default_workers(10) == 1
    assert 1 <= default_workers(100_000) <= (os.cpu_count() or 1)
    with pytest.raises(ConfigError, match="workers must be >= 1"):
        write_dataset(Path("unused"), count=2, size=32, seed=0, progress=False, workers=0)


def test_pair_does_not_depend_on_count(tmp_path: Path) -> None:
    small = _files(write_dataset(tmp_path / "s", count=2, size=32, seed=3, progress=False))
    large = _files(write_dataset(tmp_path / "l", count=4, size=32, seed=3, progress=False))
    for k, v in small.items():
        if k != MANIFEST:
            assert large[k] == v, k
    assert pair_seed(3, 0) != pair_seed(3, 1) != pair_seed(4, 1)


@pytest.mark.parametrize("size", [32, 48, 64, (40, 72)])
def test_shapes_and_non_empty_mask(size: int | tuple[int, int]) -> None:
    h, w = (size, size) if isinstance(size, int) else size
    for seed in range(6):
        image, gt, mask = generate_pair(seed, size)
        assert image.shape == gt.shape == (h, w, 3) and mask.shape == (h, w)
        assert image.dtype == gt.dtype == mask.dtype == np.uint8
        assert set(np.unique(mask).tolist()) <= {0, 255}
        assert (mask > 0).any(), f"seed {seed} size {size}: empty mask"
        assert gt.std() > 2, "the page has printed content"


def test_full_page_size() -> None:
    image, gt, mask = generate_pair(0, (1754, 1240))
    assert image.shape == (1754, 1240, 3)
    assert 0.001 < (mask > 0).mean() < 0.3


def test_image_and_gt_differ_only_under_the_ink() -> None:
    for seed in range(6):
        image, gt, mask = generate_pair(seed, 128)
        diff = np.abs(image.astype(int) - gt.astype(int)).max(axis=2)
        near = cv2.dilate(mask, np.ones((9, 9), np.uint8)) > 0
        outside = diff[~near]
        # Only JPEG blocks that straddle ink may change a little beyond a 4 px band around it.
        assert outside.mean() < 2.5, seed
        assert (outside > 10).mean() < 0.05, seed
        assert diff[mask > 0].mean() > 15, seed


def test_blue_red_and_black_ink_all_appear() -> None:
    seen: set[str] = set()
    for seed in range(16):  # some pages are grey-level scans, where no ink has a colour
        seen |= _inks(*generate_pair(seed, 64))
    assert seen >= {"blue", "red", "black"}, seen


def test_works_without_system_fonts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEGHW_FONT_DIRS", "")
    assert fontmod.available_fonts() == ()
    image, gt, mask = generate_pair(5, 64, fonts=())
    assert image.shape == (64, 64, 3) and (mask > 0).any()
    assert gt.std() > 2, "Pillow's bundled font still prints text"
    assert np.array_equal(image, generate_pair(5, 64)[0]), "no font folders means the bundled font"


def test_bad_sizes_and_seeds_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="too small"):
        generate_pair(0, 8)
    with pytest.raises(ConfigError, match="seed"):
        generate_pair(-1, 32)
    with pytest.raises(ConfigError, match="count"):
        write_dataset(tmp_path, count=0, size=32, seed=0, progress=False)


def test_cached_dataset_regenerates_only_when_manifest_differs(tmp_path: Path) -> None:
    out = cached_dataset(tmp_path, count=2, size=32, seed=1)
    assert out == tmp_path / f"synthetic_2_32_1_v{GENERATOR_VERSION}"
    image = out / "images" / "syn_000001.jpg"
    stamp = image.stat().st_mtime_ns
    newest = max(p.stat().st_mtime_ns for p in out.rglob("*.*") if p.name != MANIFEST)
    assert (out / MANIFEST).stat().st_mtime_ns >= newest, "the manifest is written last"

    assert cached_dataset(tmp_path, count=2, size=32, seed=1) == out
    assert image.stat().st_mtime_ns == stamp, "a complete cache is reused"

    (out / MANIFEST).unlink()  # as after an interrupted generation
    image.write_bytes(b"half")
    cached_dataset(tmp_path, count=2, size=32, seed=1)
    assert (out / MANIFEST).is_file()
    assert image.read_bytes()[:2] == b"\xff\xd8", "the incomplete cache was rewritten"


def test_an_unwritable_output_folder_is_one_line_naming_it(tmp_path: Path, capsys) -> None:
    from seghw.cli import main

    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    assert main(["synth", "--out", str(blocker / "out"), "--count", "2", "--size", "32"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("seghw: error:") and str(blocker) in err


def _dark_area(gt: np.ndarray, side: int = 12) -> bool:
    """A printed area wider than ``side`` px that is solid dark (a bar, a block, a figure's shadow)."""
    dark = (cv2.cvtColor(gt, cv2.COLOR_RGB2GRAY) < 90).astype(np.uint8)
    return bool(cv2.erode(dark, np.ones((side, side), np.uint8)).any())


def test_dark_print_grey_and_binarized_scans_appear() -> None:
    dark = grey = binary = 0
    for seed in range(40):
        image, gt, _mask = generate_pair(seed, 256)
        dark += _dark_area(gt)
        if np.array_equal(gt[..., 0], gt[..., 1]) and np.array_equal(gt[..., 1], gt[..., 2]):
            grey += 1
            binary += set(np.unique(gt).tolist()) <= {0, 255}
    assert dark >= 4, "large dark print (bars, blocks, figures) on some pages"
    assert grey - binary >= 2 and binary >= 1, (grey, binary)


def test_binarized_pages_mask_only_ink_that_shows() -> None:
    for seed in range(60):
        image, gt, mask = generate_pair(seed, 256)
        if set(np.unique(gt).tolist()) <= {0, 255}:
            changed = cv2.dilate((image != gt).any(axis=2).astype(np.uint8), np.ones((3, 3), np.uint8))
            assert not (mask.astype(bool) & (changed == 0)).any(), seed
            return
    pytest.fail("no binarized page in 60 seeds")


def test_large_pages_hold_text_at_scan_sizes_not_larger_letters():
    def sizes(h, w):
        return [body_text_px(np.random.default_rng(seed), h, w) for seed in range(300)]

    at_256 = sizes(256, 256)
    assert min(at_256) <= 14 and max(at_256) >= 34  # 100 to 300 dpi
    assert sizes(768, 768) == at_256 == sizes(1754, 1240)  # the gpu preset's pages: more page, same print
    assert max(sizes(48, 48)) <= 7  # a small page is a fragment at a smaller scale


def _colour_print_hues(gt: np.ndarray) -> set[int]:
    """Hue sextants (0-5) of the saturated areas of a page's truth: colour that is print, not pen."""
    hsv = cv2.cvtColor(gt, cv2.COLOR_RGB2HSV)
    saturated = ((hsv[..., 1] > 80) & (hsv[..., 2] > 50)).astype(np.uint8)
    solid = cv2.erode(saturated, np.ones((3, 3), np.uint8)) > 0
    hues, counts = np.unique(hsv[..., 0][solid] // 30, return_counts=True)
    return {int(h) for h, n in zip(hues, counts, strict=True) if n >= 20}


def test_colour_print_of_many_hues_appears_in_the_truth() -> None:
    pages, hues = 0, set()
    for seed in range(40):
        _image, gt, _mask = generate_pair(seed, 256)
        found = _colour_print_hues(gt)
        pages += bool(found)
        hues |= found
    # photographs, charts and coloured shapes are print: a pen's blue or red alone does not make handwriting
    assert pages >= 6, pages
    assert len(hues) >= 5, sorted(hues)
