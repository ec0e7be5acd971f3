"""Parameters, FLOPs and memory of both families, from their configs alone: no torch imported.

What the grid, `eqscale plan`, Snakemake's DAG and the training job ask (`num_params`,
`step_flops`, `peak_memory_bytes`, `steps_for_budget`), and what the networks report about
themselves. A batch enters only through its `BatchStructure`: the totals that decide the cost of a
packed batch (real face tokens, the sums of squared block lengths of the two attentions, objects,
scenes). Fields may be numpy arrays (one entry per step): every count is then computed per step.

FLOP convention (what torch's FlopCounterMode counts, so analytic and measured counts agree):
matrix products only (mm/addmm/bmm, SDPA), 2 FLOPs per multiply-add, elementwise work ignored
(norms, activations, the rigid fit's 3x3 arithmetic). A learned weight used once per token costs
6 FLOPs forward + backward (2 forward, 2 for the input gradient, 2 for the weight gradient); a
constant table (product tables of the algebra) costs 4 (no weight gradient). Fused attention over
a block of L tokens costs QK^T and AV forward and, in the backward, the recomputed scores plus four
gradient products (torch's SDPA formula): 7 products of 2*H*L*L*d FLOPs. Object-local attention runs
on each object's own faces and global attention on each scene's own faces, so attention costs
14*H*d*(sum of squared block lengths): real tokens only, no padding, no masked-out pairs.

Parts: `dense` = learned linear layers (the per-token GEMMs), `attention` = the attention products,
`other` = everything else that FlopCounterMode sees (GATr's constant-table bilinears and the
assembly of its equivariant weight matrices; the transformer's Fourier projection).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields

import numpy as np

from eqscale.models.configs import (
    GATR_EVEN_CHANNELS, GATR_ODD_CHANNELS, GATR_OUT_CHANNELS, GATR_SCALAR_CHANNELS, GP_TABLE_PAIRS,
    JOIN_TABLE_PAIRS, NUM_MV_COMPONENTS, NUM_V_COMPONENTS_PER_ODD, POINTS_PER_FACE, SIZES,
    TRANSFORMER_OUT_FEATURES, GATrConfig, TransformerConfig, size_config,
)

__all__ = ["SIZES", "BatchStructure", "activation_values_per_token", "config_num_params", "config_step_flops",
           "expected_structure", "num_params", "peak_memory_bytes", "size_config", "step_flops", "steps_for_budget"]

ADAMW_STATE_PER_PARAM = 2  # exp_avg and exp_avg_sq


@dataclass(frozen=True)
class BatchStructure:
    """The totals of a packed batch that decide its cost (numbers, or numpy arrays with one entry per step).

    tokens: real face tokens; scene_tokens_sq: sum over scenes of (faces in the scene)^2 (global
    attention); object_tokens_sq: sum over objects of (faces of the object)^2 (object-local
    attention); objects; scenes.
    """

    tokens: float
    scene_tokens_sq: float
    object_tokens_sq: float
    objects: float
    scenes: float

    @classmethod
    def from_scenes(cls, object_faces: Sequence[Sequence[int]]) -> BatchStructure:
        """The structure of a batch given each scene's list of per-object face counts."""
        scene_faces = [sum(objects) for objects in object_faces]
        return cls(tokens=sum(scene_faces), scene_tokens_sq=sum(f * f for f in scene_faces),
                   object_tokens_sq=sum(f * f for objects in object_faces for f in objects),
                   objects=sum(len(objects) for objects in object_faces), scenes=len(object_faces))

    def scaled(self, factor: float) -> BatchStructure:
        """Every total times `factor` (e.g. per-sample expectations -> a batch of `factor` samples)."""
        return BatchStructure(**{f.name: getattr(self, f.name) * factor for f in fields(self)})


def expected_structure(face_counts_per_object_distribution: Mapping[int, float] | Sequence[int], min_objects: int,
                       max_objects: int, batch_size: int) -> BatchStructure:
    """Expected structure of a batch: scenes of U{min..max} objects, face counts drawn independently.

    face_counts_per_object_distribution: {faces: probability} (normalised here), or a sequence of
    face counts taken as equally likely (e.g. each asset's face count: objects draw assets uniformly).
    """
    if isinstance(face_counts_per_object_distribution, Mapping):
        items = list(face_counts_per_object_distribution.items())
    else:
        items = [(faces, 1.0) for faces in face_counts_per_object_distribution]
    total = sum(weight for _, weight in items)
    if not items or total <= 0 or min_objects < 1 or max_objects < min_objects or batch_size < 1:
        raise ValueError("expected_structure needs a non-empty face-count distribution, 1 <= min_objects <= "
                         f"max_objects and batch_size >= 1 (got {len(items)} counts, objects {min_objects}.."
                         f"{max_objects}, batch {batch_size})")
    mean_f = sum(f * w for f, w in items) / total
    mean_f2 = sum(f * f * w for f, w in items) / total
    ks = range(min_objects, max_objects + 1)
    mean_k = sum(ks) / len(ks)
    mean_k2 = sum(k * k for k in ks) / len(ks)
    # scene tokens S = f_1 + ... + f_K: E[S^2] = E[K] Var(f) + E[K^2] E[f]^2
    per_scene = BatchStructure(tokens=mean_k * mean_f,
                               scene_tokens_sq=mean_k * (mean_f2 - mean_f**2) + mean_k2 * mean_f**2,
                               object_tokens_sq=mean_k * mean_f2, objects=mean_k, scenes=1.0)
    return per_scene.scaled(batch_size)


# ---------------------------------------------------------------------------------------------
# Parameters


def _equilinear_params(in_mv: int, out_mv: int, in_s: int = 0, out_s: int = 0, bias: bool = True) -> int:
    weights = out_mv * in_mv * 9 + out_mv * in_s + out_s * in_mv + out_s * in_s
    return weights + ((out_mv + out_s) if bias else 0)


def _gatr_params(config: GATrConfig) -> int:
    block = config.block()
    att, bil = block.attention(), block.bilinear()
    heads, odd, head_odd = att.num_heads, block.odd_channels, att.odd_per_head
    attention = (_equilinear_params(att.mv_channels, (heads + 2) * att.head_mv, att.s_channels,
                                    (heads + 2) * att.head_s)
                 + (_equilinear_params(odd, (heads + 2) * head_odd, bias=False) if odd else 0)
                 + _equilinear_params(heads * (att.head_mv + head_odd), att.mv_channels, heads * att.head_s,
                                      att.s_channels)
                 + heads * (att.head_mv + head_odd))
    join_operands = bil.join_channels * (1 if bil.odd_channels else 2)
    bilinear = (_equilinear_params(bil.in_mv, 2 * bil.gp_channels + join_operands, bil.in_s, 0)
                + (_equilinear_params(bil.odd_channels, bil.join_channels, bias=False) if bil.odd_channels else 0)
                + _equilinear_params(bil.gp_channels + bil.join_channels, bil.out_mv, bil.in_s, bil.out_s))
    mlp_out = _equilinear_params(bil.out_mv, config.mv_channels, bil.out_s, config.s_channels)
    return (_equilinear_params(GATR_EVEN_CHANNELS, config.mv_channels, GATR_SCALAR_CHANNELS, config.s_channels)
            + config.num_blocks * (attention + bilinear + mlp_out)
            + _equilinear_params(config.mv_channels, GATR_OUT_CHANNELS, config.s_channels, 0))


def _linear_params(fan_in: int, fan_out: int) -> int:
    return fan_in * fan_out + fan_out


def _transformer_params(c: TransformerConfig) -> int:
    w, hd = c.width, c.num_heads * c.head_dim
    block = (2 * (2 * w) + _linear_params(w, (c.num_heads + 2) * c.head_dim) + _linear_params(hd, w)
             + _linear_params(w, c.mlp_factor * w) + _linear_params(c.mlp_factor * w, w))
    return (_linear_params(c.embedding_features, w) + c.num_blocks * block + 2 * w
            + _linear_params(w, TRANSFORMER_OUT_FEATURES))


def config_num_params(config: GATrConfig | TransformerConfig) -> int:
    """Trainable parameters of a model built from `config` (analytic; equals the built model's count)."""
    return _gatr_params(config) if isinstance(config, GATrConfig) else _transformer_params(config)


def num_params(model: str, size: str) -> int:
    """Trainable parameters of a named model size."""
    return config_num_params(size_config(model, size))


# ---------------------------------------------------------------------------------------------
# FLOPs


def _dense(tokens, fan_in: int, fan_out: int, input_grad: bool = True, weight_grad: bool = True):
    """A (fan_in -> fan_out) matrix applied to `tokens` rows: 2 forward, +2 input grad, +2 weight grad."""
    return 2 * (1 + int(input_grad) + int(weight_grad)) * tokens * fan_in * fan_out


def _equilinear(tokens, in_mv: int, out_mv: int, in_s: int = 0, out_s: int = 0,
                input_grad: bool = True) -> tuple[float, float]:
    """(dense, other): the packed GEMM, and assembling its matrix from the 9 basis maps (once per step)."""
    gemm = _dense(tokens, in_mv * NUM_MV_COMPONENTS + in_s, out_mv * NUM_MV_COMPONENTS + out_s, input_grad)
    assemble = 2 * 2 * out_mv * in_mv * 9 * NUM_MV_COMPONENTS**2
    return gemm, assemble


def _attention(heads: int, width: int, squared_lengths):
    return 7 * 2 * heads * width * squared_lengths


def _local_and_global_blocks(num_blocks: int) -> tuple[int, int]:
    # blocks alternate object-local (even index) and global (odd index) attention
    return (num_blocks + 1) // 2, num_blocks // 2


def _gatr_flops(config: GATrConfig, s: BatchStructure) -> dict:
    t = s.tokens
    block = config.block()
    att, bil = block.attention(), block.bilinear()
    heads, odd, head_odd = att.num_heads, block.odd_channels, att.odd_per_head
    linears = [
        _equilinear(t, att.mv_channels, (heads + 2) * att.head_mv, att.s_channels, (heads + 2) * att.head_s),
        _equilinear(t, odd, (heads + 2) * head_odd, input_grad=False),
        _equilinear(t, heads * (att.head_mv + head_odd), att.mv_channels, heads * att.head_s, att.s_channels),
        _equilinear(t, bil.in_mv, 2 * bil.gp_channels + bil.join_channels, bil.in_s, 0),
        _equilinear(t, odd, bil.join_channels, input_grad=False),
        _equilinear(t, bil.gp_channels + bil.join_channels, bil.out_mv, bil.in_s, bil.out_s),
        _equilinear(t, bil.out_mv, config.mv_channels, bil.out_s, config.s_channels),
    ]
    tables = (
        # attended points times the query's own (25 component pairs), geometric products, joins
        _dense(t * heads * head_odd, NUM_V_COMPONENTS_PER_ODD**2, NUM_MV_COMPONENTS, weight_grad=False)
        + _dense(t * bil.gp_channels, GP_TABLE_PAIRS, NUM_MV_COMPONENTS, weight_grad=False)
        + 3 * _dense(t * bil.join_channels, NUM_MV_COMPONENTS, JOIN_TABLE_PAIRS, weight_grad=False)
    )
    local, global_ = _local_and_global_blocks(config.num_blocks)
    attention = (local * _attention(heads, att.padded_width, s.object_tokens_sq)
                 + global_ * _attention(heads, att.padded_width, s.scene_tokens_sq))
    embed = _equilinear(t, GATR_EVEN_CHANNELS, config.mv_channels, GATR_SCALAR_CHANNELS, config.s_channels,
                        input_grad=False)
    head = _equilinear(t, config.mv_channels, GATR_OUT_CHANNELS, config.s_channels, 0)
    dense = embed[0] + head[0] + config.num_blocks * sum(gemm for gemm, _ in linears)
    other = embed[1] + head[1] + config.num_blocks * (sum(assemble for _, assemble in linears) + tables)
    return {"dense": dense, "attention": attention, "other": other}


def _transformer_flops(c: TransformerConfig, s: BatchStructure) -> dict:
    t, w = s.tokens, c.width
    per_block = (_dense(t, w, (c.num_heads + 2) * c.head_dim) + _dense(t, c.num_heads * c.head_dim, w)
                 + _dense(t, w, c.mlp_factor * w) + _dense(t, c.mlp_factor * w, w))
    dense = (_dense(t, c.embedding_features, w, input_grad=False) + c.num_blocks * per_block
             + _dense(t, w, TRANSFORMER_OUT_FEATURES))
    local, global_ = _local_and_global_blocks(c.num_blocks)
    attention = (local * _attention(c.num_heads, c.padded_head_dim, s.object_tokens_sq)
                 + global_ * _attention(c.num_heads, c.padded_head_dim, s.scene_tokens_sq))
    # the frequency projection: a constant on a constant input, forward only
    other = 2 * t * POINTS_PER_FACE * 3 * c.rff_frequencies
    return {"dense": dense, "attention": attention, "other": other}


def config_step_flops(config: GATrConfig | TransformerConfig, structure: BatchStructure) -> dict:
    """Analytic forward+backward FLOPs of one training step of a model built from `config`."""
    if isinstance(config, GATrConfig):
        parts = _gatr_flops(config, structure)
    else:
        parts = _transformer_flops(config, structure)
    parts["total"] = parts["dense"] + parts["attention"] + parts["other"]
    return parts


def step_flops(model: str, size: str, structure: BatchStructure) -> dict:
    """Analytic forward+backward FLOPs of one training step: {dense, attention, other, total}."""
    return config_step_flops(size_config(model, size), structure)


def steps_for_budget(model: str, size: str, budget: float, structures: Callable[[int, int], BatchStructure],
                     guess: int, min_steps: int = 1) -> int:
    """The number of steps whose summed FLOPs lands closest to `budget` (at least `min_steps`).

    structures(start, stop): the exact structures of batches start..stop-1 (arrays; the loader's
    `BatchLoader.structures`); guess: a first estimate of the answer (e.g. budget over the expected
    FLOPs per step); more steps are asked for until the budget is passed.
    """
    if budget <= 0:
        raise ValueError(f"budget must be positive, got {budget}")
    cumulative = np.zeros(0)
    stop = max(int(guess * 1.1) + 16, min_steps)
    while True:
        flops = np.asarray(step_flops(model, size, structures(len(cumulative), stop))["total"], dtype=np.float64)
        offset = cumulative[-1] if len(cumulative) else 0.0
        cumulative = np.concatenate([cumulative, offset + np.cumsum(flops)])
        if cumulative[-1] >= budget:
            break
        stop = 2 * stop
    after = int(np.searchsorted(cumulative, budget))  # cumulative[after] >= budget: steps = after + 1
    steps = after + 1
    if after > 0 and budget - cumulative[after - 1] < cumulative[after] - budget:
        steps = after
    return max(steps, min_steps)


# ---------------------------------------------------------------------------------------------
# Memory
#
# Activations kept for the backward, in values per token, read off the tensors autograd saves (a
# `torch.autograd.graph.saved_tensors_hooks` census, deduplicated by storage: tests/models/
# test_memory.py checks these formulas against it for every size). "values" are in the activation
# dtype: 4 bytes in fp32, 2 under bf16 autocast (layer-norm statistics and the rigid fit stay fp32;
# they are small).


def _gatr_block_values(config: GATrConfig) -> tuple[int, int]:
    """(values per token kept by one block, values per token of its largest transient tensor)."""
    block = config.block()
    att, bil = block.attention(), block.bilinear()
    h, hm, hs, ho, w = att.num_heads, att.head_mv, att.head_s, att.odd_per_head, att.padded_width
    stream = config.mv_channels * NUM_MV_COMPONENTS + config.s_channels
    kept = (
        2 * (stream + 4)  # the two layer norms: input, output, statistics
        + stream  # input of the fused q/k/v projection
        + 15 * h * hm + 11 * hm + 15 * h * ho + 11 * ho  # distance features of queries and keys
        + 2 * h * w + 2 * w + h + 4  # attention: q, k, v and output in group order, log-sum-exp, permutations
        + h * w + (h + 2) * ho * NUM_MV_COMPONENTS  # attended points times the query's own
        + h * (hm + ho) * NUM_MV_COMPONENTS + h * hs  # input of the output projection
        + stream  # input of the bilinear's projection
        + (2 * bil.gp_channels + bil.join_channels) * NUM_MV_COMPONENTS  # product operands
        + 2 * bil.join_channels * JOIN_TABLE_PAIRS  # the selected join pairs
        + (bil.gp_channels + bil.join_channels) * NUM_MV_COMPONENTS + config.s_channels  # bilinear output layer
        + 2 * (bil.out_mv * NUM_MV_COMPONENTS + bil.out_s) + bil.out_mv  # gated GELU, MLP output layer
    )
    transient = bil.gp_channels * GP_TABLE_PAIRS  # all component products of the geometric products
    return kept, transient


def _gatr_assembled_values(config: GATrConfig) -> int:
    """Entries of the dense matrices the equivariant linear maps assemble each step (kept for the backward)."""
    block = config.block()
    att, bil = block.attention(), block.bilinear()
    h, odd, ho = att.num_heads, block.odd_channels, att.odd_per_head
    mv = NUM_MV_COMPONENTS

    def dense(in_mv: int, out_mv: int, in_s: int = 0, out_s: int = 0) -> int:
        return (in_mv * mv + in_s) * (out_mv * mv + out_s)

    per_block = (dense(att.mv_channels, (h + 2) * att.head_mv, att.s_channels, (h + 2) * att.head_s)
                 + dense(odd, (h + 2) * ho) + dense(h * (att.head_mv + ho), att.mv_channels, h * att.head_s,
                                                    att.s_channels)
                 + dense(bil.in_mv, 2 * bil.gp_channels + bil.join_channels, bil.in_s) + dense(odd, bil.join_channels)
                 + dense(bil.gp_channels + bil.join_channels, bil.out_mv, bil.in_s, bil.out_s)
                 + dense(bil.out_mv, config.mv_channels, bil.out_s, config.s_channels))
    return (dense(GATR_EVEN_CHANNELS, config.mv_channels, GATR_SCALAR_CHANNELS, config.s_channels)
            + config.num_blocks * per_block + dense(config.mv_channels, GATR_OUT_CHANNELS, config.s_channels))


def _transformer_block_values(c: TransformerConfig) -> tuple[int, int]:
    """(values per token kept by one block, values per token of its largest transient tensor)."""
    w, h = c.width, c.num_heads
    kept = (2 * (2 * w + 2)  # the two layer norms: input, output, statistics
            + 2 * h * c.padded_head_dim + 2 * c.padded_head_dim + h + 4  # attention in group order, permutations
            + h * c.head_dim  # input of the output projection
            + 2 * c.mlp_factor * w)  # MLP hidden before and after GELU
    return kept, c.mlp_factor * w


RIGID_FIT_VALUES = 30  # corners, centred corners, per-vertex rotations: about 30 values per face


def activation_values_per_token(model: str, size: str) -> dict:
    """{kept, transient}: values per token kept for the backward by the whole network, and the largest
    transient tensor of one block."""
    config = size_config(model, size)
    if isinstance(config, GATrConfig):
        block, transient = _gatr_block_values(config)
        stream = config.mv_channels * NUM_MV_COMPONENTS + config.s_channels
        outside = (GATR_EVEN_CHANNELS * NUM_MV_COMPONENTS + GATR_SCALAR_CHANNELS  # input projection
                   + GATR_ODD_CHANNELS * NUM_MV_COMPONENTS + stream + RIGID_FIT_VALUES)  # points; output projection
    else:
        block, transient = _transformer_block_values(config)
        outside = config.embedding_features + 3 * config.width + 2 + RIGID_FIT_VALUES
    return {"kept": outside + config.num_blocks * block, "block": block, "transient": transient}


def peak_memory_bytes(model: str, size: str, structure: BatchStructure, dtype_bytes: int = 4,
                      training: bool = True) -> dict:
    """Estimated peak memory of one step: {params, optimizer, activations, total} in bytes.

    Parameters are fp32 (autocast keeps them so); training adds their gradients and AdamW's two
    moments (`optimizer`), and `activations`: what autograd keeps for the backward (`dtype_bytes` per
    value: 4 in fp32, 2 under bf16 autocast), GATr's assembled dense weight matrices, and a working
    set of one block's activations and its largest transient (the backward frees the kept tensors as
    it goes, but holds gradients of that size). Inference keeps only the working set. Measured peaks
    are in bench/RESULTS.md (bench/bench_train.py --memory).
    """
    config = size_config(model, size)
    values = activation_values_per_token(model, size)
    working = values["block"] + values["transient"]
    per_token = (values["kept"] + working) if training else working
    activations = structure.tokens * per_token * dtype_bytes
    if isinstance(config, GATrConfig):
        activations = activations + _gatr_assembled_values(config) * dtype_bytes
    params = 4 * config_num_params(config)
    optimizer = params * (1 + ADAMW_STATE_PER_PARAM) if training else 0
    total = params + optimizer + activations
    return {"params": params, "optimizer": optimizer, "activations": activations, "total": total}


def flops_per_token(model: str, size: str, structure: BatchStructure) -> float:
    """Forward+backward FLOPs per real token of a batch of this structure."""
    return float(step_flops(model, size, structure)["total"] / structure.tokens)

