"""Multi-object scenes: greyscale shapes, coloured shapes and Tetrominoes, static or moving.

Seeded generators (no downloads) in the spirit of the 2Shapes / 3Shapes datasets (Reichert &
Serre 2013; Löwe et al. 2022), multi-dSprites-like coloured shapes and Tetrominoes (Greff et
al. 2019) used to test synchrony-based object models. Every image comes with an integer label
map: 0 background, ``1 … K`` the objects (in drawing order), −1 where objects overlap.
Geometry and rasterisation: :mod:`paradigms._shapes`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from ._base import Paradigm, TrialBatch, as_generator, register
from ._place_cells import check_choice, check_positive
from ._shapes import (
    KIND_NAMES,
    SHAPE_KINDS,
    TETROMINO_COLORS,
    TETROMINO_NAMES,
    bounce,
    box_extent,
    hsv_to_rgb,
    rasterise,
)

STYLES: tuple[str, ...] = ("shapes", "colored-shapes", "tetrominoes")
OVERLAP_MODES: tuple[str, ...] = ("mark", "occlude")
#: Shape names accepted in ``shapes``: the kinds, and ``"triangle"`` (up or down at random).
SHAPE_NAMES: tuple[str, ...] = (*SHAPE_KINDS, "triangle")
_SHAPE_CODES = {**{name: i for i, name in enumerate(SHAPE_KINDS)}, "triangle": -1}
_MAX_ROUNDS = 200  # rejection rounds before giving up on a scene that fits max_overlap
_CHUNK = 2_000_000  # pixels x objects x steps rasterised at once


class Scenes(NamedTuple):
    """Scenes drawn by :meth:`SceneParadigm.scenes` (``B`` scenes, ``T`` steps, ``K`` objects).

    Attributes
    ----------
    images : numpy.ndarray
        ``float32 [B, T, C, H, W]`` in ``[0, 1]``.
    labels : numpy.ndarray
        ``int64 [B, T, H, W]``: 0 background, ``k`` object ``k``, −1 overlap (``"mark"``).
    kinds : numpy.ndarray
        ``int64 [B, K]`` indices into :data:`paradigms._shapes.KIND_NAMES`.
    sizes : numpy.ndarray
        ``int64 [B, K]``: square side, triangle height, circle diameter (px); 4 for pieces.
    positions, velocities : numpy.ndarray
        ``float64 [B, T, K, 2]``: top-left ``(row, col)`` of each object's box (px) and its
        velocity (px per step, 0 for static scenes).
    colors : numpy.ndarray
        ``float32 [B, K, C]`` object colours.
    """

    images: np.ndarray
    labels: np.ndarray
    kinds: np.ndarray
    sizes: np.ndarray
    positions: np.ndarray
    velocities: np.ndarray
    colors: np.ndarray


def _check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise ValueError(f"{name} = {value!r} is not allowed; choose one of [True, False]")
    return bool(value)


def _check_range(name: str, value: Any, low: float, high: float, *, integer: bool) -> tuple:
    try:
        lo, hi = value
    except (TypeError, ValueError):
        lo = hi = None
    kind = "integers" if integer else "numbers"
    ok = lo is not None and all(
        isinstance(x, int | np.integer if integer else int | float | np.number)
        and not isinstance(x, bool | np.bool_)
        and np.isfinite(x)
        for x in (lo, hi)
    )
    if not ok or not low <= lo <= hi <= high:
        raise ValueError(
            f"{name} = {value!r} is not allowed; it must be two {kind} (low, high) with "
            f"{low} <= low <= high <= {high}"
        )
    return (int(lo), int(hi)) if integer else (float(lo), float(hi))


class SceneParadigm(Paradigm):
    """Images of ``K`` objects with their label maps, optionally moving over ``T`` steps.

    Objects are drawn one after the other (object ``k`` gets label ``k``); each lies wholly
    inside the image at a whole-pixel position drawn uniformly. Pixels covered by more than
    one object take the colour of the last one drawn and, with ``overlap="mark"``, the
    label −1 (with ``"occlude"`` the label of that last object). A scene in which some
    object has more than ``max_overlap`` of its pixels covered by others (at any step) is
    drawn again, so every object is visible.

    **Batch.** ``inputs`` ``float32 [B, T, C·H·W]`` are the images flattened in ``(C, H, W)``
    order, values in ``[0, 1]`` (``image_shape = (C, H, W)``). ``targets`` are the same
    images (``target_kind = "continuous"``, ``n_outputs = C·H·W``): the reconstruction
    target of an autoencoder, whose loss is the MSE on masked steps (every step: mask 1).
    ``covariates``: ``images [B, T, C, H, W]`` float32, ``labels [B, T, H, W]`` int64,
    ``positions`` and ``velocities [B, T, K, 2]`` (box corner ``(row, col)`` in px, px per
    step). ``trials``: ``n_objects`` and per object ``k``: ``kind_k``, ``row_k``, ``col_k``
    (start), ``height_k``, ``width_k`` (box, px), ``vrow_k``, ``vcol_k`` (start velocity),
    ``intensity_k`` (greyscale) or ``red_k``, ``green_k``, ``blue_k``, and ``pixels_k``
    (pixels labelled ``k`` at step 0). One step is one frame of ``dt = 100`` ms.

    Parameters
    ----------
    style : {"shapes", "colored-shapes", "tetrominoes"}
        ``"shapes"``: white shapes on black (``C = 1``), one per entry of ``shapes``;
        ``"colored-shapes"``: ``n_objects`` shapes of kinds drawn from ``shapes``, each of a
        random hue at full saturation and value (``C = 3``); ``"tetrominoes"``:
        ``n_objects`` of the 19 Tetromino pieces, each one of six colours (``C = 3``).
    shapes : sequence of str, optional
        Kinds from ``"square"``, ``"triangle_up"``, ``"triangle_down"``, ``"circle"`` and
        ``"triangle"`` (up or down at random). Default ``("square", "triangle", "circle")``.
    n_objects : int, optional
        Objects per scene for the coloured styles (default 3); ``len(shapes)`` for ``"shapes"``.
    size_range : (int, int), default (8, 14)
        Shape sizes drawn uniformly (inclusive): square side, circle diameter, triangle base
        (its height ``h = ⌈size / 2⌉``, base ``2h − 1``).
    block_size : int, default 4
        Side of a Tetromino block in pixels.
    image_size : int, default 32
        ``H = W``.
    motion : bool, default False
        Objects move with constant velocity (speed from ``speed_range`` px per step, direction
        uniform) and bounce off the image borders.
    n_steps : int, optional
        Frames per trial: default 1, or 10 with ``motion``; a static scene with ``n_steps > 1``
        repeats its image.
    speed_range : (float, float), default (0.5, 1.5)
        Pixels per step (``motion`` only).
    overlap : {"mark", "occlude"}, default "mark"
    max_overlap : float, optional
        Largest fraction of an object's pixels that others may cover, in ``[0, 1)``: default 0.5
        (0 for static ``"tetrominoes"``, whose pieces never overlap).
    distinct_colors : bool, default False
        Tetrominoes: no two pieces of a scene share a colour.

    Examples
    --------
    >>> task = SceneParadigm("shapes", shapes=("square", "circle"))
    >>> b = task.batch(4, rng=0)
    >>> b.inputs.shape, task.image_shape, b.covariates["labels"].shape
    ((4, 1, 1024), (1, 32, 32), (4, 1, 32, 32))
    >>> sorted(np.unique(b.covariates["labels"][0]).tolist())[-2:]
    [1, 2]
    >>> bool((b.targets == b.inputs).all())
    True
    """

    target_kind = "continuous"
    dt = 100.0

    def __init__(
        self,
        style: str = "shapes",
        *,
        shapes: tuple[str, ...] | list[str] | None = None,
        n_objects: int | None = None,
        size_range: tuple[int, int] = (8, 14),
        block_size: int = 4,
        image_size: int = 32,
        motion: bool = False,
        n_steps: int | None = None,
        speed_range: tuple[float, float] = (0.5, 1.5),
        overlap: str = "mark",
        max_overlap: float | None = None,
        distinct_colors: bool = False,
    ) -> None:
        self.style = check_choice("style", style, STYLES)
        self.image_size = int(check_positive("image_size", image_size, integer=True))
        if shapes is None:
            shapes = ("square", "triangle", "circle")
        if isinstance(shapes, str) or not len(shapes):
            raise ValueError(f"shapes = {shapes!r} is not allowed; give a non-empty sequence")
        for s in shapes:
            check_choice("shapes entry", s, SHAPE_NAMES)
        self.shapes = tuple(shapes)
        if style == "shapes":
            if n_objects is not None and n_objects != len(self.shapes):
                raise ValueError(
                    f"n_objects = {n_objects!r} is not allowed for style 'shapes': it draws "
                    f"one object per entry of shapes ({len(self.shapes)})"
                )
            self.n_objects = len(self.shapes)
        else:
            k = 3 if n_objects is None else n_objects
            self.n_objects = int(check_positive("n_objects", k, integer=True))
        self.size_range = _check_range("size_range", size_range, 2, self.image_size, integer=True)
        self.block_size = int(check_positive("block_size", block_size, integer=True))
        if style == "tetrominoes" and 4 * self.block_size > self.image_size:
            raise ValueError(
                f"block_size = {block_size!r} is not allowed; a piece (4 blocks) must fit in "
                f"image_size = {self.image_size} (block_size <= {self.image_size // 4})"
            )
        self.motion = _check_bool("motion", motion)
        default_steps = 10 if self.motion else 1
        self.n_steps = int(
            check_positive("n_steps", default_steps if n_steps is None else n_steps, integer=True)
        )
        self.speed_range = _check_range("speed_range", speed_range, 0, np.inf, integer=False)
        self.overlap = check_choice("overlap", overlap, OVERLAP_MODES)
        if max_overlap is None:
            max_overlap = 0.0 if style == "tetrominoes" and not self.motion else 0.5
        ok = isinstance(max_overlap, int | float | np.number) and not isinstance(max_overlap, bool)
        if not ok or not 0 <= max_overlap < 1:
            raise ValueError(
                f"max_overlap = {max_overlap!r} is not allowed; it must be a number in [0, 1)"
            )
        self.max_overlap = float(max_overlap)
        self.distinct_colors = _check_bool("distinct_colors", distinct_colors)
        if self.distinct_colors and style == "tetrominoes" and self.n_objects > 6:
            raise ValueError(
                f"distinct_colors needs n_objects <= 6 (the Tetromino colours); got {n_objects}"
            )
        channels = 1 if style == "shapes" else 3
        self.image_shape = (channels, self.image_size, self.image_size)
        self.n_inputs = self.n_outputs = int(np.prod(self.image_shape))
        self.id = f"scenes/{style}"
        self.kwargs = {
            "shapes": list(self.shapes),
            "n_objects": self.n_objects,
            "size_range": list(self.size_range),
            "block_size": self.block_size,
            "image_size": self.image_size,
            "motion": self.motion,
            "n_steps": self.n_steps,
            "speed_range": list(self.speed_range),
            "overlap": self.overlap,
            "max_overlap": self.max_overlap,
            "distinct_colors": self.distinct_colors,
        }

    # ------------------------------------------------------------------ drawing
    def _draw(self, g: np.random.Generator, n: int) -> tuple:
        """Kinds, sizes, start corners, velocities and colours of ``n`` scenes (one round)."""
        k, hw = self.n_objects, self.image_size
        if self.style == "tetrominoes":
            kinds = len(SHAPE_KINDS) + g.integers(0, len(TETROMINO_NAMES), (n, k))
            sizes = np.full((n, k), 4, np.int64)
        else:
            codes = np.array([_SHAPE_CODES[s] for s in self.shapes], np.int64)
            if self.style == "colored-shapes":
                codes = codes[g.integers(0, len(codes), (n, k))]
            up = g.random((n, k)) < 0.5
            kinds = np.where(codes < 0, np.where(up, 1, 2), codes)  # "triangle": up or down
            sizes = g.integers(self.size_range[0], self.size_range[1] + 1, (n, k))
            tri = (kinds == 1) | (kinds == 2)
            sizes = np.where(tri, (sizes + 1) // 2, sizes)
        room = hw - box_extent(kinds, sizes, self.block_size)  # [n, k, 2]
        start = np.floor(g.random((n, k, 2)) * (room + 1)).astype(np.float64)
        if self.motion:
            speed = g.uniform(*self.speed_range, (n, k))
            angle = g.uniform(-np.pi, np.pi, (n, k))
            velocity = speed[..., None] * np.stack([np.sin(angle), np.cos(angle)], -1)
        else:
            velocity = np.zeros((n, k, 2))
        if self.style == "shapes":
            colors = np.ones((n, k, 1), np.float32)
        elif self.style == "tetrominoes":
            if self.distinct_colors:
                idx = np.argsort(g.random((n, len(TETROMINO_COLORS))), axis=1)[:, :k]
            else:
                idx = g.integers(0, len(TETROMINO_COLORS), (n, k))
            colors = TETROMINO_COLORS[idx]
        else:
            hsv = np.stack([g.random((n, k)), np.ones((n, k)), np.ones((n, k))], -1)
            colors = hsv_to_rgb(hsv).astype(np.float32)
        return kinds, sizes, room, start, velocity, colors

    def _cover(self, kinds: np.ndarray, sizes: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """Coverage ``bool [n, K, T, H, W]`` of objects at ``positions [n, T, K, 2]``."""
        n, t, k = positions.shape[:3]
        hw = (self.image_size, self.image_size)
        flat = positions.transpose(0, 2, 1, 3).reshape(n * k, t, 2)
        cover = rasterise(kinds.reshape(-1), sizes.reshape(-1), flat, hw, self.block_size)
        return cover.reshape(n, k, t, *hw)

    def _fits(self, cover: np.ndarray) -> np.ndarray:
        """``bool [n]``: every object is drawn and at most ``max_overlap`` of it is covered."""
        count = cover.sum(1, dtype=np.uint8)  # [n, T, H, W]
        area = cover.sum((3, 4))  # [n, K, T]
        if self.max_overlap == 0:
            return (count <= 1).all((1, 2, 3)) & (area > 0).all((1, 2))
        multi = count > 1
        shared = np.stack([(c & multi).sum((2, 3)) for c in cover.transpose(1, 0, 2, 3, 4)], 1)
        frac = (shared / np.maximum(area, 1)).max(2)  # [n, K], worst step
        return ((frac <= self.max_overlap) & (area > 0).all(2)).all(1)

    def _compose(self, cover: np.ndarray, colors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Label maps ``int64 [n, T, H, W]`` and images ``float32 [n, T, C, H, W]``."""
        n, k = cover.shape[:2]
        visible = np.zeros(cover.shape[:1] + cover.shape[2:], np.int64)  # last object drawn
        for j in range(k):
            visible[cover[:, j]] = j + 1
        palette = np.concatenate([np.zeros((n, 1, colors.shape[-1]), np.float32), colors], 1)
        flat = visible.reshape(n, -1)
        images = np.stack(
            [np.take_along_axis(palette[..., c], flat, 1) for c in range(colors.shape[-1])], 1
        ).reshape(n, colors.shape[-1], *visible.shape[1:])
        if self.overlap == "mark":
            visible[cover.sum(1, dtype=np.uint8) > 1] = -1
        return visible, images.transpose(0, 2, 1, 3, 4)

    def scenes(self, n_trials: int, rng: np.random.Generator | int | None = None) -> Scenes:
        """Draw ``n_trials`` scenes (seeded; what :meth:`batch` draws with the same ``rng``).

        Draw order per round: kinds (and triangle orientations), sizes, start corners,
        speeds and directions (``motion``), colours; scenes that break ``max_overlap`` are
        drawn again, in order, until all fit.
        """
        n = int(check_positive("n_trials", n_trials, integer=True))
        g = as_generator(rng)
        t, k, hw = self.n_steps, self.n_objects, self.image_size
        chunk = max(1, _CHUNK // (t * k * hw * hw))
        out: list[np.ndarray] = []
        todo = np.arange(n)
        for _ in range(_MAX_ROUNDS):
            kinds, sizes, room, start, velocity, colors = self._draw(g, len(todo))
            pos, vel = bounce(start, velocity, room, t)  # [m, K, T, 2]
            pos, vel = pos.transpose(0, 2, 1, 3), vel.transpose(0, 2, 1, 3)
            ok = np.concatenate(
                [
                    self._fits(
                        self._cover(kinds[i : i + chunk], sizes[i : i + chunk], pos[i : i + chunk])
                    )
                    for i in range(0, len(todo), chunk)
                ]
            )
            drawn = (kinds, sizes, pos, vel, colors)
            if not out:
                out = [np.empty((n, *x.shape[1:]), x.dtype) for x in drawn]
            for full, x in zip(out, drawn, strict=True):
                full[todo[ok]] = x[ok]
            todo = todo[~ok]
            if not len(todo):
                break
        else:
            raise RuntimeError(
                f"could not place {k} objects with max_overlap = {self.max_overlap} in "
                f"{_MAX_ROUNDS} rounds; raise max_overlap or lower n_objects, size_range or n_steps"
            )
        kinds, sizes, pos, vel, colors = out
        labels = np.empty((n, t, hw, hw), np.int64)
        images = np.empty((n, t, colors.shape[-1], hw, hw), np.float32)
        for i in range(0, n, chunk):
            sl = slice(i, i + chunk)
            labels[sl], images[sl] = self._compose(
                self._cover(kinds[sl], sizes[sl], pos[sl]), colors[sl]
            )
        return Scenes(images, labels, kinds, sizes, pos, vel, colors)

    def batch(self, n_trials: int, rng: np.random.Generator | int | None = None) -> TrialBatch:
        """``n_trials`` scenes as a :class:`TrialBatch` (see the class docstring)."""
        sc = self.scenes(n_trials, rng)
        n, t, k = sc.labels.shape[0], self.n_steps, self.n_objects
        flat = sc.images.reshape(n, t, -1)
        extent = box_extent(sc.kinds, sc.sizes, self.block_size)
        cols: dict[str, Any] = {"n_objects": np.full(n, k, np.int64)}
        names = np.array(KIND_NAMES)
        channel_names = ("intensity",) if self.image_shape[0] == 1 else ("red", "green", "blue")
        for j in range(k):
            i = j + 1
            cols[f"kind_{i}"] = names[sc.kinds[:, j]]
            cols[f"row_{i}"], cols[f"col_{i}"] = sc.positions[:, 0, j].T
            cols[f"height_{i}"], cols[f"width_{i}"] = extent[:, j].T
            cols[f"vrow_{i}"], cols[f"vcol_{i}"] = sc.velocities[:, 0, j].T
            for c, cname in enumerate(channel_names):
                cols[f"{cname}_{i}"] = sc.colors[:, j, c].astype(np.float64)
            cols[f"pixels_{i}"] = (sc.labels[:, 0] == i).sum((1, 2))
        trials = pd.DataFrame(cols, index=pd.RangeIndex(n, name="trial"))
        return TrialBatch(
            inputs=flat,
            targets=flat.copy(),
            mask=np.ones((n, t), np.float32),
            trials=trials,
            dt=self.dt,
            valid=np.ones((n, t), bool),
            target_kind="continuous",
            covariates={
                "images": sc.images,
                "labels": sc.labels,
                "positions": sc.positions,
                "velocities": sc.velocities,
            },
        )


def scene_images(batch: TrialBatch) -> tuple[np.ndarray, np.ndarray]:
    """Images ``float32 [B, T, C, H, W]`` and label maps ``int64 [B, T, H, W]`` of a batch.

    Uses ``batch.covariates["images"]`` when present, else reshapes ``batch.inputs`` by the
    label maps' ``H, W``.

    Examples
    --------
    >>> import paradigms
    >>> images, labels = scene_images(SceneParadigm("tetrominoes").batch(2, rng=0))
    >>> images.shape, labels.shape, int(labels.max())
    ((2, 1, 3, 32, 32), (2, 1, 32, 32), 3)
    """
    cov = batch.covariates
    if "labels" not in cov:
        raise ValueError(
            "batch.covariates has no 'labels'; scene_images needs a batch of a scenes/* "
            f"paradigm (covariates: {sorted(cov)})"
        )
    labels = np.asarray(cov["labels"])
    if "images" in cov:
        return np.asarray(cov["images"]), labels
    b, t, h, w = labels.shape
    return batch.inputs.reshape(b, t, -1, h, w), labels


_DEFAULTS: dict[str, dict[str, Any]] = {
    "2shapes": {"style": "shapes", "shapes": ("square", "triangle")},
    "3shapes": {"style": "shapes", "shapes": ("square", "triangle", "circle")},
    "tetrominoes": {"style": "tetrominoes"},
    "colored-shapes": {"style": "colored-shapes"},
}


def _factory(name: str) -> Any:
    fixed = _DEFAULTS[name]

    def make_scenes(**kwargs: Any) -> SceneParadigm:
        if "style" in kwargs:
            raise ValueError(
                f"scenes/{name} fixes style = {fixed['style']!r}; for another style make one "
                f"of {[f'scenes/{s}' for s in _DEFAULTS]}"
            )
        shapes = kwargs.get("shapes", fixed.get("shapes"))
        if (
            name in ("2shapes", "3shapes")
            and not isinstance(shapes, str)
            and len(shapes) != int(name[0])
        ):
            raise ValueError(
                f"scenes/{name} draws {name[0]} shapes; got shapes = {shapes!r} "
                f"(use SceneParadigm('shapes', shapes=...) for other counts)"
            )
        task = SceneParadigm(**{**fixed, **kwargs})
        task.id = f"scenes/{name}"
        return task

    return make_scenes


def _register() -> None:
    """Register ``scenes/2shapes``, ``scenes/3shapes``, ``scenes/tetrominoes`` and
    ``scenes/colored-shapes``."""
    for name in _DEFAULTS:
        register(f"scenes/{name}", _factory(name))
