"""Fast inference for ``seghw infer`` and ``seghw eval``: the trained model through Paddle Inference.

The eager model that training uses runs Paddle's generic CPU kernels. Exported with
``paddle.jit.save`` and run by Paddle Inference, the same weights use oneDNN's kernels on
CPU, which measured about 4x faster on a full page (docs/BENCHMARKS.md, section 4). Both
engines compute the same function; ``engine="eager"`` keeps the training model for comparison.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from seghw.errors import UserError

ENGINES = ("fast", "eager")
Predict = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def check_engine(engine: str) -> None:
    if engine not in ENGINES:
        raise UserError(f"invalid --engine {engine!r}: choose one of {', '.join(ENGINES)}")


def inference_threads(threads: int | None = None) -> int:
    """Inference uses every core by default (unlike training, oneDNN scales to both cores here)."""
    return threads or int(os.environ.get("SEGHW_THREADS", 0)) or os.cpu_count() or 1


def export_model(model, out_dir: Path) -> Path:
    """Save ``model`` for Paddle Inference with a dynamic batch and page size; returns the file prefix."""
    import paddle

    prefix = Path(out_dir) / "model"
    spec = [paddle.static.InputSpec([None, 3, None, None], "float32", "image")]
    was_training = model.training
    model.eval()
    try:
        paddle.jit.save(model, str(prefix), input_spec=spec)
    finally:
        model.train(was_training)
    return prefix


def _model_file(prefix: Path) -> Path:
    # Paddle 3 writes the PIR program as .json; older exports are .pdmodel.
    for suffix in (".json", ".pdmodel"):
        if prefix.with_suffix(suffix).is_file():
            return prefix.with_suffix(suffix)
    raise UserError(f"no exported program next to {prefix}")


class InferencePredictor:
    """``predict(batch NCHW float32) -> (clean NCHW, mask N x 1 x H x W)`` through Paddle Inference."""

    def __init__(self, prefix: Path, device: str = "cpu", threads: int | None = None) -> None:
        from paddle import inference

        config = inference.Config(str(_model_file(prefix)), str(prefix.with_suffix(".pdiparams")))
        if device.startswith("gpu"):
            config.enable_use_gpu(256, int(device.partition(":")[2] or 0))
        else:
            config.disable_gpu()
            config.enable_onednn()
            config.set_cpu_math_library_num_threads(inference_threads(threads))
        config.disable_glog_info()
        self._predictor = inference.create_predictor(config)
        self._input = self._predictor.get_input_handle(self._predictor.get_input_names()[0])
        # Outputs in the order the model returns them: (composited page, raw prediction, mask logits).
        self._outputs = [self._predictor.get_output_handle(n) for n in self._predictor.get_output_names()]

    def __call__(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self._input.copy_from_cpu(np.ascontiguousarray(batch, dtype=np.float32))
        self._predictor.run()
        clean = self._outputs[0].copy_to_cpu()
        mask_logits = self._outputs[2].copy_to_cpu()
        return clean, 0.5 * (1.0 + np.tanh(0.5 * mask_logits))  # the sigmoid, without exp overflow


def eager_predictor(model) -> Predict:
    import paddle

    model.eval()

    @paddle.no_grad()
    def predict(batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out, _pred, mask_logits = model(paddle.to_tensor(batch))
        return out.numpy(), paddle.nn.functional.sigmoid(mask_logits).numpy()

    return predict


def make_predictor(model, device: str, engine: str = "fast", threads: int | None = None) -> Predict:
    """A predict function for ``tiling.tile_predict`` from a model with its weights loaded."""
    check_engine(engine)
    if engine == "eager":
        return eager_predictor(model)
    # The export is a few hundred KB and takes about a second: redone per process rather than
    # cached, so it can never go stale against the checkpoint it came from.
    with tempfile.TemporaryDirectory(prefix="seghw-export-") as tmp:
        return InferencePredictor(export_model(model, Path(tmp)), device=device, threads=threads)


def load_checkpoint_predictor(
    checkpoint_path: Path, engine: str = "fast", threads: int | None = None
) -> tuple[Predict, dict[str, Any]]:
    """(predict, training config) for a .pdckpt file or a run folder (its latest checkpoint)."""
    check_engine(engine)  # before the checkpoint is read
    from seghw.device import import_paddle

    import_paddle(inference_threads(threads))

    from seghw import checkpoint
    from seghw.config import complete_saved_config
    from seghw.device import select_device
    from seghw.model import build_model, model_settings

    payload = checkpoint.load(checkpoint_path)
    cfg = complete_saved_config(payload["config"])
    device = select_device("auto")
    model = build_model(**model_settings(cfg))
    model.set_state_dict(payload["model"])
    return make_predictor(model, device, engine=engine, threads=threads), cfg
