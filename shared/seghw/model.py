"""An EraseNet-style generator, light enough for real use.

A shared encoder feeds two decoders with skip connections: a mask decoder that finds the
handwriting and an image decoder that paints the page underneath. The output keeps the input
wherever the mask says "no ink": ``out = mask * pred + (1 - mask) * input``.

The painted page starts from a classical estimate of the paper under the strokes (a grey-level
closing, ``paper_estimate``), and the image decoder learns the correction: the colour of the paper
comes from the pixels around a stroke instead of being rebuilt from the ink's own darkness.

With ``fill="bounded"`` (the default) the painted page cannot leave the range between the input and
that paper estimate, channel by channel: ``pred = clip(paper + c, x, paper)``, with a closing of
``BOUNDED_WINDOW`` px (wide felt-tip strokes are lifted too). Ink only darkens a page, so the clean
page lies in that range; anything outside it is harm: a colour cast, a large dark area repainted (the
closing keeps areas wider than its window as they are), a darker blotch. ``fill="paper"`` is the
unbounded correction ``paper_estimate(x, 9) + c`` of earlier runs.
"""

from __future__ import annotations

import paddle
from paddle import nn
from paddle.nn import functional as F


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2D(cin, cout, 3, stride=stride, padding=1, bias_attr=False),
        nn.BatchNorm2D(cout),
        nn.ReLU(),
    )


class _Down(nn.Layer):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.body = nn.Sequential(_conv(cin, cout, stride=2), _conv(cout, cout))

    def forward(self, x):
        return self.body(x)


def upsample2x(x):
    """Nearest-neighbour 2x upsampling as channel repeat + pixel shuffle: the same values as
    ``F.interpolate(x, scale_factor=2, mode="nearest")``, about 2x faster in Paddle's eager CPU
    kernels, and exportable to oneDNN inference (its nearest_interp op is not)."""
    return F.pixel_shuffle(paddle.repeat_interleave(x, 4, axis=1), 2)


PAPER_WINDOW = 9  # px; closes strokes up to ~8 px wide, the pen widths of a 150-dpi scan
BOUNDED_WINDOW = 15  # px; the bounded fill's closing: felt-tip strokes and crossings of strokes too


def _max_filter(x, window: int):
    # A square max filter is a row filter then a column filter: 2w comparisons per pixel, not w².
    pad = window // 2
    rows = F.max_pool2d(x, (1, window), stride=1, padding=(0, pad))
    return F.max_pool2d(rows, (window, 1), stride=1, padding=(pad, 0))


def paper_estimate(x, window: int):
    """Grey-level closing per channel (a ``window`` max filter, then a min filter): dark strokes
    thinner than the window give way to the lighter paper around them; large areas keep their level."""
    return -_max_filter(-_max_filter(x, window), window)


class _Up(nn.Layer):
    def __init__(self, cin: int, cskip: int, cout: int):
        super().__init__()
        self.body = nn.Sequential(_conv(cin + cskip, cout), _conv(cout, cout))

    def forward(self, x, skip):
        x = upsample2x(x)
        return self.body(paddle.concat([x, skip], axis=1))


class _Decoder(nn.Layer):
    def __init__(self, widths: list[int], out_channels: int, scale: float = 1.0):
        super().__init__()
        # widths: encoder widths from full resolution to the bottleneck
        dec = [max(4, int(w * scale)) for w in widths]
        ups = []
        cin = widths[-1]
        for level in range(len(widths) - 2, -1, -1):
            ups.append(_Up(cin, widths[level], dec[level]))
            cin = dec[level]
        self.ups = nn.LayerList(ups)
        self.head = nn.Conv2D(cin, out_channels, 1)

    def forward(self, feats):
        x = feats[-1]
        # (no zip(strict=...): Paddle's graph translator does not accept it)
        for up, skip in zip(self.ups, reversed(feats[:-1])):  # noqa: B905
            x = up(x, skip)
        return self.head(x)


class _Context(nn.Layer):
    """A wider view at the bottleneck: its features pooled 2x, two 3x3 convolutions there, and the
    result added back (nearest 2x upsampling). The receptive field grows by 4 bottleneck cells."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(_conv(channels, channels), _conv(channels, channels))

    def forward(self, x):
        return x + upsample2x(self.body(F.avg_pool2d(x, 2)))


class EraseNetLite(nn.Layer):
    """Input: NCHW float in [0, 1]. Output: (composited clean page, raw prediction, mask logits); the
    pages are not clipped to [0, 1] (pictures are, when converted to 8 bits)."""

    def __init__(self, base_channels: int = 32, depth: int = 4, patch_stem: bool = False, fill: str = "bounded",
                 context: bool = False):
        super().__init__()
        if fill not in FILLS:
            raise ValueError(f"fill must be one of {', '.join(FILLS)}, got {fill!r}")
        widths = [base_channels * 2**i for i in range(depth + 1)]
        self.depth, self.patch_stem, self.fill = depth, patch_stem, fill
        if patch_stem:
            # The full-resolution level's convolutions are the slowest per FLOP on a CPU (few
            # channels, large im2col buffers). A 2x2 stride-2 convolution takes its place and
            # the heads predict each 2x2 patch, put back in place by a pixel shuffle.
            widths = widths[1:]
            self.stem = nn.Sequential(
                nn.Conv2D(3, widths[0], 2, stride=2, bias_attr=False), nn.BatchNorm2D(widths[0]), nn.ReLU(),
                _conv(widths[0], widths[0]),
            )
        else:
            self.stem = nn.Sequential(_conv(3, widths[0]), _conv(widths[0], widths[0]))
        self.downs = nn.LayerList([_Down(widths[i], widths[i + 1]) for i in range(len(widths) - 1)])
        # The bottleneck must stay even for the pooling: crops and windows are multiples of 2 * stride.
        self.context = _Context(widths[-1]) if context else None
        self.relu = nn.ReLU()
        patch_pixels = 4 if patch_stem else 1
        self.image_decoder = _Decoder(widths, 3 * patch_pixels)
        self.mask_decoder = _Decoder(widths, 1 * patch_pixels, scale=0.5)
        # Start near the identity: the fill is the paper estimate and the mask says "no ink"
        # (sigmoid(-4) ≈ 0.02), so the first validation scores about the input itself.
        zeros = paddle.nn.initializer.Constant(0.0)
        zeros(self.image_decoder.head.weight)
        zeros(self.image_decoder.head.bias)
        paddle.nn.initializer.Constant(-4.0)(self.mask_decoder.head.bias)

    @property
    def stride(self) -> int:
        return 2 ** (self.depth + (self.context is not None))

    def forward(self, x):
        feats = [self.stem(x)]
        for down in self.downs:
            feats.append(down(feats[-1]))
        if self.context is not None:
            feats[-1] = self.context(feats[-1])
        # The image head corrects the paper estimate. No clip here: a clip would hide overshoots
        # from the loss (zero gradient past 1.0), and they show as white blotches where ink was;
        # outputs are clipped when they become pictures.
        correction, mask_logits = self.image_decoder(feats), self.mask_decoder(feats)
        if self.patch_stem:
            correction, mask_logits = F.pixel_shuffle(correction, 2), F.pixel_shuffle(mask_logits, 2)
        if self.fill == "bounded":
            # A clip, not a squashing function: the correction keeps the unbounded fill's scale
            # (a small error in it is a small error in the page, whatever the stroke's darkness).
            # clip(v, x, paper) = min(max(v, x), paper) written with ReLUs, which the legacy graph export
            # also has: paper - relu(paper - (x + relu(v - x))); exact at the upper bound, however large v.
            paper = paper_estimate(x, BOUNDED_WINDOW)
            pred = paper - self.relu(paper - x - self.relu(paper + correction - x))
        else:
            pred = paper_estimate(x, PAPER_WINDOW) + correction
        mask = F.sigmoid(mask_logits)
        out = mask * pred + (1.0 - mask) * x
        return out, pred, mask_logits


FILLS = ("bounded", "paper")


MODEL_SETTINGS = ("base_channels", "depth", "patch_stem", "fill", "context")


def model_settings(cfg) -> dict:
    """``build_model``'s keyword arguments from a TrainConfig, or from a config dict as checkpoints hold it."""
    get = cfg.get if isinstance(cfg, dict) else (lambda name: getattr(cfg, name))
    return {name: get(name) for name in MODEL_SETTINGS}


def build_model(base_channels: int, depth: int, patch_stem: bool = False, fill: str = "bounded",
                context: bool = False) -> EraseNetLite:
    return EraseNetLite(base_channels=base_channels, depth=depth, patch_stem=patch_stem, fill=fill, context=context)


def count_parameters(model: nn.Layer) -> int:
    return int(sum(int(p.numel()) for p in model.parameters()))
