"""The Utah teapot as a closed solid, from Martin Newell's published Bezier patches.

The patch data are open (the original has no bottom and its spout and handle run into the body),
so the solid is built from them as a signed distance field: the body and lid are the solid of
revolution of the patches' profile curves (their y = 0 edges), and the spout and handle are swept
tubes of elliptical cross-section whose centres and half-axes come from the patches' cross-sections.
`shapes_implicit` meshes the union with marching cubes.
"""

from __future__ import annotations

import functools

import numpy as np
from matplotlib.path import Path
from scipy.spatial import cKDTree

from eqscale.physics.sdf import smooth_union

# Martin Newell's teapot (1975), the public-domain 32-patch / 306-vertex data set as distributed in
# Juhana Kouhia's "teasetorig" archive; this table was transcribed from the copy in CHAI3D
# (src/graphics/CPrimitives.cpp), which prints 2.53125 as 2.5312. Data, not code. Vertices are
# (x, y, z) with z up; patches list 16 one-based vertex indices, row-major 4 x 4 control nets.
_VERTICES = """
    1.4 0 2.4,  1.4 -0.784 2.4,  0.784 -1.4 2.4,  0 -1.4 2.4,  1.3375 0 2.5312
    1.3375 -0.749 2.5312,  0.749 -1.3375 2.5312,  0 -1.3375 2.5312,  1.4375 0 2.5312,  1.4375 -0.805 2.5312
    0.805 -1.4375 2.5312,  0 -1.4375 2.5312,  1.5 0 2.4,  1.5 -0.84 2.4,  0.84 -1.5 2.4
    0 -1.5 2.4,  -0.784 -1.4 2.4,  -1.4 -0.784 2.4,  -1.4 0 2.4,  -0.749 -1.3375 2.5312
    -1.3375 -0.749 2.5312,  -1.3375 0 2.5312,  -0.805 -1.4375 2.5312,  -1.4375 -0.805 2.5312,  -1.4375 0 2.5312
    -0.84 -1.5 2.4,  -1.5 -0.84 2.4,  -1.5 0 2.4,  -1.4 0.784 2.4,  -0.784 1.4 2.4
    0 1.4 2.4,  -1.3375 0.749 2.5312,  -0.749 1.3375 2.5312,  0 1.3375 2.5312,  -1.4375 0.805 2.5312
    -0.805 1.4375 2.5312,  0 1.4375 2.5312,  -1.5 0.84 2.4,  -0.84 1.5 2.4,  0 1.5 2.4
    0.784 1.4 2.4,  1.4 0.784 2.4,  0.749 1.3375 2.5312,  1.3375 0.749 2.5312,  0.805 1.4375 2.5312
    1.4375 0.805 2.5312,  0.84 1.5 2.4,  1.5 0.84 2.4,  1.75 0 1.875,  1.75 -0.98 1.875
    0.98 -1.75 1.875,  0 -1.75 1.875,  2 0 1.35,  2 -1.12 1.35,  1.12 -2 1.35
    0 -2 1.35,  2 0 0.9,  2 -1.12 0.9,  1.12 -2 0.9,  0 -2 0.9
    -0.98 -1.75 1.875,  -1.75 -0.98 1.875,  -1.75 0 1.875,  -1.12 -2 1.35,  -2 -1.12 1.35
    -2 0 1.35,  -1.12 -2 0.9,  -2 -1.12 0.9,  -2 0 0.9,  -1.75 0.98 1.875
    -0.98 1.75 1.875,  0 1.75 1.875,  -2 1.12 1.35,  -1.12 2 1.35,  0 2 1.35
    -2 1.12 0.9,  -1.12 2 0.9,  0 2 0.9,  0.98 1.75 1.875,  1.75 0.98 1.875
    1.12 2 1.35,  2 1.12 1.35,  1.12 2 0.9,  2 1.12 0.9,  2 0 0.45
    2 -1.12 0.45,  1.12 -2 0.45,  0 -2 0.45,  1.5 0 0.225,  1.5 -0.84 0.225
    0.84 -1.5 0.225,  0 -1.5 0.225,  1.5 0 0.15,  1.5 -0.84 0.15,  0.84 -1.5 0.15
    0 -1.5 0.15,  -1.12 -2 0.45,  -2 -1.12 0.45,  -2 0 0.45,  -0.84 -1.5 0.225
    -1.5 -0.84 0.225,  -1.5 0 0.225,  -0.84 -1.5 0.15,  -1.5 -0.84 0.15,  -1.5 0 0.15
    -2 1.12 0.45,  -1.12 2 0.45,  0 2 0.45,  -1.5 0.84 0.225,  -0.84 1.5 0.225
    0 1.5 0.225,  -1.5 0.84 0.15,  -0.84 1.5 0.15,  0 1.5 0.15,  1.12 2 0.45
    2 1.12 0.45,  0.84 1.5 0.225,  1.5 0.84 0.225,  0.84 1.5 0.15,  1.5 0.84 0.15
    -1.6 0 2.025,  -1.6 -0.3 2.025,  -1.5 -0.3 2.25,  -1.5 0 2.25,  -2.3 0 2.025
    -2.3 -0.3 2.025,  -2.5 -0.3 2.25,  -2.5 0 2.25,  -2.7 0 2.025,  -2.7 -0.3 2.025
    -3 -0.3 2.25,  -3 0 2.25,  -2.7 0 1.8,  -2.7 -0.3 1.8,  -3 -0.3 1.8
    -3 0 1.8,  -1.5 0.3 2.25,  -1.6 0.3 2.025,  -2.5 0.3 2.25,  -2.3 0.3 2.025
    -3 0.3 2.25,  -2.7 0.3 2.025,  -3 0.3 1.8,  -2.7 0.3 1.8,  -2.7 0 1.575
    -2.7 -0.3 1.575,  -3 -0.3 1.35,  -3 0 1.35,  -2.5 0 1.125,  -2.5 -0.3 1.125
    -2.65 -0.3 0.9375,  -2.65 0 0.9375,  -2 -0.3 0.9,  -1.9 -0.3 0.6,  -1.9 0 0.6
    -3 0.3 1.35,  -2.7 0.3 1.575,  -2.65 0.3 0.9375,  -2.5 0.3 1.125,  -1.9 0.3 0.6
    -2 0.3 0.9,  1.7 0 1.425,  1.7 -0.66 1.425,  1.7 -0.66 0.6,  1.7 0 0.6
    2.6 0 1.425,  2.6 -0.66 1.425,  3.1 -0.66 0.825,  3.1 0 0.825,  2.3 0 2.1
    2.3 -0.25 2.1,  2.4 -0.25 2.025,  2.4 0 2.025,  2.7 0 2.4,  2.7 -0.25 2.4
    3.3 -0.25 2.4,  3.3 0 2.4,  1.7 0.66 0.6,  1.7 0.66 1.425,  3.1 0.66 0.825
    2.6 0.66 1.425,  2.4 0.25 2.025,  2.3 0.25 2.1,  3.3 0.25 2.4,  2.7 0.25 2.4
    2.8 0 2.475,  2.8 -0.25 2.475,  3.525 -0.25 2.4938,  3.525 0 2.4938,  2.9 0 2.475
    2.9 -0.15 2.475,  3.45 -0.15 2.5125,  3.45 0 2.5125,  2.8 0 2.4,  2.8 -0.15 2.4
    3.2 -0.15 2.4,  3.2 0 2.4,  3.525 0.25 2.4938,  2.8 0.25 2.475,  3.45 0.15 2.5125
    2.9 0.15 2.475,  3.2 0.15 2.4,  2.8 0.15 2.4,  0 0 3.15,  0 -0.002 3.15
    0.002 0 3.15,  0.8 0 3.15,  0.8 -0.45 3.15,  0.45 -0.8 3.15,  0 -0.8 3.15
    0 0 2.85,  0.2 0 2.7,  0.2 -0.112 2.7,  0.112 -0.2 2.7,  0 -0.2 2.7
    -0.002 0 3.15,  -0.45 -0.8 3.15,  -0.8 -0.45 3.15,  -0.8 0 3.15,  -0.112 -0.2 2.7
    -0.2 -0.112 2.7,  -0.2 0 2.7,  0 0.002 3.15,  -0.8 0.45 3.15,  -0.45 0.8 3.15
    0 0.8 3.15,  -0.2 0.112 2.7,  -0.112 0.2 2.7,  0 0.2 2.7,  0.45 0.8 3.15
    0.8 0.45 3.15,  0.112 0.2 2.7,  0.2 0.112 2.7,  0.4 0 2.55,  0.4 -0.224 2.55
    0.224 -0.4 2.55,  0 -0.4 2.55,  1.3 0 2.55,  1.3 -0.728 2.55,  0.728 -1.3 2.55
    0 -1.3 2.55,  1.3 0 2.4,  1.3 -0.728 2.4,  0.728 -1.3 2.4,  0 -1.3 2.4
    -0.224 -0.4 2.55,  -0.4 -0.224 2.55,  -0.4 0 2.55,  -0.728 -1.3 2.55,  -1.3 -0.728 2.55
    -1.3 0 2.55,  -0.728 -1.3 2.4,  -1.3 -0.728 2.4,  -1.3 0 2.4,  -0.4 0.224 2.55
    -0.224 0.4 2.55,  0 0.4 2.55,  -1.3 0.728 2.55,  -0.728 1.3 2.55,  0 1.3 2.55
    -1.3 0.728 2.4,  -0.728 1.3 2.4,  0 1.3 2.4,  0.224 0.4 2.55,  0.4 0.224 2.55
    0.728 1.3 2.55,  1.3 0.728 2.55,  0.728 1.3 2.4,  1.3 0.728 2.4,  0 0 0
    1.5 0 0.15,  1.5 0.84 0.15,  0.84 1.5 0.15,  0 1.5 0.15,  1.5 0 0.075
    1.5 0.84 0.075,  0.84 1.5 0.075,  0 1.5 0.075,  1.425 0 0,  1.425 0.798 0
    0.798 1.425 0,  0 1.425 0,  -0.84 1.5 0.15,  -1.5 0.84 0.15,  -1.5 0 0.15
    -0.84 1.5 0.075,  -1.5 0.84 0.075,  -1.5 0 0.075,  -0.798 1.425 0,  -1.425 0.798 0
    -1.425 0 0,  -1.5 -0.84 0.15,  -0.84 -1.5 0.15,  0 -1.5 0.15,  -1.5 -0.84 0.075
    -0.84 -1.5 0.075,  0 -1.5 0.075,  -1.425 -0.798 0,  -0.798 -1.425 0,  0 -1.425 0
    0.84 -1.5 0.15,  1.5 -0.84 0.15,  0.84 -1.5 0.075,  1.5 -0.84 0.075,  0.798 -1.425 0
    1.425 -0.798 0
"""

_PATCHES = """
      1   2   3   4   5   6   7   8   9  10  11  12  13  14  15  16
      4  17  18  19   8  20  21  22  12  23  24  25  16  26  27  28
     19  29  30  31  22  32  33  34  25  35  36  37  28  38  39  40
     31  41  42   1  34  43  44   5  37  45  46   9  40  47  48  13
     13  14  15  16  49  50  51  52  53  54  55  56  57  58  59  60
     16  26  27  28  52  61  62  63  56  64  65  66  60  67  68  69
     28  38  39  40  63  70  71  72  66  73  74  75  69  76  77  78
     40  47  48  13  72  79  80  49  75  81  82  53  78  83  84  57
     57  58  59  60  85  86  87  88  89  90  91  92  93  94  95  96
     60  67  68  69  88  97  98  99  92 100 101 102  96 103 104 105
     69  76  77  78  99 106 107 108 102 109 110 111 105 112 113 114
     78  83  84  57 108 115 116  85 111 117 118  89 114 119 120  93
    121 122 123 124 125 126 127 128 129 130 131 132 133 134 135 136
    124 137 138 121 128 139 140 125 132 141 142 129 136 143 144 133
    133 134 135 136 145 146 147 148 149 150 151 152  69 153 154 155
    136 143 144 133 148 156 157 145 152 158 159 149 155 160 161  69
    162 163 164 165 166 167 168 169 170 171 172 173 174 175 176 177
    165 178 179 162 169 180 181 166 173 182 183 170 177 184 185 174
    174 175 176 177 186 187 188 189 190 191 192 193 194 195 196 197
    177 184 185 174 189 198 199 186 193 200 201 190 197 202 203 194
    204 204 204 204 207 208 209 210 211 211 211 211 212 213 214 215
    204 204 204 204 210 217 218 219 211 211 211 211 215 220 221 222
    204 204 204 204 219 224 225 226 211 211 211 211 222 227 228 229
    204 204 204 204 226 230 231 207 211 211 211 211 229 232 233 212
    212 213 214 215 234 235 236 237 238 239 240 241 242 243 244 245
    215 220 221 222 237 246 247 248 241 249 250 251 245 252 253 254
    222 227 228 229 248 255 256 257 251 258 259 260 254 261 262 263
    229 232 233 212 257 264 265 234 260 266 267 238 263 268 269 242
    270 270 270 270 279 280 281 282 275 276 277 278 271 272 273 274
    270 270 270 270 282 289 290 291 278 286 287 288 274 283 284 285
    270 270 270 270 291 298 299 300 288 295 296 297 285 292 293 294
    270 270 270 270 300 305 306 279 297 303 304 275 294 301 302 271
"""

# patch roles in the data set (zero-based patch numbers)
_RIM, _BODY_UPPER, _BODY_LOWER, _LID_KNOB, _LID, _BOTTOM = 0, 4, 8, 20, 24, 28
_HANDLE = (12, 14)  # upper then lower half-tube on the -y side (13 and 15 mirror them)
_SPOUT = (16, 18)  # body-side then tip half-tube on the -y side (17 and 19 mirror them)
_LID_JOIN_RADIUS = 1.2  # the outline goes from the top of the rim's lip to the lid inside this radius
_SPOUT_TIP_END = 0.5  # the tip patch curls back into the opening past here: stop at the lip
# distances are computed exactly only up to this (teapot units, ~5 marching-cubes cells): beyond it
# only the sign matters, and the smooth union (width 0.06) is unaffected
_FAR = 0.5


@functools.lru_cache(maxsize=1)
def control_nets() -> np.ndarray:
    """All 32 patches' control nets, (32, 4, 4, 3): [patch, row, column, xyz]."""
    vertices = np.array(_VERTICES.replace(",", " ").split(), float).reshape(-1, 3)
    patches = np.array(_PATCHES.split(), int).reshape(-1, 16) - 1
    if vertices.shape != (306, 3) or patches.shape != (32, 16):
        raise RuntimeError(f"teapot data table damaged: {vertices.shape} vertices, {patches.shape} patches")
    return vertices[patches].reshape(32, 4, 4, 3)


def _bernstein(t: np.ndarray) -> np.ndarray:
    """Cubic Bernstein basis at parameters t: (len(t), 4)."""
    t = np.asarray(t, float)[:, None]
    return np.hstack([(1 - t) ** 3, 3 * t * (1 - t) ** 2, 3 * t**2 * (1 - t), t**3])


def patch_points(patch: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Points of a patch on the grid u (columns) x v (rows): (len(v), len(u), 3)."""
    return np.einsum("ai,bj,ijk->abk", _bernstein(v), _bernstein(u), control_nets()[patch])


def _profile_curve(patch: int, samples: int) -> np.ndarray:
    """The patch's edge in the y = 0, x >= 0 half-plane as (r, z) points (body patches: column 0)."""
    net = control_nets()[patch][:, 0]
    if not (np.all(net[:, 1] == 0) and np.all(net[:, 0] >= 0)):
        raise RuntimeError(f"teapot patch {patch}: column 0 is not a profile curve")
    curve = _bernstein(np.linspace(0, 1, samples)) @ net
    return curve[:, [0, 2]]


@functools.lru_cache(maxsize=1)
def body_profile() -> np.ndarray:
    """Closed (r, z) outline of body and lid, counter-clockwise, first = last point on the axis.

    Chained from the axis at the bottom, up the body to the top of the rim's lip, across to the lid,
    up the lid and its knob back to the axis; the axis closes it. The lip's inner half and the lid's
    outer rim are left out: together they form a groove ~0.1 wide (a marching-cubes cell) that
    could only be resolved as jagged noise.
    """
    def oriented(curve, after):
        # each curve runs in the data's own direction: start it at the end nearest the chain
        return curve[::-1] if np.linalg.norm(curve[-1] - after) < np.linalg.norm(curve[0] - after) else curve

    chain = [np.array([[0.0, 0.0]])]
    for patch in (_BOTTOM, _BODY_LOWER, _BODY_UPPER):
        chain.append(oriented(_profile_curve(patch, 17), chain[-1][-1])[1:])
    rim = oriented(_profile_curve(_RIM, 17), chain[-1][-1])
    chain.append(rim[1:np.argmax(rim[:, 1]) + 1])
    lid = oriented(_profile_curve(_LID, 17), np.array([_LID_JOIN_RADIUS + 1, 0.0]))  # from its outer edge
    chain.append(lid[lid[:, 0] <= _LID_JOIN_RADIUS])
    chain.append(oriented(_profile_curve(_LID_KNOB, 17), chain[-1][-1])[1:])
    outline = np.vstack(chain)
    return np.vstack([outline, outline[:1]])


@functools.lru_cache(maxsize=2)
def tube_sections(patches: tuple[int, int], end: float, samples: int = 12) -> np.ndarray:
    """Elliptical cross-sections along a handle or spout: (n, 4) rows (x, z, half_w, half_y).

    Each row of a half-tube patch is half a cross-section from its top (u = 0) to its bottom (u = 1)
    edge, both on y = 0: the centre is their midpoint, half_w half their distance (in the x-z
    plane) and half_y the section's reach in y at u = 1/2. The tube lies in the x-z plane.
    """
    rows = []
    for k, patch in enumerate(patches):
        v = np.linspace(0, end if k == len(patches) - 1 else 1, samples)
        if k:
            v = v[1:]  # the next patch starts where the previous one ended
        section = patch_points(patch, np.array([0.0, 0.5, 1.0]), v)
        top, side, bottom = section[:, 0], section[:, 1], section[:, 2]
        centre = 0.5 * (top + bottom)
        rows.append(np.column_stack([centre[:, 0], centre[:, 2], 0.5 * np.linalg.norm(top - bottom, axis=1),
                                     np.abs(side[:, 1])]))
    return np.vstack(rows)


def _profile_sdf(points: np.ndarray, outline: np.ndarray) -> np.ndarray:
    """Signed distance to the solid of revolution about z of a closed (r, z) outline."""
    rz = np.column_stack([np.linalg.norm(points[:, :2], axis=1), points[:, 2]])
    # distance to the outline sampled densely (spacing ~0.005 teapot units, ~1/1300 of its length)
    seg = np.diff(outline, axis=0)
    counts = np.maximum(1, np.ceil(np.linalg.norm(seg, axis=1) / 0.005)).astype(int)
    dense = np.vstack([outline[i] + np.linspace(0, 1, n, endpoint=False)[:, None] * seg[i]
                       for i, n in enumerate(counts)])
    distance, _ = cKDTree(dense).query(rz, distance_upper_bound=_FAR)
    distance = np.minimum(distance, _FAR)  # points farther than _FAR come back as inf
    inside = Path(outline, closed=True).contains_points(rz)
    return np.where(inside, -distance, distance)


def _elliptic_tube_sdf(points: np.ndarray, sections: np.ndarray) -> np.ndarray:
    """Approximate signed distance to a chain of capsules with elliptical cross-sections.

    Each pair of consecutive sections spans a capsule around the segment between their centres; the
    offset of a point from its nearest point on the segment is measured with half-axis half_y along
    y and half_w in the x-z plane (half-axes interpolated along the segment), ellipse distance as
    k0 (k0 - 1) / k1 (a first-order estimate, exact on the surface).
    """
    # only points near the tube need its distance; elsewhere `_FAR` (a lower bound there) keeps
    # the sign right and leaves the smooth union untouched
    reach = sections[:, 2:].max() + _FAR
    low = np.array([sections[:, 0].min() - reach, -reach, sections[:, 1].min() - reach])
    high = np.array([sections[:, 0].max() + reach, reach, sections[:, 1].max() + reach])
    near = np.all((points >= low) & (points <= high), axis=1)
    result = np.full(len(points), _FAR)
    points = points[near]
    xz = points[:, [0, 2]]
    y = points[:, 1]
    best = np.full(len(points), np.inf)
    for a, b in zip(sections[:-1], sections[1:]):
        ab = b[:2] - a[:2]
        h = np.clip(((xz - a[:2]) @ ab) / (ab @ ab), 0.0, 1.0)
        in_plane = np.linalg.norm(xz - (a[:2] + h[:, None] * ab), axis=1)
        half_w = a[2] + h * (b[2] - a[2])
        half_y = a[3] + h * (b[3] - a[3])
        k0 = np.hypot(in_plane / half_w, y / half_y)
        k1 = np.hypot(in_plane / half_w**2, y / half_y**2)
        best = np.minimum(best, k0 * (k0 - 1) / np.maximum(k1, 1e-12))
    result[near] = np.minimum(best, _FAR)
    return result


def teapot_sdf(points: np.ndarray, smooth: float = 0.06) -> np.ndarray:
    """Signed distance (teapot units: z up, spout towards +x) of body, spout and handle, smoothly joined."""
    d = _profile_sdf(points, body_profile())
    d = smooth_union(d, _elliptic_tube_sdf(points, tube_sections(_SPOUT, _SPOUT_TIP_END)), smooth)
    return smooth_union(d, _elliptic_tube_sdf(points, tube_sections(_HANDLE, 1.0)), smooth)


TEAPOT_BOUNDS = ((-3.1, -2.1, -0.1), (3.6, 2.1, 3.25))  # teapot units, around the solid with a margin
