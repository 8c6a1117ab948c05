"""Place-cell and head-direction-cell population codes, and their decoders.

Place cells follow Sorscher et al. (2019, 2023): ``N`` cells with centres drawn uniformly
in the arena from a fixed seed, Gaussian tuning of width ``σ`` normalised over cells with
a softmax, or a difference of Gaussians (surround variance ``surround_scale · σ²``) built
from two softmaxes, shifted to be ``≥ 0`` and normalised to sum 1. Head-direction cells
follow Banino et al. (2018): von Mises tuning (concentration ``κ``) normalised over cells
with a softmax. Every code is a distribution over its cells.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

Arena = Literal["square", "circle"]
Tuning = Literal["gaussian", "dog"]
ARENAS: tuple[str, ...] = ("square", "circle")
TUNINGS: tuple[str, ...] = ("gaussian", "dog")
_CHUNK = 1 << 21  # place-code elements computed at a time (8 MB of float32)


def check_choice(name: str, value: object, allowed: tuple[str, ...]) -> str:
    """``value`` if it is one of ``allowed``, else a ``ValueError`` naming ``name``."""
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name} = {value!r} is not allowed; choose one of {list(allowed)}")
    return value


def check_positive(name: str, value: object, *, integer: bool = False, zero: bool = False) -> float:
    """``value`` as a finite positive number (``zero``: or 0), else a ``ValueError`` naming it."""
    kind = "an integer" if integer else "a number"
    ok = (
        isinstance(value, int | np.integer)
        if integer
        else isinstance(value, int | float | np.number)
    )
    if ok and not isinstance(value, bool | np.bool_):
        v = float(value)  # type: ignore[arg-type]
        if np.isfinite(v) and (v > 0 or (zero and v == 0)):
            return v
    bound = ">= 0" if zero else "> 0"
    raise ValueError(f"{name} = {value!r} is not allowed; it must be {kind} {bound}")


def uniform_in_arena(rng: np.random.Generator, n: int, arena: Arena, size: float) -> np.ndarray:
    """``n`` points drawn uniformly in the arena (centred on 0), ``float64 [n, 2]`` in metres.

    ``size`` is the side of the square or the diameter of the circle. Draw order: the
    square draws ``n`` x then ``n`` y coordinates; the circle ``n`` radii (as ``R √u``) then
    ``n`` angles.
    """
    half = size / 2
    if arena == "square":
        return rng.uniform(-half, half, size=(2, n)).T.copy()
    r = half * np.sqrt(rng.random(n))
    phi = rng.uniform(-np.pi, np.pi, n)
    return np.stack([r * np.cos(phi), r * np.sin(phi)], axis=-1)


def _softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, in place on ``logits``."""
    logits -= logits.max(-1, keepdims=True)
    np.exp(logits, out=logits)
    logits /= logits.sum(-1, keepdims=True)
    return logits


class PlaceCells:
    """A place-cell population code over a square or circular arena.

    Parameters
    ----------
    n_cells : int, default 512
        Number of cells ``N`` (Sorscher: 512; Banino: 256).
    width : float, default 0.12
        Tuning width ``σ`` in metres (Sorscher: 0.12; Banino: 0.01).
    tuning : {"dog", "gaussian"}, default "dog"
        ``"gaussian"``: ``softmax(−d²/2σ²)`` over cells. ``"dog"``: that minus
        ``softmax(−d²/(2·surround_scale·σ²))``, shifted by its minimum over cells and
        normalised to sum 1 (Sorscher's difference of Gaussians).
    surround_scale : float, default 2.0
        Surround variance over centre variance for ``"dog"``.
    arena : {"square", "circle"}, default "square"
    size : float, default 2.2
        Side of the square or diameter of the circle, metres; the arena is centred on 0.
    seed : int, default 0
        Seed of the uniformly drawn centres (fixed per population, not per batch).

    Attributes
    ----------
    centres : numpy.ndarray
        ``float64 [N, 2]`` centres in metres.

    Examples
    --------
    >>> cells = PlaceCells(64, 0.2, tuning="gaussian", size=1.0, seed=0)
    >>> code = cells.encode(np.array([[0.1, -0.2], [0.0, 0.3]]))
    >>> code.shape, code.dtype, bool(np.allclose(code.sum(-1), 1))
    ((2, 64), dtype('float32'), True)
    >>> int(code[0].argmax()) == int(np.linalg.norm(cells.centres - [0.1, -0.2], axis=1).argmin())
    True
    """

    def __init__(
        self,
        n_cells: int = 512,
        width: float = 0.12,
        *,
        tuning: Tuning = "dog",
        surround_scale: float = 2.0,
        arena: Arena = "square",
        size: float = 2.2,
        seed: int = 0,
    ) -> None:
        self.n_cells = int(check_positive("n_place_cells", n_cells, integer=True))
        self.width = check_positive("place_cell_width", width)
        self.tuning = check_choice("place_cell_tuning", tuning, TUNINGS)
        self.surround_scale = check_positive("surround_scale", surround_scale)
        if self.tuning == "dog" and self.surround_scale <= 1:
            raise ValueError(
                f"surround_scale = {surround_scale!r} is not allowed; the surround must be "
                "wider than the centre (> 1)"
            )
        self.arena = check_choice("arena", arena, ARENAS)
        self.size = check_positive("size", size)
        if not isinstance(seed, int | np.integer) or isinstance(seed, bool):
            raise ValueError(f"place_cell_seed = {seed!r} is not allowed; it must be an int")
        self.seed = int(seed)
        self.centres = uniform_in_arena(np.random.default_rng(self.seed), self.n_cells, arena, size)

    def encode(self, position: np.ndarray) -> np.ndarray:
        """The code of ``position [..., 2]`` (metres): ``float32 [..., N]``, summing to 1."""
        p = np.asarray(position, dtype=np.float64)
        if p.shape[-1:] != (2,):
            raise ValueError(f"position must be [..., 2] (x, y in metres); got shape {p.shape}")
        flat = p.reshape(-1, 2).astype(np.float32)
        out = np.empty((flat.shape[0], self.n_cells), np.float32)
        rows = max(1, _CHUNK // self.n_cells)  # bounded temporaries for long batches
        for a in range(0, flat.shape[0], rows):
            out[a : a + rows] = self._encode(flat[a : a + rows])
        return out.reshape(*p.shape[:-1], self.n_cells)

    def _encode(self, p: np.ndarray) -> np.ndarray:
        c = self.centres.astype(np.float32)
        d2 = np.subtract(p[:, 0:1], c[:, 0])
        np.square(d2, out=d2)
        dy = np.subtract(p[:, 1:2], c[:, 1])
        d2 += np.square(dy, out=dy)
        var = np.float32(2 * self.width**2)
        code = _softmax(d2 * (-1 / var))
        if self.tuning == "dog":
            d2 *= -1 / (var * np.float32(self.surround_scale))
            code -= _softmax(d2)
            code -= code.min(-1, keepdims=True)
            code /= code.sum(-1, keepdims=True)
        return code

    def decode(self, code: np.ndarray, k: int = 3) -> np.ndarray:
        """Decoded position ``[..., 2]``: :func:`decode_position` with these centres."""
        return decode_position(code, self.centres, k=k)

    def __repr__(self) -> str:
        return (
            f"PlaceCells(n_cells={self.n_cells}, width={self.width}, tuning={self.tuning!r}, "
            f"arena={self.arena!r}, size={self.size}, seed={self.seed})"
        )


class HeadDirectionCells:
    """A head-direction population code: von Mises tuning normalised over cells.

    The code of heading ``θ`` is ``softmax_i(κ cos(θ − μ_i))`` with preferred directions
    ``μ_i = −π + 2πi/N`` evenly spaced (Banino et al. drew them at random).

    Parameters
    ----------
    n_cells : int, default 12
    concentration : float, default 20.0
        Von Mises concentration ``κ`` (Banino: 20).

    Examples
    --------
    >>> hd = HeadDirectionCells(12)
    >>> code = hd.encode(np.array([0.0, np.pi / 2]))
    >>> code.shape, code.argmax(-1).tolist()  # cells 6 and 9 prefer 0 and pi/2
    ((2, 12), [6, 9])
    >>> np.abs(hd.decode(code) - [0.0, np.pi / 2]).max() < 1e-6
    np.True_
    """

    def __init__(self, n_cells: int = 12, concentration: float = 20.0) -> None:
        self.n_cells = int(check_positive("n_hd_cells", n_cells, integer=True))
        self.concentration = check_positive("hd_concentration", concentration)
        self.preferred = -np.pi + 2 * np.pi * np.arange(self.n_cells) / self.n_cells

    def encode(self, heading: np.ndarray) -> np.ndarray:
        """The code of ``heading [...]`` (radians): ``float32 [..., N]``, summing to 1."""
        h = np.asarray(heading, dtype=np.float64)[..., None]
        return _softmax((self.concentration * np.cos(h - self.preferred)).astype(np.float32))

    def decode(self, code: np.ndarray) -> np.ndarray:
        """Decoded heading ``[...]`` in ``(−π, π]``: :func:`decode_heading`."""
        return decode_heading(code, self.preferred)

    def __repr__(self) -> str:
        return f"HeadDirectionCells(n_cells={self.n_cells}, concentration={self.concentration})"


def decode_position(place_code: np.ndarray, centres: np.ndarray, k: int = 3) -> np.ndarray:
    """Position decoded as the mean centre of the ``k`` most active place cells.

    Sorscher et al.'s decoder. Any monotone transform of the code decodes the same, so
    model logits can be passed as they are.

    Parameters
    ----------
    place_code : numpy.ndarray
        ``[..., N]`` place code, probabilities or logits.
    centres : numpy.ndarray
        ``[N, 2]`` place-cell centres in metres.
    k : int, default 3

    Returns
    -------
    numpy.ndarray
        ``float64 [..., 2]`` positions in metres.

    Examples
    --------
    >>> centres = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [5.0, 5.0]])
    >>> decode_position(np.array([0.3, 0.3, 0.3, 0.1]), centres).round(4).tolist()
    [0.3333, 0.3333]
    >>> decode_position(np.array([[0.1, 0.2, 0.0, 0.7]]), centres, k=1).tolist()
    [[5.0, 5.0]]
    """
    code = np.asarray(place_code)
    centres = np.asarray(centres, dtype=np.float64)
    if centres.ndim != 2 or centres.shape[1] != 2:
        raise ValueError(f"centres must be [N, 2]; got shape {centres.shape}")
    n = centres.shape[0]
    if code.shape[-1:] != (n,):
        raise ValueError(f"place_code must be [..., {n}] for {n} centres; got shape {code.shape}")
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 1 <= k <= n:
        raise ValueError(f"k = {k!r} is not allowed; it must be an int in [1, {n}]")
    if k == 1:
        return centres[code.argmax(-1)]
    top = np.argpartition(code, n - k, axis=-1)[..., n - k :]
    return centres[top].mean(-2)


def decode_heading(hd_code: np.ndarray, preferred: np.ndarray) -> np.ndarray:
    """Heading decoded as the angle of the population vector ``Σ_i code_i (cos μ_i, sin μ_i)``.

    Pass a code (non-negative weights, e.g. the softmax of model outputs), not logits.

    Parameters
    ----------
    hd_code : numpy.ndarray
        ``[..., N]`` head-direction code.
    preferred : numpy.ndarray
        ``[N]`` preferred directions in radians.

    Returns
    -------
    numpy.ndarray
        ``float64 [...]`` headings in ``(−π, π]``.

    Examples
    --------
    >>> float(decode_heading(np.array([0.5, 0.5, 0.0]), np.array([0.0, np.pi / 2, np.pi])))
    0.7853981633974483
    """
    code = np.asarray(hd_code, dtype=np.float64)
    mu = np.asarray(preferred, dtype=np.float64)
    if code.shape[-1:] != mu.shape or mu.ndim != 1:
        raise ValueError(f"hd_code must be [..., {mu.size}] for {mu.size} cells; got {code.shape}")
    return np.arctan2(code @ np.sin(mu), code @ np.cos(mu))


def position_error_cm(decoded: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Euclidean distance between ``decoded`` and ``true`` positions ``[..., 2]`` (m), in cm.

    Examples
    --------
    >>> position_error_cm(np.array([0.03, 0.04]), np.zeros(2))
    np.float64(5.0)
    """
    d = np.asarray(decoded, dtype=np.float64) - np.asarray(true, dtype=np.float64)
    if d.shape[-1:] != (2,):
        raise ValueError(f"positions must be [..., 2]; got shape {d.shape}")
    return 100 * np.hypot(d[..., 0], d[..., 1])
