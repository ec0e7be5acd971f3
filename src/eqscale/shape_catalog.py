"""The shape catalog: the 11 KuBasic-like shapes and the smallest face budget each can be built at.

Config validation checks `assets.max_faces` against these before any stage runs. They live in
this import-free module, below both `eqscale.config` and the mesh builders in `eqscale.physics`,
so validating a config never imports the builders.
"""

from __future__ import annotations

SHAPE_NAMES: tuple[str, ...] = ("cube", "cylinder", "sphere", "cone", "torus", "gear", "torus_knot", "sponge",
                                "spot", "teapot", "suzanne")

MIN_FACES: dict[str, int] = {
    "cube": 12,  # the box itself
    "cylinder": 32,  # 8 sections: 8 side quads + two 8-triangle fans
    "sphere": 20,  # the icosahedron
    "cone": 16,  # 8 sections: a base fan + a side fan
    "torus": 48,  # 6 ring sections x 4 tube sections x 2
    "gear": 96,  # 12 pointed teeth: 24-point outline, side quads + two fans
    "torus_knot": 96,  # 16 sections along the knot x 3 around x 2
    "sponge": 96,  # see shapes_parametric._sponge_coarse
    # implicit shapes: the least budget at which decimation keeps them closed and recognisable
    "spot": 96,
    "teapot": 96,
    "suzanne": 96,
}

# shapes whose face count does not follow the budget; every other shape is built at (almost exactly) its
# budget, so planning takes max_faces for them (the tokenizer measures the real counts)
FIXED_FACES: dict[str, int] = {"cube": 12}


def nominal_faces(shape: str, max_faces: int) -> int:
    """The face count a shape is planned with at a budget (the budget itself unless its count is fixed)."""
    return FIXED_FACES.get(shape, max_faces)
