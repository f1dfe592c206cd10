"""Paired datasets: layout errors name the files, bad images are skipped, batches are reproducible."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from seghw.data.batches import EvalBatches, TrainBatches
from seghw.data.dataset import PairSet, derive_mask, load_split, scan_pairs
from seghw.data.synth import write_dataset
from seghw.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("syn") / "ds", count=10, size=48, seed=11, progress=False)


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _save(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def _one_line(exc: pytest.ExceptionInfo) -> str:
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


def _append_marked(ps: PairSet, name: str, gt: np.ndarray, y: int, x: int, side: int) -> None:
    """Append ``gt`` with a blue ``side``-px square of handwriting at (y, x): image = gt outside the mask."""
    mask = np.zeros(gt.shape[:2], np.uint8)
    mask[y : y + side, x : x + side] = 255
    image = gt.copy()
    image[mask > 0] = (20, 30, 200)
    ps.append(name, image, gt, mask)


def _pairset(n: int, size: int = 40, seed: int = 0) -> PairSet:
    """Pairs whose handwriting is a known square: image = gt except inside the mask."""
    rng = np.random.default_rng(seed)
    ps = PairSet()
    for i in range(n):
        gt = rng.integers(60, 200, (size, size + 8, 3), dtype=np.uint8)
        y, x = rng.integers(2, size - 14, 2)
        _append_marked(ps, f"p{i}", gt, int(y), int(x), 12)
    return ps


def _threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("seghw-batches")]


# --- layout ---------------------------------------------------------------------------------


def test_scan_pairs_names_unpaired_files(tmp_path: Path) -> None:
    px = np.full((8, 8, 3), 200, np.uint8)
    for rel in ("images/a.jpg", "images/b.png", "gts/a.png", "gts/c.jpeg"):
        _save(tmp_path / rel, px)
    with pytest.raises(DataError) as exc:
        scan_pairs(tmp_path)
    msg = _one_line(exc)
    assert "images/b.png" in msg and "gts/c.jpeg" in msg
    assert "images/a.jpg" not in msg


def test_scan_pairs_lists_a_few_and_counts_the_rest(tmp_path: Path) -> None:
    px = np.zeros((8, 8, 3), np.uint8)
    (tmp_path / "gts").mkdir()
    for i in range(9):
        _save(tmp_path / f"images/x{i}.png", px)
    with pytest.raises(DataError, match=r"9 image\(s\) without a gt.*and 4 more") as exc:
        scan_pairs(tmp_path)
    _one_line(exc)


def test_empty_or_missing_folders_are_data_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        scan_pairs(tmp_path / "nope")
    with pytest.raises(DataError, match="no images/ folder") as exc:
        scan_pairs(tmp_path)
    assert "images/NAME.jpg" in _one_line(exc)
    (tmp_path / "images").mkdir()
    (tmp_path / "gts").mkdir()
    (tmp_path / "images" / "notes.txt").write_text("not an image")
    with pytest.raises(DataError, match="no .jpg/.jpeg/.png files"):
        load_split(tmp_path)


def test_pairs_found_with_optional_masks(synthetic: Path) -> None:
    pairs = scan_pairs(synthetic)
    assert [p.name for p in pairs] == [f"syn_{i:06d}" for i in range(10)]
    assert all(p.mask is not None and p.gt.suffix == ".png" for p in pairs)


# --- loading --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "victim",
    ["images/syn_000003.jpg", "gts/syn_000003.png", "masks/syn_000003.png"],
)
def test_corrupt_file_is_skipped_and_counted(synthetic: Path, tmp_path: Path, victim: str) -> None:
    root = _copy(synthetic, tmp_path / "ds")
    (root / victim).write_bytes(b"\x00garbage, not an image" * 20)
    with pytest.warns(UserWarning, match="syn_000003"):
        split = load_split(root, val_fraction=0.0, seed=0, min_size=32)
    assert split.skipped == [victim]
    assert len(split.train) == 9 and "syn_000003" not in split.train.names
    assert len(split.val) == 0


def test_truncated_jpeg_is_skipped(synthetic: Path, tmp_path: Path) -> None:
    root = _copy(synthetic, tmp_path / "ds")
    jpg = root / "images/syn_000005.jpg"
    jpg.write_bytes(jpg.read_bytes()[: len(jpg.read_bytes()) // 2])
    with pytest.warns(UserWarning, match="syn_000005"):
        split = load_split(root, val_fraction=0.0, seed=0, min_size=32)
    assert split.skipped == ["images/syn_000005.jpg"] and len(split.train) == 9


def test_everything_unreadable_is_one_data_error(tmp_path: Path) -> None:
    for name in ("a", "b"):
        for sub in ("images", "gts"):
            (tmp_path / sub).mkdir(exist_ok=True)
            (tmp_path / sub / f"{name}.png").write_bytes(b"nope")
    with pytest.warns(UserWarning), pytest.raises(DataError, match="no usable training pairs") as exc:
        load_split(tmp_path, val_fraction=0.0)
    _one_line(exc)


def test_size_mismatch_names_the_file(synthetic: Path, tmp_path: Path) -> None:
    root = _copy(synthetic, tmp_path / "ds")
    gt = root / "gts/syn_000004.png"
    Image.open(gt).resize((48, 40)).save(gt)
    with pytest.raises(DataError, match="size mismatch") as exc:
        load_split(root, val_fraction=0.0)
    msg = _one_line(exc)
    assert "images/syn_000004.jpg" in msg and "48x40" in msg


def test_images_smaller_than_the_crop_are_named(synthetic: Path) -> None:
    with pytest.raises(DataError, match="smaller than the 64 px crop") as exc:
        load_split(synthetic, val_fraction=0.0, min_size=64)
    assert "syn_000000.jpg (48x48)" in _one_line(exc)


def test_masks_are_derived_when_absent(synthetic: Path, tmp_path: Path) -> None:
    root = _copy(synthetic, tmp_path / "ds")
    shutil.rmtree(root / "masks")
    derived = load_split(root, val_fraction=0.0).train
    given = load_split(synthetic, val_fraction=0.0).train
    assert derived.names == given.names
    for img, gt, m, true in zip(derived.images, derived.gts, derived.masks, given.masks, strict=True):
        assert set(np.unique(m).tolist()) <= {0, 255}
        np.testing.assert_array_equal(m, derive_mask(img, gt))
        recall = ((m > 0) & (true > 0)).sum() / max(1, (true > 0).sum())
        assert recall > 0.6
    # exact case: only a 4x4 square differs -> the mask is that square grown by one pixel
    gt = np.full((12, 12, 3), 180, np.uint8)
    img = gt.copy()
    img[4:8, 4:8] = (30, 40, 150)
    expected = np.zeros((12, 12), np.uint8)
    expected[3:9, 3:9] = 255
    np.testing.assert_array_equal(derive_mask(img, gt), expected)


def test_val_from_fraction_is_seeded_and_disjoint(synthetic: Path) -> None:
    a = load_split(synthetic, val_fraction=0.2, seed=1)
    b = load_split(synthetic, val_fraction=0.2, seed=1)
    c = load_split(synthetic, val_fraction=0.2, seed=2)
    assert a.val.names == b.val.names and len(a.val) == 2 and len(a.train) == 8
    assert set(a.val.names).isdisjoint(a.train.names)
    assert set(a.val.names) | set(a.train.names) == {f"syn_{i:06d}" for i in range(10)}
    assert a.val.names != c.val.names
    assert len(load_split(synthetic, val_fraction=0.0).val) == 0
    assert len(load_split(synthetic, val_fraction=0.01).val) == 1, "at least one when asked for any"


def test_val_from_val_folder(synthetic: Path, tmp_path: Path) -> None:
    root = _copy(synthetic, tmp_path / "ds")
    write_dataset(root / "val", count=3, size=48, seed=99, progress=False)
    split = load_split(root, val_fraction=0.5, seed=0)
    assert len(split.train) == 10 and len(split.val) == 3
    assert str(root / "val") in split.source
    assert not np.array_equal(split.val.images[0], split.train.images[0])


# --- batches --------------------------------------------------------------------------------


def _same(a: list[dict], b: list[dict]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        for k in ("image", "gt", "mask"):
            np.testing.assert_array_equal(x[k], y[k])


def test_train_batches_shapes_dtypes_ranges() -> None:
    ps = _pairset(11)
    tb = TrainBatches(ps, batch_size=4, crop=32, seed=0, epoch=0, num_workers=0)
    batches = list(tb)
    assert len(tb) == 2 == len(batches), "drop_last: 11 // 4"
    for b in batches:
        assert b["image"].shape == b["gt"].shape == (4, 3, 32, 32)
        assert b["mask"].shape == (4, 1, 32, 32)
        for k in ("image", "gt", "mask"):
            assert b[k].dtype == np.float32 and 0.0 <= b[k].min() and b[k].max() <= 1.0
        assert set(np.unique(b["mask"]).tolist()) <= {0.0, 1.0}
    assert tb.wait_seconds > 0


def test_train_batches_are_reproducible_and_resume_exactly() -> None:
    ps = _pairset(20)
    kw = dict(batch_size=3, crop=24, seed=5, epoch=2)
    full = list(TrainBatches(ps, **kw, num_workers=2))
    assert len(full) == 6
    _same(full, list(TrainBatches(ps, **kw, num_workers=0)))
    _same(full[4:], list(TrainBatches(ps, **kw, skip_batches=4, num_workers=2)))
    _same(full[1:], list(TrainBatches(ps, **kw, skip_batches=1, num_workers=1)))
    other = list(TrainBatches(ps, batch_size=3, crop=24, seed=5, epoch=3, num_workers=0))
    assert not np.array_equal(full[0]["image"], other[0]["image"]), "each epoch reshuffles"


def test_augmentation_moves_image_gt_and_mask_together() -> None:
    ps = _pairset(6, size=48)
    for epoch in range(4):
        tb = TrainBatches(ps, batch_size=6, crop=32, seed=3, epoch=epoch, num_workers=0)
        for i in range(len(ps)):
            image, gt, mask = tb.sample(i)
            differs = np.abs(image.astype(int) - gt.astype(int)).max(axis=2) > 0
            near = cv2.dilate(mask, np.ones((3, 3), np.uint8)) > 0
            assert not (differs & ~near).any(), "image and gt differ outside the (augmented) mask"
            if mask.any():
                assert differs[mask > 0].mean() > 0.9


def test_augmentation_flips_and_rotates_some_crops() -> None:
    # channel 0: left-to-right ramp (reveals flips); channel 1: horizontal stripes (reveal rotation)
    yy, xx = np.mgrid[0:64, 0:64]
    gt = np.stack([xx * 3, (yy // 4 % 2) * 200, np.full_like(xx, 90)], axis=2).astype(np.uint8)
    ps = PairSet()
    for i in range(16):
        ps.append(f"s{i}", gt, gt, np.zeros((64, 64), np.uint8))
    tb = TrainBatches(ps, batch_size=4, crop=32, seed=0, epoch=0, num_workers=0)
    flipped = rotated = 0
    for i in range(len(ps)):
        image, _, _ = tb.sample(i)
        flipped += int(np.diff(image[:, :, 0].astype(int), axis=1).mean() < 0)
        rotated += int(image[:, :, 1].astype(int).std(axis=1).max() > 0)
    assert 0 < flipped < 16 and 0 < rotated < 16
    plain = TrainBatches(ps, batch_size=4, crop=32, seed=0, epoch=0, num_workers=0, augment=False)
    assert all(plain.sample(i)[0][:, :, 1].std(axis=1).max() == 0 for i in range(len(ps)))


def _big_pages(n: int, size: int = 200) -> PairSet:
    """Pages much larger than the crop whose only handwriting is one 3x3 dot."""
    rng = np.random.default_rng(7)
    ps = PairSet()
    for i in range(n):
        y, x = rng.integers(0, size - 3, 2)
        _append_marked(ps, f"b{i}", np.full((size, size, 3), 230, np.uint8), int(y), int(x), 3)
    return ps


def test_ink_crops_hold_the_handwriting_that_random_crops_mostly_miss() -> None:
    ps = _big_pages(24)
    kw = dict(batch_size=4, crop=32, seed=1, epoch=0, num_workers=0, augment=False)
    random_hits = sum(TrainBatches(ps, **kw).sample(i)[2].any() for i in range(len(ps)))
    ink = TrainBatches(ps, **kw, ink_crop_fraction=1.0)
    for i in range(len(ps)):
        _, _, mask = ink.sample(i)
        ys, xs = np.nonzero(mask)
        assert ys.size, f"crop {i} misses the page's handwriting"
        # centred on it, unless the page edge pushed the window back inside
        y, x = np.nonzero(ps.masks[i])
        if 16 <= y.min() and y.max() < 200 - 16 and 16 <= x.min() and x.max() < 200 - 16:
            assert abs(ys.mean() - 15.5) <= 2 and abs(xs.mean() - 15.5) <= 2
    assert random_hits <= len(ps) // 2  # a 32-px window finds a dot on a 200-px page ~2 % of the time
    half = TrainBatches(ps, **kw, ink_crop_fraction=0.5)
    hits = sum(half.sample(i)[2].any() for i in range(len(ps)))
    assert random_hits < hits < len(ps)


def test_ink_crops_keep_augmentation_reproducible_and_fall_back_on_blank_pages() -> None:
    ps = _big_pages(6)
    kw = dict(batch_size=3, crop=32, seed=4, epoch=2, ink_crop_fraction=0.7)
    _same(list(TrainBatches(ps, **kw, num_workers=2)), list(TrainBatches(ps, **kw, num_workers=0)))
    blank = PairSet()
    for i in range(3):
        blank.append(f"w{i}", ps.gts[i], ps.gts[i], np.zeros_like(ps.masks[i]))
    batch = TrainBatches(blank, batch_size=3, crop=32, seed=0, epoch=0, num_workers=0, ink_crop_fraction=1.0).batch(0)
    assert batch["mask"].sum() == 0 and batch["image"].shape == (3, 3, 32, 32)
    with pytest.raises(ConfigError, match="ink_crop_fraction"):
        TrainBatches(ps, batch_size=3, crop=32, seed=0, epoch=0, ink_crop_fraction=1.5)


def test_stopping_early_leaves_no_threads() -> None:
    ps = _pairset(40)
    tb = TrainBatches(ps, batch_size=2, crop=32, seed=0, epoch=0, num_workers=2)
    for _ in tb:
        assert _threads()
        break
    assert not _threads()
    with TrainBatches(ps, batch_size=2, crop=32, seed=0, epoch=0, num_workers=2) as tb2:
        it = iter(tb2)
        next(it)
    assert not _threads()


def test_batch_size_larger_than_the_set_names_both_numbers() -> None:
    with pytest.raises(DataError, match=r"has 3 pair\(s\), fewer than the batch size 8.*--batch-size") as exc:
        TrainBatches(_pairset(3), batch_size=8, crop=16, seed=0, epoch=0)
    _one_line(exc)


def test_eval_batches_centre_crop_keeps_last_partial_batch() -> None:
    ps = _pairset(5, size=40)
    eb = EvalBatches(ps, batch_size=2, crop=32)
    batches = list(eb)
    assert len(eb) == 3 == len(batches)
    assert [len(b["names"]) for b in batches] == [2, 2, 1]
    assert sum((b["names"] for b in batches), []) == ps.names
    # 40x48 -> centre 32x32 starts at (4, 8)
    expected = ps.images[4][4:36, 8:40].transpose(2, 0, 1) / 255.0
    np.testing.assert_allclose(batches[2]["image"][0], expected, atol=1e-6)
    _same(batches, list(EvalBatches(ps, batch_size=2, crop=32)))


def test_the_trainer_passes_ink_crop_fraction_to_its_batches(tmp_path: Path) -> None:
    """A 4-px ink dot in the corner of 128-px pages: only crops centred on ink all contain it."""
    from seghw.config import build_config
    from seghw.train.runner import prepare

    data = tmp_path / "data"
    for sub in ("images", "gts"):
        (data / sub).mkdir(parents=True)
    paper = np.full((128, 128, 3), 235, np.uint8)
    inked = paper.copy()
    inked[118:122, 118:122] = 30
    for i in range(10):
        cv2.imwrite(str(data / "images" / f"p{i}.png"), inked)
        cv2.imwrite(str(data / "gts" / f"p{i}.png"), paper)
    crops_with_ink = {}
    for fraction in (1.0, 0.0):
        cfg = build_config("cpu-demo", data=str(data), image_size=32, val_fraction=0.0,
                           ink_crop_fraction=fraction, log_root=str(tmp_path / "runs"))
        _state, train_batches, _val = prepare(cfg, tmp_path / f"run{fraction}")
        batches = train_batches(0, 0)
        mask = next(batches)["mask"]
        batches.close()
        crops_with_ink[fraction] = int((mask.reshape(len(mask), -1).max(axis=1) > 0).sum())
    # Random 32-px windows hold the dot about 1 time in 10 (all 8: ~1e-8).
    assert crops_with_ink[1.0] == 8 and crops_with_ink[0.0] < 8
