"""Geometry of the scene paradigms: shape kinds, Tetromino pieces, rasterisation, bouncing.

A pixel ``(i, j)`` (row, column) belongs to a shape when its centre ``(i + ½, j + ½)`` lies
inside it. Every shape is placed by the top-left corner ``(row, col)`` of its bounding box;
with ``u = j + ½ − col`` and ``v = i + ½ − row`` the pixel centre relative to that corner:

- ``square`` of side ``s``: ``0 ≤ u < s`` and ``0 ≤ v < s`` (``s²`` pixels);
- ``triangle_up`` of height ``h`` (base ``2h − 1``, apex at the top): ``0 ≤ v < h`` and
  ``|u − (h − ½)| < v`` — row ``r`` of the box covers ``2r + 1`` pixels, ``h²`` in all;
- ``triangle_down``: the same flipped, ``|u − (h − ½)| < h − v`` (base at the top);
- ``circle`` of diameter ``s``: ``(2u − s)² + (2v − s)² < s²``;
- Tetromino pieces of four ``b × b`` blocks: the block ``(⌊v / b⌋, ⌊u / b⌋)`` is one of the
  piece's cells (``4b²`` pixels).

At whole-pixel positions the counts in brackets are exact.
"""

from __future__ import annotations

import numpy as np

#: Shape kinds of the greyscale and coloured shape scenes (codes 0–3).
SHAPE_KINDS: tuple[str, ...] = ("square", "triangle_up", "triangle_down", "circle")
_SQUARE, _UP, _DOWN, _CIRCLE = range(4)


def _tetrominoes() -> tuple[tuple[str, ...], np.ndarray]:
    """The 19 fixed Tetromino pieces (7 shapes × their distinct rotations) as ``[19, 4, 4]``."""
    base = {
        "I": [(0, 0), (0, 1), (0, 2), (0, 3)],
        "O": [(0, 0), (0, 1), (1, 0), (1, 1)],
        "T": [(0, 0), (0, 1), (0, 2), (1, 1)],
        "S": [(0, 1), (0, 2), (1, 0), (1, 1)],
        "Z": [(0, 0), (0, 1), (1, 1), (1, 2)],
        "L": [(0, 0), (1, 0), (2, 0), (2, 1)],
        "J": [(0, 1), (1, 1), (2, 1), (2, 0)],
    }
    names, bitmaps = [], []
    for letter, cells in base.items():
        seen: list[frozenset] = []
        c = np.array(cells)
        for _ in range(4):
            c = np.stack([c[:, 1], -c[:, 0]], 1)  # rotate by 90°
            c = c - c.min(0)
            key = frozenset(map(tuple, c.tolist()))
            if key not in seen:
                seen.append(key)
                bitmap = np.zeros((4, 4), bool)
                bitmap[c[:, 0], c[:, 1]] = True
                names.append(f"{letter}{len(seen) - 1}")
                bitmaps.append(bitmap)
    return tuple(names), np.stack(bitmaps)


#: Names (``"I0"``, ``"I1"``, ``"O0"``, ``"T0"`` … ``"J3"``) and ``[19, 4, 4]`` cell bitmaps.
TETROMINO_NAMES, TETROMINO_CELLS = _tetrominoes()
#: Six saturated colours of the Tetrominoes scenes (red, green, blue, yellow, magenta, cyan).
TETROMINO_COLORS = np.array(
    [[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [1, 0, 1], [0, 1, 1]], dtype=np.float32
)
KIND_NAMES: tuple[str, ...] = SHAPE_KINDS + TETROMINO_NAMES
_N_SHAPES = len(SHAPE_KINDS)


def box_extent(kind: np.ndarray, size: np.ndarray, block: int) -> np.ndarray:
    """Bounding-box ``(height, width)`` in pixels, ``int64 [..., 2]``, of objects of codes
    ``kind`` (indices into :data:`KIND_NAMES`) and ``size`` (side, height or diameter)."""
    kind, size = np.asarray(kind), np.asarray(size, dtype=np.int64)
    tri = (kind == _UP) | (kind == _DOWN)
    piece = np.clip(kind - _N_SHAPES, 0, None)
    rows = TETROMINO_CELLS.any(2).sum(1)[piece] * block
    cols = TETROMINO_CELLS.any(1).sum(1)[piece] * block
    is_piece = kind >= _N_SHAPES
    height = np.where(is_piece, rows, size)
    width = np.where(is_piece, cols, np.where(tri, 2 * size - 1, size))
    return np.stack([height, width], -1).astype(np.int64)


def rasterise(
    kind: np.ndarray, size: np.ndarray, position: np.ndarray, shape: tuple[int, int], block: int
) -> np.ndarray:
    """Coverage masks of objects: ``bool [N, T, H, W]``.

    ``kind``, ``size`` are ``[N]`` (codes into :data:`KIND_NAMES`, side / height / diameter),
    ``position [N, T, 2]`` the top-left ``(row, col)`` of each object's box at each step.
    """
    h, w = shape
    n, t = position.shape[:2]
    out = np.zeros((n, t, h, w), bool)
    rows = np.arange(h, dtype=np.float64) + 0.5
    cols = np.arange(w, dtype=np.float64) + 0.5
    for code in np.unique(kind):
        idx = np.flatnonzero(kind == code)
        v = rows[None, None, :, None] - position[idx, :, 0, None, None]  # [n, T, H, 1]
        u = cols[None, None, None, :] - position[idx, :, 1, None, None]  # [n, T, 1, W]
        s = size[idx].astype(np.float64)[:, None, None, None]
        if code == _SQUARE:
            m = (v >= 0) & (v < s) & (u >= 0) & (u < s)
        elif code in (_UP, _DOWN):
            d = np.abs(u - (s - 0.5))
            m = (v >= 0) & (v < s) & (d < (v if code == _UP else s - v))
        elif code == _CIRCLE:
            m = np.square(2 * u - s) + np.square(2 * v - s) < s * s
        else:
            ci, cj = np.floor(v / block), np.floor(u / block)
            inside = (ci >= 0) & (ci < 4) & (cj >= 0) & (cj < 4)
            ci = np.clip(ci, 0, 3).astype(np.intp)
            cj = np.clip(cj, 0, 3).astype(np.intp)
            m = inside & TETROMINO_CELLS[code - _N_SHAPES][ci, cj]
        out[idx] = m
    return out


def bounce(start: np.ndarray, velocity: np.ndarray, room: np.ndarray, n_steps: int) -> tuple:
    """Constant-velocity motion reflected at the walls, in closed form.

    ``start``, ``velocity``, ``room`` are ``[..., 2]``: the box corner moves in ``[0, room]``
    along each axis and bounces elastically off both ends. Returns positions and velocities
    ``[..., T, 2]`` for steps ``0 … T−1`` (the velocity of a step is the one it leaves with).
    """
    t = np.arange(n_steps, dtype=np.float64)[:, None]
    free = start[..., None, :] + velocity[..., None, :] * t  # [..., T, 2]
    room = np.broadcast_to(room[..., None, :], free.shape).astype(np.float64)
    period = np.where(room > 0, 2 * room, 1.0)
    phase = np.mod(free, period)
    pos = np.where(room > 0, room - np.abs(room - phase), 0.0)
    sign = np.where(phase < room, 1.0, -1.0)
    vel = np.where(room > 0, velocity[..., None, :] * sign, 0.0) + 0.0  # no -0.0
    return pos, vel


def hsv_to_rgb(hsv: np.ndarray) -> np.ndarray:
    """``[..., 3]`` hue, saturation, value in ``[0, 1]`` to RGB ``[..., 3]`` (float64)."""
    h, s, v = np.moveaxis(np.asarray(hsv, dtype=np.float64), -1, 0)
    i = np.floor(h * 6.0)
    f = h * 6.0 - i
    p, q, r = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    i = i.astype(np.int64) % 6
    choices = [(v, r, p), (q, v, p), (p, v, r), (p, q, v), (r, p, v), (v, p, q)]
    out = np.zeros((*h.shape, 3))
    for k, (a, b, c) in enumerate(choices):
        sel = i == k
        out[sel] = np.stack([a[sel], b[sel], c[sel]], -1)
    return out
