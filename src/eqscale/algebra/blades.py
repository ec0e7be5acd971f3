"""Basis blades of the projective geometric algebra G(3,0,1) and the rule for multiplying them.

Generators e0, e1, e2, e3 with e0^2 = 0 (the ideal plane) and e1^2 = e2^2 = e3^2 = 1. A basis
blade is an ascending tuple of generator indices; the 16 blades are ordered by grade, then
lexicographically, matching the reference GATr:

    [1, e0, e1, e2, e3, e01, e02, e03, e12, e13, e23, e012, e013, e023, e123, e0123]

Everything else (product tables, dual, linear basis) is derived from `blade_product` in code.
"""

from __future__ import annotations

import itertools

NUM_COMPONENTS = 16
METRIC = (0, 1, 1, 1)  # e0^2, e1^2, e2^2, e3^2

BLADES: tuple[tuple[int, ...], ...] = tuple(
    blade for grade in range(5) for blade in itertools.combinations(range(4), grade)
)
BLADE_NAMES: tuple[str, ...] = tuple("1" if not b else "e" + "".join(map(str, b)) for b in BLADES)
BLADE_INDEX: dict[tuple[int, ...], int] = {blade: i for i, blade in enumerate(BLADES)}
GRADES: tuple[int, ...] = tuple(len(b) for b in BLADES)
# component indices of each grade, e.g. GRADE_SLICES[3] = range(11, 15)
GRADE_INDICES: tuple[tuple[int, ...], ...] = tuple(
    tuple(i for i, g in enumerate(GRADES) if g == grade) for grade in range(5)
)
# components whose blade contains e0 (they square to zero and drop out of the inner product)
IDEAL_INDICES: tuple[int, ...] = tuple(i for i, b in enumerate(BLADES) if 0 in b)
EUCLIDEAN_INDICES: tuple[int, ...] = tuple(i for i, b in enumerate(BLADES) if 0 not in b)


def blade_product(left: tuple[int, ...], right: tuple[int, ...]) -> tuple[int, tuple[int, ...]]:
    """Geometric product of two basis blades as (sign in {-1, 0, 1}, resulting blade)."""
    factors = list(left) + list(right)
    sign = 1
    # bubble sort the generator list; each swap of two different anticommuting generators flips sign
    for end in range(len(factors) - 1, 0, -1):
        for i in range(end):
            if factors[i] > factors[i + 1]:
                factors[i], factors[i + 1] = factors[i + 1], factors[i]
                sign = -sign
    # contract adjacent equal generators with the metric
    result: list[int] = []
    for generator in factors:
        if result and result[-1] == generator:
            result.pop()
            sign *= METRIC[generator]
        else:
            result.append(generator)
    return sign, tuple(result)


def outer_blade_product(left: tuple[int, ...], right: tuple[int, ...]) -> tuple[int, tuple[int, ...]]:
    """Outer (wedge) product of two basis blades: the geometric product if they share no generator."""
    if set(left) & set(right):
        return 0, ()
    return blade_product(left, right)
