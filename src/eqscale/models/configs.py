"""Model configs and size presets of both families: plain dataclasses, no torch (the one home of the size tables).

`gatr.py`, `transformer.py` and `layers_equivariant.py` build modules from these; `counts.py`
derives parameter counts, FLOPs and memory from them without importing torch, so planning a study
(the grid, `eqscale plan`, Snakemake's DAG) never imports torch.

The widths that follow from the algebra (how many multivector components the attention reads) are
written here as numbers; `tests/models/test_counts.py` checks them against `eqscale.algebra`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

# ---------------------------------------------------------------------------------------------
# Widths fixed by the algebra and the task

NUM_MV_COMPONENTS = 16
# attention logits of a multivector channel: its 7 Euclidean components other than e123 (inner
# product) plus 5 distance features of its trivector (point) part
NUM_QK_FEATURES_PER_MV = 7 + 5
NUM_QK_FEATURES_PER_ODD = 5  # a parity-odd (point) channel enters the logits through distances only
NUM_V_COMPONENTS_PER_ODD = 5  # and is attended on its grade-3 and grade-4 components (e012 ... e0123)
GP_TABLE_PAIRS = 256  # the geometric product runs on all 16 x 16 component pairs (192 contribute)
JOIN_TABLE_PAIRS = 81  # the join runs on its 81 contributing pairs (sparse form, algebra.products)

# GATr's face embedding (models/gatr.py, FaceEmbedding)
GATR_EVEN_CHANNELS = 7  # floor plane; per corner, planes normal to its velocity and to its edge
GATR_SCALAR_CHANNELS = 12  # heights of the 6 corners above the floor, 3 corner speeds, 3 edge lengths
GATR_ODD_CHANNELS = 6  # the 3 corners at t and at t-1 as points
GATR_OUT_CHANNELS = 3  # one displacement multivector per corner

# the transformer's face embedding (models/transformer.py, FaceFourierEmbedding)
POINTS_PER_FACE = 6  # three corners at t and three at t-1
RAW_FEATURES = 18  # corners at t and their velocities (t minus t-1), 9 numbers each
TRANSFORMER_OUT_FEATURES = 9  # a displacement per corner


def _multiple_of_8(width: int) -> int:
    return 8 * math.ceil(width / 8)


# ---------------------------------------------------------------------------------------------
# GATr


@dataclass(frozen=True)
class AttentionConfig:
    """Multi-query geometric attention: per-head widths of queries; one key/value head shared."""

    mv_channels: int
    s_channels: int
    num_heads: int
    head_mv: int
    head_s: int
    odd_channels: int = 0
    head_odd: int = 1
    normalizer_eps: float = 1e-3
    out_gain: float = 0.1  # small output projection: residual branches start near identity

    @property
    def odd_per_head(self) -> int:
        """Parity-odd channels per head (0 without an odd input)."""
        return self.head_odd if self.odd_channels else 0

    @property
    def qk_width(self) -> int:
        """Unpadded query/key feature width per head."""
        return self.head_mv * NUM_QK_FEATURES_PER_MV + self.odd_per_head * NUM_QK_FEATURES_PER_ODD + self.head_s

    @property
    def v_width(self) -> int:
        """Unpadded value width per head."""
        return self.head_mv * NUM_MV_COMPONENTS + self.odd_per_head * NUM_V_COMPONENTS_PER_ODD + self.head_s

    @property
    def padded_width(self) -> int:
        """Common q/k/v width, a multiple of 8 (equal widths keep SDPA on its fused kernels)."""
        return _multiple_of_8(max(self.qk_width, self.v_width))


@dataclass(frozen=True)
class BilinearConfig:
    """Geometric bilinear: `gp_channels` geometric products and `join_channels` joins, then a linear map."""

    in_mv: int
    in_s: int
    out_mv: int
    out_s: int
    gp_channels: int
    join_channels: int
    odd_channels: int = 0  # > 0: join partners come from the parity-odd input


@dataclass(frozen=True)
class BlockConfig:
    """A GATr block: widths of the residual stream, heads, and the parity-odd input width."""

    mv_channels: int
    s_channels: int
    num_heads: int
    odd_channels: int = 0
    head_odd: int = 1
    hidden_factor: int = 2  # attention and MLP widen the stream by this factor, as in the reference

    def attention(self) -> AttentionConfig:
        """Per-head widths as in the reference GATr: 2x the stream split over heads."""
        return AttentionConfig(
            mv_channels=self.mv_channels, s_channels=self.s_channels, num_heads=self.num_heads,
            head_mv=max(self.hidden_factor * self.mv_channels // self.num_heads, 1),
            head_s=max(self.hidden_factor * self.s_channels // self.num_heads, 4),
            odd_channels=self.odd_channels, head_odd=self.head_odd)

    def bilinear(self) -> BilinearConfig:
        """MLP bilinear: half geometric products, half joins, widened by `hidden_factor`."""
        hidden = self.hidden_factor * self.mv_channels
        return BilinearConfig(in_mv=self.mv_channels, in_s=self.s_channels, out_mv=hidden,
                              out_s=self.hidden_factor * self.s_channels, gp_channels=hidden // 2,
                              join_channels=hidden - hidden // 2, odd_channels=self.odd_channels)


@dataclass(frozen=True)
class GATrConfig:
    """Widths (multivector and scalar channels of the residual stream), depth and heads of GATr."""

    mv_channels: int
    s_channels: int
    num_blocks: int
    num_heads: int = 8
    head_odd: int = 1  # parity-odd (point) channels per attention head
    hidden_factor: int = 2
    floor_normal: tuple[float, float, float] = (0.0, 0.0, 1.0)  # the batch layout: z up, floor at z = 0
    floor_offset: float = 0.0  # d in n . x + d = 0

    def block(self) -> BlockConfig:
        """Config of every block."""
        return BlockConfig(self.mv_channels, self.s_channels, self.num_heads, odd_channels=GATR_ODD_CHANNELS,
                           head_odd=self.head_odd, hidden_factor=self.hidden_factor)


GATR_SIZES: dict[str, GATrConfig] = {
    "xxs": GATrConfig(mv_channels=4, s_channels=8, num_blocks=2, num_heads=4),
    "xs": GATrConfig(mv_channels=8, s_channels=16, num_blocks=4),
    "s": GATrConfig(mv_channels=16, s_channels=32, num_blocks=4),
    "m": GATrConfig(mv_channels=16, s_channels=64, num_blocks=8),
    "l": GATrConfig(mv_channels=32, s_channels=64, num_blocks=8),
    "xl": GATrConfig(mv_channels=48, s_channels=128, num_blocks=12),
}


# ---------------------------------------------------------------------------------------------
# Transformer


@dataclass(frozen=True)
class TransformerConfig:
    """Width, depth and heads of the transformer, and its Fourier-feature embedding."""

    width: int
    num_blocks: int
    num_heads: int
    mlp_factor: int = 4
    rff_frequencies: int = 16  # random frequencies per corner point (each gives a sin and a cos)
    rff_scale: float = 1.0  # std of the frequencies in cycles per metre: objects are ~1 m across
    rff_seed: int = 0  # the frequency matrix is fixed by this seed, not by the global RNG
    output_gain: float = 0.1  # small initial displacements: training starts near "no motion"

    def __post_init__(self) -> None:
        if self.width % self.num_heads:
            raise ValueError(f"TransformerConfig: width {self.width} is not divisible by num_heads {self.num_heads}")

    @property
    def head_dim(self) -> int:
        """Width of one query head (and of the shared key/value head)."""
        return self.width // self.num_heads

    @property
    def padded_head_dim(self) -> int:
        """Head width rounded up to a multiple of 8, what the fused attention kernels prefer."""
        return _multiple_of_8(self.head_dim)

    @property
    def embedding_features(self) -> int:
        """Inputs of the embedding's linear layer per face: sin and cos features plus raw numbers."""
        return POINTS_PER_FACE * 2 * self.rff_frequencies + RAW_FEATURES


# Spans ~600x in parameters (about 3e4 to 2e7). Heads are 32 wide (16 for xxs): CPU fused
# attention at the same FLOPs takes ~3x longer with 8-wide heads than with 16, ~4x than with 32.
TRANSFORMER_SIZES: dict[str, TransformerConfig] = {
    "xxs": TransformerConfig(width=32, num_blocks=2, num_heads=2),
    "xs": TransformerConfig(width=64, num_blocks=4, num_heads=2),
    "s": TransformerConfig(width=128, num_blocks=4, num_heads=4),
    "m": TransformerConfig(width=192, num_blocks=6, num_heads=6),
    "l": TransformerConfig(width=256, num_blocks=8, num_heads=8),
    "xl": TransformerConfig(width=384, num_blocks=12, num_heads=12),
}


# ---------------------------------------------------------------------------------------------
# Families

SIZES: dict[str, dict[str, GATrConfig] | dict[str, TransformerConfig]] = {
    "gatr": GATR_SIZES,
    "transformer": TRANSFORMER_SIZES,
}


# A continuous size axis beside the named presets, so a study can place sizes where each budget's optimum
# lies: "w<W>" is the transformer of width W, "mv<C>" GATr with C multivector and 2C scalar channels. Depth
# is fixed on the axis (LADDER_BLOCKS) and heads follow the width (transformer heads 32 features wide, at
# least 2; GATr 4 heads below 8 channels, else 8), so width alone sets the size.
LADDER_BLOCKS = 4
_AXIS = {"transformer": re.compile(r"^w(\d+)$"), "gatr": re.compile(r"^mv(\d+)$")}


def _axis_config(model: str, size: str) -> GATrConfig | TransformerConfig | None:
    match = _AXIS[model].match(size)
    if match is None:
        return None
    width = int(match.group(1))
    if model == "transformer":
        heads = max(2, width // 32)
        if width < 8 or width % heads:
            raise KeyError(f"transformer size {size!r}: the width must be at least 8 and divisible by its {heads} "
                           "heads (heads are 32 features wide, at least 2)")
        return TransformerConfig(width=width, num_blocks=LADDER_BLOCKS, num_heads=heads)
    if width < 2:
        raise KeyError(f"gatr size {size!r}: at least 2 multivector channels")
    return GATrConfig(mv_channels=width, s_channels=2 * width, num_blocks=LADDER_BLOCKS, num_heads=4 if width < 8 else 8)


def size_config(model: str, size: str) -> GATrConfig | TransformerConfig:
    """The config of a named size of a family, or of a point on its width axis ('w96', 'mv12'); KeyError otherwise."""
    if model not in SIZES:
        raise KeyError(f"unknown model {model!r} (known: {', '.join(SIZES)})")
    sizes = SIZES[model]
    if size in sizes:
        return sizes[size]
    config = _axis_config(model, size)
    if config is None:
        axis = "w<width>" if model == "transformer" else "mv<channels>"
        raise KeyError(f"unknown {model} size {size!r} (valid: {', '.join(sizes)}, or {axis} on its width axis)")
    return config
