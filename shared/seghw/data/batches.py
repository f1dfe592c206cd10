"""The batches the trainer and the evaluator consume, cut from the pairs ``seghw.data.dataset``
loads: augmented training crops (a pure function of seed, epoch and sample, so that a resumed
run sees exactly the batches it had not seen) and deterministic validation crops."""

from __future__ import annotations

import math
import threading
import time
import weakref
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import cv2
import numpy as np

from seghw.data.dataset import PairSet, name_list, size_text
from seghw.errors import ConfigError, DataError


def steps_per_epoch(n: int, batch_size: int) -> int:
    if batch_size < 1:
        raise ConfigError(f"batch size must be >= 1 (got {batch_size})")
    if n < batch_size:
        raise DataError(
            f"the training set has {n} pair(s), fewer than the batch size {batch_size}: "
            f"lower --batch-size to {max(1, n)} or add data"
        )
    return n // batch_size


def _check_crop(pairs: PairSet, crop: int) -> None:
    if crop < 1:
        raise ConfigError(f"crop must be >= 1 px (got {crop})")
    sizes = zip(pairs.names, pairs.masks, strict=True)
    small = [f"{n} ({size_text(m)})" for n, m in sizes if min(m.shape) < crop]
    if small:
        raise DataError(f"{len(small)} image(s) smaller than the {crop} px crop: {name_list(small)}")


def _empty_batch(n: int, crop: int) -> dict[str, np.ndarray]:
    return {
        "image": np.empty((n, 3, crop, crop), np.float32),
        "gt": np.empty((n, 3, crop, crop), np.float32),
        "mask": np.empty((n, 1, crop, crop), np.float32),
    }


def _put(batch: dict[str, np.ndarray], j: int, image: np.ndarray, gt: np.ndarray, mask: np.ndarray) -> None:
    scale = np.float32(1.0 / 255.0)
    np.multiply(image.transpose(2, 0, 1), scale, out=batch["image"][j], dtype=np.float32)
    np.multiply(gt.transpose(2, 0, 1), scale, out=batch["gt"][j], dtype=np.float32)
    batch["mask"][j, 0] = mask > 127


def _ink_pixel(mask: np.ndarray, u_pick: float) -> tuple[int, int] | None:
    """The handwriting pixel ``u_pick`` (in [0, 1)) picks, as (y, x); None if the mask is empty."""
    ink = np.flatnonzero(mask > 127)
    if not ink.size:
        return None
    y, x = divmod(int(ink[min(ink.size - 1, int(u_pick * ink.size))]), mask.shape[1])
    return y, x


def _window_start(u: float, centre: int | None, extent: int, window: int) -> int:
    """First row (or column) of a ``window`` in ``extent``: random by ``u``, or around ``centre``."""
    if centre is None:
        return int(u * (extent - window + 1))
    return min(max(0, centre - window // 2), extent - window)


class TrainBatches:
    """One epoch of augmented training batches, a pure function of ``(seed, epoch, sample index)``.

    Each batch is ``{"image", "gt": N x 3 x crop x crop, "mask": N x 1 x crop x crop}`` float32 in
    [0, 1]. ``len()`` is the full epoch's steps (incomplete last batch dropped); iteration starts at
    batch ``skip_batches``, so a run resumed mid-epoch sees exactly the batches it had not seen.
    Each sample is a random ``crop`` window; with ``augment`` it is also flipped left-right (p=0.5)
    and rotated within +-``rotate_degrees`` (p=0.5, bilinear, replicated border; the mask is
    re-thresholded). A share ``ink_crop_fraction`` of the windows is centred on a handwriting pixel
    picked at random (pages without one get a random window), for data whose pages are mostly blank.
    One object is one epoch: iterating it again replays the same batches.
    Batches are built ``num_workers`` threads ahead (0 = on the consumer's thread); ``wait_seconds``
    accumulates the time the consumer spent waiting for them. Stopping early (``break``, ``close()``,
    or leaving a ``with`` block) shuts the threads down.
    """

    def __init__(
        self,
        pairs: PairSet,
        batch_size: int,
        crop: int,
        seed: int,
        epoch: int,
        skip_batches: int = 0,
        num_workers: int = 2,
        augment: bool = True,
        rotate_degrees: float = 10.0,
        prefetch: int | None = None,
        ink_crop_fraction: float = 0.0,
    ) -> None:
        if seed < 0 or epoch < 0:
            raise ConfigError(f"seed and epoch must be >= 0 (got seed {seed}, epoch {epoch})")
        self.pairs = pairs
        self.batch_size = batch_size
        self.crop = crop
        self.seed = seed
        self.epoch = epoch
        self.steps = steps_per_epoch(len(pairs), batch_size)
        if not 0 <= skip_batches <= self.steps:
            raise ConfigError(f"skip_batches {skip_batches} is outside 0..{self.steps} (steps per epoch)")
        _check_crop(pairs, crop)
        self.skip_batches = skip_batches
        self.num_workers = max(0, num_workers)
        self.augment = augment
        self.rotate_degrees = float(rotate_degrees)
        if not 0.0 <= ink_crop_fraction <= 1.0:
            raise ConfigError(f"ink_crop_fraction must be within 0..1 (got {ink_crop_fraction})")
        self.ink_crop_fraction = float(ink_crop_fraction)
        self.prefetch = prefetch if prefetch is not None else 2 * max(1, self.num_workers)
        self.wait_seconds = 0.0
        order_ss = np.random.SeedSequence(seed, spawn_key=(epoch,))
        self.order = np.random.default_rng(order_ss).permutation(len(pairs))
        self._lock = threading.Lock()
        # Weak: a consumer that breaks out of its loop drops the iterator, which then closes itself.
        self._open: weakref.WeakSet = weakref.WeakSet()

    def __len__(self) -> int:
        return self.steps

    def sample(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Augmented crop of pair ``index`` for this epoch: (image HxWx3, gt HxWx3, mask HxW) uint8."""
        rng = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(self.epoch, int(index), 1)))
        # Draw every number in a fixed order whatever the branches, so each knob is independent.
        u_rot, u_angle, u_flip, u_y, u_x, u_ink, u_pick = rng.random(7)
        image, gt, mask = self.pairs.images[index], self.pairs.gts[index], self.pairs.masks[index]
        h, w = mask.shape
        c = self.crop
        ink = _ink_pixel(mask, u_pick) if u_ink < self.ink_crop_fraction else None
        cy, cx = ink if ink else (None, None)
        angle = 0.0
        if self.augment and self.rotate_degrees > 0 and u_rot < 0.5:
            angle = (2.0 * u_angle - 1.0) * self.rotate_degrees
        flip = self.augment and u_flip < 0.5
        if angle:
            # Rotate a window large enough to hold the rotated crop, then keep its centre:
            # corners come from real pixels rather than replicated borders whenever the page allows.
            rad = math.radians(abs(angle))
            need = int(math.ceil(c * (math.cos(rad) + math.sin(rad)))) + 2
            ph, pw = min(need, h), min(need, w)
            y0, x0 = _window_start(u_y, cy, h, ph), _window_start(u_x, cx, w, pw)
            m = cv2.getRotationMatrix2D(((pw - 1) / 2.0, (ph - 1) / 2.0), angle, 1.0)
            m[0, 2] -= (pw - c) / 2.0
            m[1, 2] -= (ph - c) / 2.0

            def warp(a: np.ndarray) -> np.ndarray:
                window = a[y0 : y0 + ph, x0 : x0 + pw]
                return cv2.warpAffine(
                    window, m, (c, c), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
                )

            image, gt, mask = warp(image), warp(gt), np.where(warp(mask) > 127, 255, 0).astype(np.uint8)
        else:
            y0, x0 = _window_start(u_y, cy, h, c), _window_start(u_x, cx, w, c)
            win = (slice(y0, y0 + c), slice(x0, x0 + c))
            image, gt, mask = image[win], gt[win], mask[win]
        if flip:
            image, gt, mask = image[:, ::-1], gt[:, ::-1], mask[:, ::-1]
        return image, gt, mask

    def batch(self, b: int) -> dict[str, np.ndarray]:
        """Batch ``b`` of this epoch (0-based)."""
        if not 0 <= b < self.steps:
            raise IndexError(f"batch {b} outside 0..{self.steps - 1}")
        idx = self.order[b * self.batch_size : (b + 1) * self.batch_size]
        out = _empty_batch(len(idx), self.crop)
        for j, i in enumerate(idx):
            _put(out, j, *self.sample(int(i)))
        return out

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        it = self._iterate()
        with self._lock:
            self._open.add(it)
        return it

    def _iterate(self) -> Iterator[dict[str, np.ndarray]]:
        todo = range(self.skip_batches, self.steps)
        if self.num_workers == 0:
            for b in todo:
                t0 = time.perf_counter()
                batch = self.batch(b)
                self.wait_seconds += time.perf_counter() - t0
                yield batch
            return
        pool = ThreadPoolExecutor(max_workers=self.num_workers, thread_name_prefix="seghw-batches")
        pending: deque[Future] = deque()
        upcoming = iter(todo)
        try:
            for b in upcoming:
                pending.append(pool.submit(self.batch, b))
                if len(pending) >= self.prefetch:
                    break
            while pending:
                t0 = time.perf_counter()
                batch = pending.popleft().result()
                self.wait_seconds += time.perf_counter() - t0
                nxt = next(upcoming, None)
                if nxt is not None:
                    pending.append(pool.submit(self.batch, nxt))
                yield batch
        finally:
            for f in pending:
                f.cancel()
            pool.shutdown(wait=True, cancel_futures=True)

    def close(self) -> None:
        """Stop every iteration still open and join its threads."""
        with self._lock:
            its, self._open = list(self._open), weakref.WeakSet()
        for it in its:
            it.close()

    def __enter__(self) -> TrainBatches:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EvalBatches:
    """Validation batches: deterministic centre crops, no augmentation, last partial batch kept.

    Yields ``{"image", "gt", "mask"}`` as in :class:`TrainBatches` plus ``"names"`` (list of str).
    """

    def __init__(self, pairs: PairSet, batch_size: int, crop: int) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch size must be >= 1 (got {batch_size})")
        _check_crop(pairs, crop)
        self.pairs = pairs
        self.batch_size = batch_size
        self.crop = crop

    def __len__(self) -> int:
        return math.ceil(len(self.pairs) / self.batch_size)

    def __iter__(self) -> Iterator[dict]:
        c = self.crop
        for start in range(0, len(self.pairs), self.batch_size):
            idx = range(start, min(start + self.batch_size, len(self.pairs)))
            out: dict = _empty_batch(len(idx), c)
            for j, i in enumerate(idx):
                h, w = self.pairs.masks[i].shape
                y0, x0 = (h - c) // 2, (w - c) // 2
                win = (slice(y0, y0 + c), slice(x0, x0 + c))
                _put(out, j, self.pairs.images[i][win], self.pairs.gts[i][win], self.pairs.masks[i][win])
            out["names"] = [self.pairs.names[i] for i in idx]
            yield out
