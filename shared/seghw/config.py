"""Training configuration in one place: presets, then a config file, then command-line flags."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from seghw.errors import ConfigError

Device = Literal["auto", "cpu", "gpu"]


class TrainConfig(BaseModel):
    # allow_inf_nan: an infinite learning rate or threshold is a typo, not a setting.
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    preset: Literal["gpu", "cpu-demo", "cpu-long"] = "gpu"
    # data: a folder in the images/ gts/ [masks/] layout, or a synthetic set of N pairs
    data: str | None = None
    synthetic: int | None = Field(default=None, ge=2)
    synthetic_size: int | None = Field(default=None, ge=16, description="page size of synthetic pairs")
    synthetic_seed: int = 1234
    val_fraction: float = Field(default=0.1, ge=0.0, lt=1.0)
    ink_crop_fraction: float = Field(
        default=0.0, ge=0.0, le=1.0, description="share of training crops centred on a handwriting pixel")

    # model
    base_channels: int = Field(default=32, ge=4)
    depth: int = Field(default=4, ge=1, le=6, description="downsampling levels; stride is 2**depth")
    patch_stem: bool = Field(
        default=False, description="a 2x2 stride-2 stem in place of the full-resolution convolutions (CPU speed)")
    fill: Literal["bounded", "paper"] = Field(
        default="bounded", description="painted page between the input and the paper estimate, or unbounded")
    context: bool = Field(default=False, description="a context branch at half the bottleneck's resolution")

    # optimisation
    image_size: int = Field(default=512, ge=16)
    epochs: int = Field(default=100, ge=1)
    batch_size: int = Field(default=8, ge=1)
    lr: float = Field(default=1e-4, gt=0.0)
    weight_decay: float = Field(default=0.0, ge=0.0)
    optimizer: Literal["adam", "adamw"] = "adam"
    warmup_steps: int = Field(default=500, ge=0)
    min_lr_ratio: float = Field(default=0.01, ge=0.0, le=1.0)
    grad_clip: float | None = Field(default=5.0, gt=0.0)
    amp: bool = True
    static_graph: bool = Field(
        default=True, description="run the model as a static graph (paddle.jit.to_static); off: eager mode")
    loss_hole: float = Field(default=4.0, ge=0.0, description="per-pixel L1 weight inside the handwriting")
    loss_valid: float = Field(default=1.0, ge=0.0, description="per-pixel L1 weight outside the handwriting")
    loss_mask_bce: float = Field(default=1.0, ge=0.0)
    loss_mask_dice: float = Field(default=1.0, ge=0.0)
    mask_dilation: int = Field(default=1, ge=0, le=8, description="px the mask head's target is grown by")
    max_bad_steps: int = Field(default=0, ge=0, description="non-finite steps to skip before 'diverged'")

    # runtime
    device: Device = "auto"
    seed: int = 42
    num_workers: int = Field(default=2, ge=0)
    threads: int | None = Field(default=None, ge=1, description="CPU threads (default 1, see seghw.device)")
    max_steps_per_epoch: int | None = Field(default=None, ge=1)

    # observers
    log_root: str | None = None
    checkpoint_minutes: float = Field(default=10.0, gt=0.0)
    keep_last: int = Field(default=3, ge=1)
    stats_seconds: float = Field(default=5.0, gt=0.0, description="stats heartbeat period")
    log_every_steps: int = Field(default=10, ge=1, description="per-iteration VisualDL points")
    images_per_grid: int = Field(default=4, ge=1, le=16)
    observers: bool = Field(default=True, description="VisualDL, stats, checkpoints, images (off: bench)")

    @property
    def stride(self) -> int:
        return model_stride(self.depth, self.context)

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        if self.image_size % self.stride:
            raise ValueError(
                f"image_size={self.image_size} is not divisible by the model stride {self.stride} "
                f"(depth={self.depth}); use a multiple of {self.stride}"
            )
        if self.data and self.synthetic:
            raise ValueError("data and synthetic are exclusive: pass --data DIR or --synthetic N")
        return self


PRESETS: dict[str, dict[str, Any]] = {
    # A 16 GB card: 512 crops, batch 8 with AMP, EraseNet-like widths.
    "gpu": dict(
        base_channels=32, depth=4, image_size=512, batch_size=8, epochs=100, lr=1e-4,
        warmup_steps=500, amp=True, num_workers=4, checkpoint_minutes=10.0, log_every_steps=10,
        synthetic_size=768,
    ),
    # Trains visibly in minutes on two CPU cores; the patch stem keeps the convolutions off the
    # full-resolution level, where a CPU computes them slowest.
    "cpu-demo": dict(
        base_channels=16, depth=3, patch_stem=True, image_size=64, batch_size=8, epochs=5, lr=2e-3,
        warmup_steps=20, amp=False, num_workers=1, checkpoint_minutes=2.0, log_every_steps=2,
        # pages at the scale of a 150-dpi scan (text ~20 px); 64-px crops are cut from them
        synthetic_size=256, stats_seconds=2.0,
    ),
}
# The cpu-demo recipe with a schedule three times as long (about 30 minutes on one core here): where
# 10 minutes do not reach the real-page goals, the longer CPU budget shows how far the recipe goes.
PRESETS["cpu-long"] = {**PRESETS["cpu-demo"], "epochs": 15, "checkpoint_minutes": 5.0}


# Settings added after runs had been saved, with the value those runs were trained with.
_BEFORE_THE_SETTING_EXISTED: dict[str, Any] = {"patch_stem": False, "fill": "paper", "context": False}


def model_stride(depth: int, context: bool = False) -> int:
    """What crop and window sizes must be multiples of (the context branch pools the bottleneck 2x)."""
    return 2 ** (depth + bool(context))


def complete_saved_config(saved: dict[str, Any]) -> dict[str, Any]:
    """A config read from a checkpoint or stats file, with the settings it predates filled in."""
    return {**_BEFORE_THE_SETTING_EXISTED, **saved}


def _format_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    field = ".".join(str(p) for p in first.get("loc", ()) if p != "__root__")
    msg = first.get("msg", "invalid").removeprefix("Value error, ")
    if field:
        value = first.get("input")
        return f"invalid config value {field}={value!r}: {msg}"
    return f"invalid config: {msg}"


def load_config_file(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    try:
        if path.suffix == ".toml":
            try:
                import tomllib
            except ModuleNotFoundError:  # Python 3.10
                raise ConfigError(f"{path}: TOML needs Python 3.11; use a .json config") from None
            data = tomllib.loads(text)
        else:
            data = json.loads(text)
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(f"{path} is not valid {path.suffix.lstrip('.') or 'json'}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a table of settings")
    return {k.replace("-", "_"): v for k, v in data.items()}


def build_config(
    preset: str | None = None, config_file: str | Path | None = None, **overrides: Any
) -> TrainConfig:
    """Preset defaults < config file < explicit overrides (``None`` values are ignored)."""
    values: dict[str, Any] = {}
    file_values = load_config_file(config_file) if config_file else {}
    chosen = preset or file_values.get("preset") or "gpu"
    if chosen not in PRESETS:
        raise ConfigError(f"unknown preset {chosen!r}; choose one of {', '.join(PRESETS)}")
    values.update(PRESETS[chosen])
    values["preset"] = chosen
    values.update(file_values)
    values.update({k: v for k, v in overrides.items() if v is not None})
    if "device" in values and isinstance(values["device"], str):
        values["device"] = values["device"].lower()
    try:
        return TrainConfig(**values)
    except ValidationError as exc:
        raise ConfigError(_format_error(exc)) from None
