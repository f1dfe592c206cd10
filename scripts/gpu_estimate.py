"""Estimate memory and speed of the ``gpu`` training preset on 16 GB cards, without a GPU.

Prints a markdown section (pasted into docs/gpu.md). Everything is arithmetic, labelled as an
estimate: FLOPs come from ``seghw.flops``; parameters and activation sizes are measured on the real
model on CPU at a small size (forward hooks on every sublayer, and Paddle's host allocator for a
cross-check), then scaled by pixel count to the crop size and by the batch; speed divides the
FLOPs by an assumed fraction of each reference card's nominal datasheet peak and adds the memory
traffic of the element-wise layers. Runs in a few seconds on one CPU thread.

Three steps, each usable on its own: ``probe(args)`` measures the real model with Paddle (the only
step that needs it), ``estimate(args, probe)`` is the arithmetic (plain numbers in, an ``Estimate``
out) and ``render(estimate)`` writes the markdown. One file of about 530 lines: docs/gpu.md runs it
by path, and those steps are separate functions, tested one by one (tests/test_gpu_estimate.py).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

MiB = 2**20
GiB = 2**30

# Nominal datasheet peaks (dense, no sparsity), all 16 GB cards:
# fp16 tensor-core TFLOP/s (fp32 accumulate where the datasheet distinguishes), fp32 TFLOP/s, memory GB/s.
REFERENCE_CARDS: tuple[tuple[str, float, float, float], ...] = (
    ("T4 16 GB", 65.0, 8.1, 320.0),
    ("RTX A4000 16 GB", 76.7, 19.2, 448.0),  # datasheet "153.4 tensor TFLOPS" is with sparsity
    ("RTX 4080 16 GB", 97.5, 48.7, 716.8),  # Ada whitepaper, fp16 tensor with fp32 accumulate
    ("V100 PCIe 16 GB", 112.0, 14.0, 900.0),  # the SXM2 module: 125 / 15.7
)

# Memory passes of the element-wise layers (each pass reads or writes the tensor once), per training step:
BN_RELU_PASSES = 13  # per conv output: BN fwd 3 (stats read, read, write), ReLU fwd 2, ReLU bwd 3, BN bwd 5
CONCAT_PASSES = 8  # per decoder concat output: upsample (repeat + pixel shuffle) and concat, fwd and bwd
TAIL_PASSES = 3  # composite, sigmoid and the loss terms, fwd and bwd
OPTIMIZER_BYTES_PER_PARAM = 50  # Adam 28 (read p g m v, write p m v), unscale + norm + clip ~16, fp16 cast 6
STATIC_BYTES_PER_PARAM = 4 + 4 + 8  # fp32 weights, fp32 gradients, Adam first and second moments
AMP_WEIGHT_COPY_BYTES = 2  # auto_cast keeps an fp16 copy of every conv weight for the backward pass


@dataclass
class Census:
    """Forward activations of one image at the probe size, in elements, by kind."""

    size: int
    input: int = 0  # the image (conv input of the stem)
    concat: int = 0  # decoder concats: conv inputs that no layer outputs
    conv: int = 0  # Conv2D outputs (BatchNorm inputs; the 1x1 heads' outputs)
    bn: int = 0  # BatchNorm outputs (ReLU inputs)
    relu: int = 0  # ReLU outputs (next conv inputs)
    model_out: int = 0  # composited page and prediction
    largest: int = 0  # elements of the largest single tensor
    largest_kind: str = ""
    largest_channels: int = 0
    largest_side: int = 0  # its height at the probe size

    def kept(self) -> int:
        """Elements autograd keeps for backward (conv inputs, BN inputs, ReLU outputs), input excluded."""
        return self.concat + self.conv + self.relu


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from seghw.config import PRESETS

    gpu = PRESETS["gpu"]
    p = argparse.ArgumentParser(
        description="Estimate (not a measurement) of memory and speed of the gpu training preset: prints markdown.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--base-channels", type=int, default=gpu["base_channels"], help="encoder width at full resolution")
    p.add_argument("--depth", type=int, default=gpu["depth"], help="downsampling levels (stride 2**depth)")
    p.add_argument("--image-size", type=int, default=gpu["image_size"], help="square crop side in pixels")
    p.add_argument("--batch-size", type=int, default=gpu["batch_size"], help="images per card per step")
    p.add_argument("--amp", action=argparse.BooleanOptionalAction, default=gpu["amp"],
                   help="float16 autocast; --no-amp: float32 speeds (both memory columns are always printed)")
    p.add_argument("--gpu-memory-gb", type=float, default=16.0, help="device memory per card, GiB")
    p.add_argument("--gpu-tflops", type=float, default=None,
                   help="peak TFLOP/s of one custom card instead of the reference table "
                        "(fp16 tensor, or fp32 with --no-amp)")
    p.add_argument("--gpu-bandwidth", type=float, default=448.0, help="memory GB/s of the --gpu-tflops card")
    p.add_argument("--efficiency", type=float, default=0.30,
                   help="assumed achieved fraction of the fp16 tensor peak (fp32 peak with --no-amp) "
                        "in the 3x3 convolutions")
    p.add_argument("--efficiency-range", type=float, nargs=2, default=(0.25, 0.40), metavar=("LOW", "HIGH"),
                   help="efficiencies for the range column")
    p.add_argument("--bandwidth-efficiency", type=float, default=0.70,
                   help="assumed achieved fraction of the memory bandwidth in element-wise layers")
    p.add_argument("--overhead-gb", type=float, default=1.0,
                   help="allowance for the CUDA context, cuDNN workspace and allocator slack, GiB")
    p.add_argument("--pairs", type=int, default=1000, help="dataset size in pairs for the epoch time")
    p.add_argument("--val-fraction", type=float, default=0.1, help="share of the pairs held out (as the trainer)")
    p.add_argument("--epochs", type=int, default=gpu["epochs"], help="epochs for the total-time column")
    p.add_argument("--cards", type=int, nargs="+", default=[1, 2, 4], help="card counts for the multi-GPU table")
    p.add_argument("--interconnect-gbs", type=float, default=10.0,
                   help="assumed all-reduce bus bandwidth per card, GB/s (PCIe 3.0 x16 in practice)")
    p.add_argument("--probe-size", type=int, default=None,
                   help="CPU measurement size (default: 4 strides, at least 64; also measured at twice this)")
    args = p.parse_args(argv)
    stride = 2**args.depth
    if args.image_size % stride:
        p.error(f"--image-size {args.image_size} is not a multiple of the model stride {stride}")
    if args.probe_size is None:
        args.probe_size = max(64, 4 * stride)
    if args.probe_size % stride:
        p.error(f"--probe-size {args.probe_size} is not a multiple of the model stride {stride}")
    if not 0 < args.efficiency <= 1 or not 0 < args.bandwidth_efficiency <= 1:
        p.error("efficiencies are fractions in (0, 1]")
    if args.batch_size < 1 or args.pairs < 2 or min(args.cards) < 1:
        p.error("--batch-size, --cards must be >= 1 and --pairs >= 2")
    return args


# ---------------------------------------------------------------------------------------------
# Measurements on CPU


def census(paddle, model, size: int) -> Census:
    """Sum every sublayer's output and every conv's input once (by tensor identity), batch 1."""
    from paddle import nn

    result = Census(size=size)
    seen: dict[int, tuple[str, object]] = {}  # keeps the tensors alive so ids stay unique
    x = paddle.rand([1, 3, size, size])
    seen[id(x)] = ("input", x)

    def kind(layer) -> str:
        if isinstance(layer, nn.Conv2D):
            return "conv"
        if isinstance(layer, nn.BatchNorm2D):
            return "bn"
        if isinstance(layer, nn.ReLU):
            return "relu"
        return "model_out" if layer is model else "other"

    def post(layer, _inputs, output):
        for t in output if isinstance(output, (tuple, list)) else (output,):
            if isinstance(t, paddle.Tensor) and id(t) not in seen:
                seen[id(t)] = (kind(layer), t)

    def pre(_layer, inputs):
        for t in inputs:
            if isinstance(t, paddle.Tensor) and id(t) not in seen:
                seen[id(t)] = ("concat", t)

    hooks = []
    for layer in model.sublayers(include_self=True):
        hooks.append(layer.register_forward_post_hook(post))
        if isinstance(layer, nn.Conv2D):
            hooks.append(layer.register_forward_pre_hook(pre))
    try:
        with paddle.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    for name, t in seen.values():
        n = int(t.numel())
        if name == "other":
            raise RuntimeError(f"unexpected tensor {list(t.shape)} from a container layer")
        setattr(result, name, getattr(result, name) + n)
        if n > result.largest:
            result.largest, result.largest_kind = n, name
            result.largest_channels, result.largest_side = int(t.shape[1]), int(t.shape[2])
    return result


def allocator_probe(paddle, model, size: int) -> dict[str, int] | None:
    """Bytes Paddle's CPU allocator holds after forward + loss, and its peak through backward (fp32, eager)."""
    from paddle.base import core

    from seghw.losses import LossWeights, erase_loss

    try:
        current = lambda: core.host_memory_stat_current_value("Allocated", 0)  # noqa: E731
        peak = lambda: core.host_memory_stat_peak_value("Allocated", 0)  # noqa: E731
        current()
    except Exception:  # an allocator without statistics: skip the cross-check
        return None
    x = paddle.rand([1, 3, size, size])
    gt = paddle.rand([1, 3, size, size])
    mask = (paddle.rand([1, 1, size, size]) > 0.9).astype("float32")
    model.clear_gradients(set_to_zero=False)
    base = current()
    core.host_memory_stat_reset_peak_value("Allocated", 0)
    out, pred, logits = model(x)
    after_forward = current() - base
    loss, _parts = erase_loss(out, logits, gt, mask, LossWeights())
    held = current() - base
    loss.backward()
    result = {"forward": after_forward, "held": held, "peak": peak() - base}
    del out, pred, logits, loss, _parts
    model.clear_gradients(set_to_zero=False)
    return result


@dataclass(frozen=True)
class Probe:
    """What the real model shows on CPU: the measured inputs of the arithmetic."""

    params: int
    census: Census  # at twice the probe size
    alloc_small: dict[str, int] | None  # allocator_probe at the probe size (None: no allocator statistics)
    alloc: dict[str, int] | None  # at twice the probe size


def probe(args: argparse.Namespace) -> Probe:
    """Build the model of ``args`` and measure it (Paddle on CPU, one thread, seed 0)."""
    from seghw.device import import_paddle

    paddle = import_paddle(threads=1)
    paddle.set_device("cpu")
    paddle.seed(0)
    from seghw.model import build_model, count_parameters

    model = build_model(args.base_channels, args.depth)
    model.train()
    return Probe(params=count_parameters(model), census=census(paddle, model, 2 * args.probe_size),
                 alloc_small=allocator_probe(paddle, model, args.probe_size),
                 alloc=allocator_probe(paddle, model, 2 * args.probe_size))


# ---------------------------------------------------------------------------------------------
# Arithmetic


@dataclass
class PerImage:
    """Bytes per image at the crop size during a training step."""

    kept: float  # activations autograd keeps
    bn: float  # BatchNorm outputs (freed once ReLU ran; counted in the upper bound)
    tail: float  # composite, sigmoid, loss terms (fp32)
    batch: float  # image, gt, mask on the device (fp32)
    working: float  # gradient buffers in flight during backward

    @property
    def upper(self) -> float:
        return self.kept + self.bn + self.tail + self.batch + self.working

    @property
    def lower(self) -> float:
        return self.upper - self.bn


def per_image(c: Census, tail_fp32_bytes: float, scale: float, amp: bool) -> PerImage:
    b = 2 if amp else 4
    px = c.size * c.size * scale
    kept = b * c.kept() + (2 * c.input if amp else 0)  # AMP: the fp16 cast of the image for the stem conv
    return PerImage(kept=kept * scale, bn=b * c.bn * scale, tail=tail_fp32_bytes * scale, batch=7 * 4 * px,
                    working=2 * b * c.largest * scale)


@dataclass(frozen=True)
class CardSpeed:
    """One card of the speed table at batch ``args.batch_size``."""

    name: str
    tflops16: float
    tflops32: float
    bandwidth: float  # GB/s
    step_seconds: float  # at the assumed efficiency
    rate: float  # images/s
    rate_low: float  # at the low and high ends of the efficiency range
    rate_high: float
    epoch_seconds: float
    total_hours: float  # for args.epochs


@dataclass(frozen=True)
class Scaling:
    """One row of the multi-GPU table."""

    cards: int
    global_batch: int
    steps_per_epoch: int
    allreduce_bytes: float  # sent per card per step
    rates: tuple[float, ...]  # images/s, one per card of Estimate.speeds


@dataclass(frozen=True)
class Estimate:
    args: argparse.Namespace
    probe: Probe
    forward_flops: int  # per image at the crop size
    train_flops: int  # per image
    scale: float  # crop pixels / probe pixels (the census is at twice the probe size)
    tail_fp32: float  # bytes per image at the probe size beyond the hooked tensors
    amp: PerImage
    f32: PerImage
    overhead: float
    static_f32: float
    static_amp: float
    need_amp: float  # bytes at the configured batch, upper bound
    need_f32: float
    max_batch_amp: tuple[int, int]  # (upper bound, without BatchNorm outputs)
    max_batch_f32: tuple[int, int]
    largest_side: int  # side of the largest tensor at the crop size
    n_val: int
    n_train: int
    traffic: float  # element-wise bytes per image
    optimizer_traffic: float  # bytes per step
    speeds: tuple[CardSpeed, ...]
    grad_bytes: float
    scaling: tuple[Scaling, ...]
    cross_check_peak: float | None  # the upper-bound formula at the probe's larger size, fp32 (bytes)


def estimate(args: argparse.Namespace, measured: Probe) -> Estimate:
    """Memory and speed from the options and the measured model: arithmetic only."""
    from seghw.data.dataset import val_count
    from seghw.flops import TRAIN_STEP_FACTOR, model_flops

    c, params = measured.census, measured.params
    s, B = args.image_size, args.batch_size
    fwd = model_flops(args.base_channels, args.depth, s)
    train_img = TRAIN_STEP_FACTOR * fwd
    scale = (s * s) / (c.size * c.size)
    if measured.alloc is not None:
        # What the allocator holds beyond the hooked conv/BN/ReLU tensors: the composite and the loss (fp32).
        tail_fp32 = max(0.0, measured.alloc["held"] - 4 * c.kept())
    else:  # fallback: about 20 full-resolution planes (composite, sigmoid, L1, BCE, Dice terms)
        tail_fp32 = 20 * 4 * c.size * c.size
    amp = per_image(c, tail_fp32, scale, amp=True)
    f32 = per_image(c, tail_fp32, scale, amp=False)

    overhead = args.overhead_gb * GiB
    static_f32 = params * STATIC_BYTES_PER_PARAM + overhead
    static_amp = static_f32 + params * AMP_WEIGHT_COPY_BYTES
    card_mem = args.gpu_memory_gb * GiB

    def max_batch(static: float, per: PerImage) -> tuple[int, int]:
        return tuple(max(0, int((card_mem - static) // x)) for x in (per.upper, per.lower))

    n_val = val_count(args.pairs, args.val_fraction)
    n_train = args.pairs - n_val
    epoch_images = n_train // B * B

    # Speed model: conv FLOPs at (peak x efficiency) plus element-wise traffic at (bandwidth x efficiency).
    b_act = 2 if args.amp else 4
    traffic = scale * (BN_RELU_PASSES * b_act * c.conv + CONCAT_PASSES * b_act * c.concat + TAIL_PASSES * tail_fp32)
    optimizer_traffic = OPTIMIZER_BYTES_PER_PARAM * params

    def step_seconds(peak_tflops: float, bw_gbs: float, eff: float) -> float:
        t_conv = B * train_img / (peak_tflops * 1e12 * eff)
        t_mem = (traffic * B + optimizer_traffic) / (bw_gbs * 1e9 * args.bandwidth_efficiency)
        return t_conv + t_mem

    if args.gpu_tflops:
        cards = [("custom card", args.gpu_tflops, args.gpu_tflops, args.gpu_bandwidth)]
    else:
        cards = list(REFERENCE_CARDS)
    low, high = args.efficiency_range
    speeds = []
    for name, tf16, tf32, bw in cards:
        peak = tf16 if args.amp else tf32
        t = step_seconds(peak, bw, args.efficiency)
        epoch_s = epoch_images / (B / t)
        speeds.append(CardSpeed(name, tf16, tf32, bw, step_seconds=t, rate=B / t,
                                rate_low=B / step_seconds(peak, bw, low), rate_high=B / step_seconds(peak, bw, high),
                                epoch_seconds=epoch_s, total_hours=epoch_s * args.epochs / 3600))

    grad_bytes = 4 * params
    scaling = []
    for n in args.cards:
        sent = 2 * (n - 1) / n * grad_bytes  # a ring all-reduce, not overlapped with the backward pass
        t_ar = sent / (args.interconnect_gbs * 1e9)
        scaling.append(Scaling(n, n * B, n_train // (n * B), sent,
                               tuple(n * B / (sp.step_seconds + t_ar) for sp in speeds)))

    cross_check = None
    if measured.alloc is not None and measured.alloc_small is not None:
        f32_probe = per_image(c, tail_fp32, 1.0, amp=False)
        cross_check = f32_probe.upper - f32_probe.batch + 4 * params
    return Estimate(
        args=args, probe=measured, forward_flops=fwd, train_flops=train_img, scale=scale, tail_fp32=tail_fp32,
        amp=amp, f32=f32, overhead=overhead, static_f32=static_f32, static_amp=static_amp,
        need_amp=static_amp + B * amp.upper, need_f32=static_f32 + B * f32.upper,
        max_batch_amp=max_batch(static_amp, amp), max_batch_f32=max_batch(static_f32, f32),
        largest_side=c.largest_side * s // c.size, n_val=n_val, n_train=n_train, traffic=traffic,
        optimizer_traffic=optimizer_traffic, speeds=tuple(speeds), grad_bytes=grad_bytes, scaling=tuple(scaling),
        cross_check_peak=cross_check)


# ---------------------------------------------------------------------------------------------
# Markdown


def fmt_int(n: float) -> str:
    return f"{int(round(n)):,}"


def row(*cells) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def render(e: Estimate) -> str:
    """The markdown section that docs/gpu.md carries, from ``"## Estimate"`` to before ``"## Assumptions"``."""
    from seghw.flops import TRAIN_STEP_FACTOR

    args, c, params = e.args, e.probe.census, e.probe.params
    s, B, probe2 = args.image_size, args.batch_size, c.size
    amp, f32 = e.amp, e.f32
    lines: list[str] = []
    out = lines.append
    amp_text = "float16 autocast (AMP)" if args.amp else "float32 (AMP off)"
    out(f"## Estimate: {s}×{s} crops, batch {B} per card, base_channels {args.base_channels}, "
        f"depth {args.depth}, {amp_text}")
    out("")
    out("**Estimate, not measured (no GPU on the development machine).** FLOPs are counted from the layer plan; "
        "parameters and activation sizes are measured on the real model on CPU and scaled; speeds are "
        "arithmetic from nominal datasheet peaks and the assumed efficiencies below.")
    out("")
    out("### Model and arithmetic")
    out("")
    out(row("figure", "value"))
    out(row("---", "---"))
    out(row("parameters (counted on the built model)", f"{fmt_int(params)} ({params / 1e6:.2f} M)"))
    out(row(f"forward GFLOP per image at {s}×{s} (`seghw.flops.model_flops`)", f"{e.forward_flops / 1e9:.1f}"))
    out(row(f"training GFLOP per image ({TRAIN_STEP_FACTOR} × forward)", f"{e.train_flops / 1e9:.1f}"))
    out(row(f"training GFLOP per step (batch {B})", f"{B * e.train_flops / 1e9:,.0f}"))
    out("")
    out("### Memory per card")
    out("")
    out(f"Activations: forward post-hooks on every sublayer of the real model (plus pre-hooks on every "
        f"Conv2D for the decoder concats and the input), on CPU at {probe2}×{probe2}, batch 1, each tensor "
        f"counted once; scaled ×{e.scale:g} by pixel count to {s}×{s}. Bytes per element: 2 under AMP "
        f"(conv, BatchNorm and ReLU run in float16), 4 in float32.")
    out("")
    out(row(f"per image at {s}×{s}", "M elements", "AMP MiB", "fp32 MiB", "kept for backward"))
    out(row("---", "---", "---", "---", "---"))
    me = lambda n: f"{n * e.scale / 1e6:.1f}"  # noqa: E731
    mib = lambda x: f"{x / MiB:,.0f}"  # noqa: E731
    out(row("Conv2D outputs", me(c.conv), mib(2 * c.conv * e.scale), mib(4 * c.conv * e.scale),
            "yes: BatchNorm's input"))
    out(row("ReLU outputs", me(c.relu), mib(2 * c.relu * e.scale), mib(4 * c.relu * e.scale),
            "yes: ReLU's backward and the next conv's input"))
    out(row("decoder concats (upsampled + skip)", me(c.concat), mib(2 * c.concat * e.scale),
            mib(4 * c.concat * e.scale), "yes: conv input"))
    out(row("BatchNorm outputs", me(c.bn), mib(amp.bn), mib(f32.bn),
            "no (ReLU's backward uses its output); counted in the upper bound"))
    out(row("input cast to fp16 (AMP)", me(c.input), mib(2 * c.input * e.scale), "0", "yes: stem conv input"))
    out(row("composite, sigmoid, loss terms (fp32, allocator difference)", "", mib(amp.tail), mib(f32.tail),
            "partly"))
    out(row("image, gt, mask on the device (fp32)", "", mib(amp.batch), mib(f32.batch), "yes"))
    largest = f"{c.largest_kind} {c.largest_channels}×{e.largest_side}×{e.largest_side}"
    out(row(f"backward working set (2 × the largest tensor, {largest})", "",
            mib(amp.working), mib(f32.working), "transient"))
    out(row("**total per image, upper bound**", "", f"**{mib(amp.upper)}**", f"**{mib(f32.upper)}**", ""))
    out(row("total per image without BatchNorm outputs", "", mib(amp.lower), mib(f32.lower), ""))
    out("")
    small, big = e.probe.alloc_small, e.probe.alloc
    if e.cross_check_peak is not None:
        out(f"Cross-check on CPU (Paddle's host allocator, fp32 eager, batch 1, the batch tensors allocated "
            f"before): held after forward + loss {small['held'] / MiB:.1f} MiB at {args.probe_size} px and "
            f"{big['held'] / MiB:.1f} MiB at {probe2} px (×{big['held'] / small['held']:.2f} for ×4 "
            f"pixels); the hooked kept tensors account for {4 * c.kept() / MiB:.1f} MiB of it. Peak through "
            f"backward at {probe2} px: {big['peak'] / MiB:.1f} MiB including {4 * params / MiB:.1f} MiB of "
            f"parameter gradients; the upper-bound formula at the same size gives {e.cross_check_peak / MiB:.1f} MiB.")
        out("")
    out("Fixed per card:")
    out("")
    out(row("item", "bytes per parameter", "MiB"))
    out(row("---", "---", "---"))
    out(row("weights (fp32 master copy)", 4, mib(4 * params)))
    out(row("gradients (fp32)", 4, mib(4 * params)))
    out(row("Adam first and second moments (fp32)", 8, mib(8 * params)))
    out(row("fp16 weight copies kept by autocast (AMP only)", 2, mib(2 * params)))
    out(row("CUDA context, cuDNN workspace, allocator slack (allowance, not computed)", "", mib(e.overhead)))
    out(row("**total fixed (AMP)**", "", f"**{mib(e.static_amp)}**"))
    out("")
    out(row(f"{s}×{s}, on a {args.gpu_memory_gb:g} GiB card", "AMP", "fp32 (AMP off)"))
    out(row("---", "---", "---"))
    out(row(f"memory at batch {B} (upper bound)", f"{e.need_amp / GiB:.1f} GiB", f"{e.need_f32 / GiB:.1f} GiB"))
    out(row("largest batch that fits (upper bound; without BatchNorm outputs)",
            "**{}** ({})".format(*e.max_batch_amp), "{} ({})".format(*e.max_batch_f32)))
    out("")
    out(f"16 GB cards report about 15–15.8 GiB usable (ECC, driver reserve); the {args.overhead_gb:g} GiB "
        "allowance covers part of that. Static-graph mode (`static_graph`, on by default) may free tensors "
        "earlier than this eager-mode count.")
    out("")
    out("### Speed per card")
    out("")
    low, high = args.efficiency_range
    precision = "fp16 tensor" if args.amp else "fp32"
    out(f"Step time = training FLOPs ÷ ({precision} peak × {args.efficiency:g}) + element-wise memory "
        f"traffic ÷ (memory bandwidth × {args.bandwidth_efficiency:g}). The {args.efficiency:g} is an assumed "
        f"achieved fraction of peak for these 3×3 convolutions (few channels at full resolution, NCHW, "
        f"a 3-channel stem conv); the range column uses {low:g}–{high:g}. Traffic: {BN_RELU_PASSES} passes over "
        f"every conv output (BatchNorm + ReLU, forward and backward), {CONCAT_PASSES} over every decoder concat, "
        f"{TAIL_PASSES} over the fp32 tail, {OPTIMIZER_BYTES_PER_PARAM} B per parameter per step for the "
        f"optimizer: {e.traffic / 1e9:.2f} GB per image + {e.optimizer_traffic / 1e9:.2f} GB "
        f"per step. Data loading is assumed to keep up; validation is not included. Epoch: {args.pairs} pairs, "
        f"{e.n_val} held out (val fraction {args.val_fraction:g}), {e.n_train // B} steps of {B} = "
        f"{e.n_train // B * B} images.")
    out("")
    out(row("card (nominal datasheet peaks)", "fp16 tensor TFLOP/s", "fp32 TFLOP/s", "memory GB/s",
            f"est. img/s (efficiency {args.efficiency:g})", f"range ({low:g}–{high:g})", f"s/step (batch {B})",
            "s/epoch", f"h for {args.epochs} epochs"))
    out(row(*["---"] * 9))
    for sp in e.speeds:
        out(row(sp.name, f"{sp.tflops16:g}", f"{sp.tflops32:g}", f"{sp.bandwidth:g}", f"**{sp.rate:.0f}**",
                f"{sp.rate_low:.0f}–{sp.rate_high:.0f}", f"{sp.step_seconds:.2f}", f"{sp.epoch_seconds:.0f}",
                f"{sp.total_hours:.1f}"))
    out("")
    out("### Multi-GPU scaling (data parallel)")
    out("")
    grad_mib = e.grad_bytes / MiB
    out(f"Each card keeps the whole model, the fixed memory above and batch {B} (`batch_size` is per card); "
        f"the global batch is cards × {B}. Per-card memory does not change (plus gradient buckets, about "
        f"{grad_mib:.0f} MiB). BatchNorm statistics stay per card unless synchronised. Each step "
        f"all-reduces {grad_mib:.0f} MiB of fp32 gradients: a ring sends 2(n−1)/n of it per card, at an "
        f"assumed {args.interconnect_gbs:g} GB/s and not overlapped with the backward pass (a pessimistic "
        f"bound). Steps per epoch = training pairs // global batch, if every card takes distinct pairs "
        f"of the same epoch.")
    out("")
    out(row("cards", "global batch", "steps/epoch", "all-reduce MiB/card/step",
            *[f"img/s, {sp.name}" for sp in e.speeds]))
    out(row(*["---"] * (4 + len(e.speeds))))
    for sc in e.scaling:
        out(row(sc.cards, sc.global_batch, sc.steps_per_epoch, f"{sc.allreduce_bytes / MiB:.0f}",
                *[f"{r:.0f}" for r in sc.rates]))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print(render(estimate(args, probe(args))), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
