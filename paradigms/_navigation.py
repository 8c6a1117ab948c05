"""Path integration in an open arena: rodent-like foraging trajectories, place and HD codes.

The trajectory model is Sorscher et al.'s (2019, 2023) rodent-foraging generator, also the
one behind Banino et al. (2018): speeds drawn from a Rayleigh distribution, heading
perturbed by Gaussian rotation noise, and near a wall (heading into it) the agent turns
parallel to the wall and slows down. Here it is vectorised over agents, works in a square
or a circular arena, and a wall is hard: a step that would cross it is shortened to end
inside, so positions never leave the arena.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from ._base import Paradigm, TrialBatch, as_generator, register
from ._place_cells import (
    ARENAS,
    Arena,
    HeadDirectionCells,
    PlaceCells,
    Tuning,
    check_choice,
    check_positive,
    decode_position,
    position_error_cm,
    uniform_in_arena,
)

#: Scale ``b`` of the Rayleigh distribution of speeds, m/s (Sorscher et al.: 0.13·2π).
RAYLEIGH_SCALE = 0.13 * 2 * np.pi
#: Standard deviation of the rotation velocity, rad/s (Sorscher et al.: 11.52).
TURN_SD = 11.52
VELOCITY_INPUTS: tuple[str, ...] = ("cartesian", "polar")
_SHRINK = 1 - 1e-9  # a shortened step stops this fraction short of the wall
_HALF_PI = np.pi / 2


class Trajectories(NamedTuple):
    """Agent trajectories from :func:`generate_trajectories` (``B`` agents, ``T`` steps).

    Attributes
    ----------
    position : numpy.ndarray
        ``float64 [B, T + 1, 2]``: ``position[:, t]`` is where the agent is at time ``t·dt``,
        before step ``t``; ``position[:, 0]`` is the start (metres, arena centred on 0).
    heading : numpy.ndarray
        ``float64 [B, T + 1]`` radians, accumulated (not wrapped): ``heading[:, 0]`` is the
        start heading and ``heading[:, t + 1]`` the heading of step ``t`` (the agent turns,
        then moves), which it keeps until it turns again.
    speed : numpy.ndarray
        ``float64 [B, T]`` speed of step ``t`` in m/s, ``|position[:, t+1] − position[:, t]| / dt``.
    """

    position: np.ndarray
    heading: np.ndarray
    speed: np.ndarray


def _wrap(angle: np.ndarray) -> np.ndarray:
    """Angles wrapped into ``[−π, π)``."""
    return np.mod(angle + np.pi, 2 * np.pi) - np.pi


def _wall_turn(
    q: np.ndarray, heading: np.ndarray, arena: str, half: float, margin: float
) -> tuple[np.ndarray, np.ndarray]:
    """Which agents at ``q [2, k]`` are within ``margin`` of their nearest wall heading into
    it, and the turn that makes them parallel to it (Sorscher's ``avoid_wall``)."""
    x, y = q
    if arena == "square":
        aq = np.abs(q)
        x_wall = aq[0] >= aq[1]
        d_wall = half - aq.max(0)
        normal = np.arctan2(np.where(x_wall, 0.0, y), np.where(x_wall, x, 0.0))
    else:
        d_wall = half - np.hypot(x, y)
        normal = np.arctan2(y, x)
    a = _wrap(heading - normal)
    into = (d_wall < margin) & (np.abs(a) < _HALF_PI)
    return np.copysign(_HALF_PI, a) - a, into


def _shorten(q: np.ndarray, u: np.ndarray, step: np.ndarray, arena: str, half: float) -> np.ndarray:
    """Step lengths from ``q [2, k]`` along unit ``u [2, k]`` cut to the wall (x ``1 − 1e-9``)."""
    if arena == "square":
        room = half - q * np.sign(u)  # distance to the wall ahead along each axis
        reach = (room / np.maximum(np.abs(u), 1e-300)).min(0)
    else:
        pu = (q * u).sum(0)
        reach = np.sqrt(np.maximum(pu * pu + (half * half - (q * q).sum(0)), 0.0)) - pu
    return np.clip(np.minimum(step, reach * _SHRINK), 0.0, None)


def _integrate(
    start: np.ndarray,
    heading0: np.ndarray,
    turns: np.ndarray,
    steps: np.ndarray,
    arena: str,
    half: float,
    margin: float,
    slowdown: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Run the walk: ``turns``, ``steps`` ``[T, B]`` (rad, m) -> positions ``[T+1, 2, B]`` and
    headings ``[T+1, B]``."""
    n_steps, n = steps.shape
    pos, hs = np.empty((n_steps + 1, 2, n)), np.empty((n_steps + 1, n))
    pos[0], hs[0] = start.T, heading0
    square = arena == "square"
    # how far out each agent is: max(|x|, |y|) in the square, the squared radius in the circle
    extent = (lambda q: np.abs(q).max(0)) if square else (lambda q: np.square(q).sum(0))
    inner = half - margin  # beyond it an agent may be near a wall
    near_at, out_at = (inner, half) if square else (max(inner, 0.0) ** 2, half * half)
    u = np.empty((2, n))
    ext = extent(pos[0])
    for t in range(n_steps):
        p, h, step = pos[t], hs[t], steps[t]  # ``steps`` is ours to modify
        h_new = np.add(h, turns[t], out=hs[t + 1])
        near = np.flatnonzero(ext > near_at)
        if near.size:
            turn, into = _wall_turn(p[:, near], h[near], arena, half, margin)
            hit = near[into]
            h_new[hit] += turn[into]
            step[hit] *= slowdown
        np.cos(h_new, out=u[0])
        np.sin(h_new, out=u[1])
        p_new = np.add(p, step * u, out=pos[t + 1])
        ext = extent(p_new)
        out = np.flatnonzero(ext > out_at)
        if out.size:  # a hard wall: stop short of it
            q, uo = p[:, out], u[:, out]
            p_new[:, out] = q = _guard(
                q + _shorten(q, uo, step[out], arena, half) * uo, arena, half
            )
            ext[out] = extent(q)
    return pos, hs


def _guard(q: np.ndarray, arena: str, half: float) -> np.ndarray:
    """Points ``q [2, k]`` that rounding left outside the arena pulled back inside."""
    if arena == "square":
        return np.clip(q, -half, half)
    r = np.hypot(q[0], q[1])
    return q * np.where(r > half, half / np.maximum(r, half) * (1 - 1e-12), 1.0)


def generate_trajectories(
    n_agents: int,
    n_steps: int,
    rng: np.random.Generator | int | None = None,
    *,
    arena: Arena = "square",
    size: float = 2.2,
    time_step: float = 0.02,
    speed_scale: float = RAYLEIGH_SCALE,
    turn_sd: float = TURN_SD,
    wall_margin: float = 0.03,
    wall_slowdown: float = 0.25,
) -> Trajectories:
    """Random-foraging trajectories of ``n_agents`` agents, vectorised over agents.

    Each agent starts at a uniformly drawn position and heading. At step ``t`` it turns
    by ``time_step · N(0, turn_sd)`` (plus, when it is within ``wall_margin`` of its
    nearest wall and heading into it, the turn that makes it parallel to that wall, its
    speed then multiplied by ``wall_slowdown``), then moves ``speed · time_step`` along
    its new heading with a speed drawn from ``Rayleigh(speed_scale)``. A step that would
    leave the arena stops just short of the wall (positions never leave it).

    Parameters
    ----------
    n_agents, n_steps : int
    rng : numpy.random.Generator, int or None
        Draw order: start positions (see :func:`~paradigms._place_cells.uniform_in_arena`),
        start headings ``U(−π, π)``, the ``[T, B]`` rotation noise ``N(0, turn_sd)``, the
        ``[T, B]`` speeds (time-major: all agents' draws for step 0 come first).
    arena : {"square", "circle"}, default "square"
    size : float, default 2.2
        Side of the square or diameter of the circle, metres; centred on 0.
    time_step : float, default 0.02
        Seconds per step.
    speed_scale : float, default 0.13·2π
        Rayleigh scale ``b`` of the speed, m/s (mean speed ``b√(π/2)`` ≈ 1.02 m/s).
    turn_sd : float, default 11.52
        Standard deviation of the rotation velocity, rad/s (one step turns by
        ``N(0, (turn_sd · time_step)²)``, as in Sorscher's code).
    wall_margin : float, default 0.03
        Metres from a wall within which the agent avoids it.
    wall_slowdown : float, default 0.25
        Speed factor while avoiding a wall.

    Returns
    -------
    Trajectories
        ``position [B, T+1, 2]``, ``heading [B, T+1]`` and ``speed [B, T]``.

    Examples
    --------
    >>> tr = generate_trajectories(4, 50, rng=0)
    >>> tr.position.shape, tr.heading.shape, tr.speed.shape
    ((4, 51, 2), (4, 51), (4, 50))
    >>> bool(np.abs(tr.position).max() <= 1.1)
    True
    """
    p = _check_walk(arena, size, time_step, speed_scale, turn_sd, wall_margin, wall_slowdown)
    n_agents = int(check_positive("n_agents", n_agents, integer=True))
    n_steps = int(check_positive("n_steps", n_steps, integer=True))
    g = as_generator(rng)
    start = uniform_in_arena(g, n_agents, arena, size)
    heading0 = g.uniform(-np.pi, np.pi, n_agents)
    turns = g.normal(0.0, turn_sd, (n_steps, n_agents)) * time_step  # time-major: row t is step t
    steps = g.rayleigh(speed_scale, (n_steps, n_agents)) * time_step
    pos, hs = _integrate(
        start, heading0, turns, steps, arena, p["half"], wall_margin, wall_slowdown
    )
    position = pos.transpose(2, 0, 1).copy()
    d = np.diff(position, axis=1)
    speed = np.sqrt(np.square(d).sum(-1)) / time_step
    return Trajectories(position, np.ascontiguousarray(hs.T), speed)


def _check_walk(
    arena: Any,
    size: Any,
    time_step: Any,
    speed_scale: Any,
    turn_sd: Any,
    wall_margin: Any,
    wall_slowdown: Any,
) -> dict[str, float]:
    check_choice("arena", arena, ARENAS)
    half = check_positive("size", size) / 2
    check_positive("time_step", time_step)
    check_positive("speed_scale", speed_scale)
    check_positive("turn_sd", turn_sd, zero=True)
    margin = check_positive("wall_margin", wall_margin, zero=True)
    slow = check_positive("wall_slowdown", wall_slowdown, zero=True)
    if slow > 1:
        raise ValueError(f"wall_slowdown = {wall_slowdown!r} is not allowed; it must be in [0, 1]")
    if margin >= half:
        raise ValueError(
            f"wall_margin = {wall_margin!r} is not allowed; it must be less than half the "
            f"arena size ({half} m)"
        )
    return {"half": half}


class NavigationParadigm(Paradigm):
    """Path integration: velocity in, place- and head-direction-cell codes out.

    Each trial is one foraging trajectory from :func:`generate_trajectories`. Step ``t``
    (``dt`` = ``time_step`` in ms) shows the velocity of step ``t`` and asks for the code
    of where the agent is at its end: target ``[..., :n_place_cells]`` is the place code
    of ``position[:, t]`` and ``[..., n_place_cells:]`` the head-direction code of
    ``head_direction[:, t]`` (the heading of step ``t``). Both are distributions over
    their cells, so the default training loss is a cross-entropy per group of outputs
    (``loss = "soft_cross_entropy"``, ``output_groups``).

    The start is given as a code: ``batch.covariates["init_code"]`` (``float32 [B, O]``,
    the one per-trial covariate, laid out like the targets) codes the start position and
    heading, e.g. for a model's initial state (Sorscher et al. map the start place code
    linearly to it). Per-step covariates (float64): ``position [B, T, 2]`` (m),
    ``head_direction [B, T]`` (rad, in ``[−π, π)``), ``speed [B, T]`` (m/s). ``trials``: ``start_x``,
    ``start_y`` (m), ``start_heading`` (rad), ``arena``. Every step is scored (mask 1).

    Parameters
    ----------
    arena : {"square", "circle"}, default "square"
    size : float, default 2.2
        Side of the square or diameter of the circle, metres.
    n_steps : int, optional
        Steps per trial (default 20, Sorscher's sequence length) ...
    duration : float, optional
        ... or trial length in seconds (a whole number of steps); not both.
    time_step : float, default 0.02
        Seconds per step (``dt`` is this in ms).
    speed_scale, turn_sd, wall_margin, wall_slowdown
        The walk (:func:`generate_trajectories`; m/s, rad/s, m, factor).
    velocity_input : {"cartesian", "polar"}, default "cartesian"
        ``"cartesian"``: inputs ``(vx, vy)`` in m/s; ``"polar"``: ``(speed, cos θ, sin θ)``.
    angular_velocity_input : bool, default False
        Append the angular velocity of the step (rad/s; ``heading`` change over ``dt``).
    n_place_cells, place_cell_width, place_cell_tuning, surround_scale, place_cell_seed
        The place cells (:class:`PlaceCells`: 512, 0.12 m, ``"dog"``, 2, seed 0).
    n_hd_cells : int, default 12
        Head-direction cells (0: place-cell targets only, as in Sorscher et al.).
    hd_concentration : float, default 20.0
        Von Mises ``κ`` of the head-direction cells.
    init_input : bool, default False
        Append the start code (``init_code``, ``O`` channels named ``init_0`` ...) to the
        inputs, non-zero at step 0 only: a network starting from ``h = 0`` then gets the
        start through its input weights (with ``τ = dt``, ``h₁ = f(W_in·[v₀, code₀])``, a
        learned linear map of the start code as in Sorscher et al.).
    init_input_scale : float, default 1.0
        Factor on those channels (``init_input`` only): the place code sums to 1 over its
        cells, so its entries are small (about ``1/n_place_cells``) and a factor of tens
        brings them to the scale of the velocity inputs.

    Examples
    --------
    >>> task = NavigationParadigm("circle", n_steps=10)
    >>> b = task.batch(4, rng=0)
    >>> b.inputs.shape, b.targets.shape, b.dt, task.output_groups
    ((4, 10, 2), (4, 10, 524), 20.0, (512, 12))
    >>> sorted(b.covariates)
    ['head_direction', 'init_code', 'position', 'speed']
    >>> start = b.trials[["start_x", "start_y"]].to_numpy()
    >>> path = start[:, None] + np.cumsum(b.inputs * task.time_step, axis=1)  # integrate
    >>> bool(np.abs(path - b.covariates["position"]).max() < 1e-5)
    True
    """

    target_kind = "continuous"
    loss = "soft_cross_entropy"

    def __init__(
        self,
        arena: Arena = "square",
        *,
        size: float = 2.2,
        n_steps: int | None = None,
        duration: float | None = None,
        time_step: float = 0.02,
        speed_scale: float = RAYLEIGH_SCALE,
        turn_sd: float = TURN_SD,
        wall_margin: float = 0.03,
        wall_slowdown: float = 0.25,
        velocity_input: str = "cartesian",
        angular_velocity_input: bool = False,
        n_place_cells: int = 512,
        place_cell_width: float = 0.12,
        place_cell_tuning: Tuning = "dog",
        surround_scale: float = 2.0,
        place_cell_seed: int = 0,
        n_hd_cells: int = 12,
        hd_concentration: float = 20.0,
        init_input: bool = False,
        init_input_scale: float = 1.0,
    ) -> None:
        _check_walk(arena, size, time_step, speed_scale, turn_sd, wall_margin, wall_slowdown)
        self.arena, self.size, self.time_step = arena, float(size), float(time_step)
        self.n_steps = _n_steps(n_steps, duration, self.time_step)
        self.walk = dict(
            arena=arena,
            size=self.size,
            time_step=self.time_step,
            speed_scale=float(speed_scale),
            turn_sd=float(turn_sd),
            wall_margin=float(wall_margin),
            wall_slowdown=float(wall_slowdown),
        )
        self.velocity_input = check_choice("velocity_input", velocity_input, VELOCITY_INPUTS)
        if not isinstance(angular_velocity_input, bool | np.bool_):
            raise ValueError(
                f"angular_velocity_input = {angular_velocity_input!r} is not allowed; "
                "choose one of [True, False]"
            )
        self.angular_velocity_input = bool(angular_velocity_input)
        if not isinstance(init_input, bool | np.bool_):
            raise ValueError(
                f"init_input = {init_input!r} is not allowed; choose one of [True, False]"
            )
        self.init_input = bool(init_input)
        self.init_input_scale = float(check_positive("init_input_scale", init_input_scale))
        self.place_cells = PlaceCells(
            n_place_cells,
            place_cell_width,
            tuning=place_cell_tuning,
            surround_scale=surround_scale,
            arena=arena,
            size=size,
            seed=place_cell_seed,
        )
        n_hd = int(check_positive("n_hd_cells", n_hd_cells, integer=True, zero=True))
        check_positive("hd_concentration", hd_concentration)
        self.hd_cells = HeadDirectionCells(n_hd, hd_concentration) if n_hd else None
        self.n_place_cells, self.n_hd_cells = self.place_cells.n_cells, n_hd
        self.id = f"navigation/{arena}"
        self.dt = self.time_step * 1000.0
        self.input_names = (
            ["vx", "vy"] if velocity_input == "cartesian" else ["speed", "cos", "sin"]
        )
        self.input_names += ["angular_velocity"] * self.angular_velocity_input
        self.n_outputs = self.n_place_cells + n_hd
        self.input_names += [f"init_{i}" for i in range(self.n_outputs * self.init_input)]
        self.n_inputs = len(self.input_names)
        self.output_groups = (self.n_place_cells, n_hd) if n_hd else (self.n_place_cells,)
        self.target_layout = {
            "place": slice(0, self.n_place_cells),
            "head_direction": slice(self.n_place_cells, self.n_outputs),
        }
        self.kwargs = {
            **{k: v for k, v in self.walk.items() if k != "arena"},
            "n_steps": self.n_steps,
            "velocity_input": velocity_input,
            "angular_velocity_input": self.angular_velocity_input,
            "n_place_cells": self.n_place_cells,
            "place_cell_width": self.place_cells.width,
            "place_cell_tuning": self.place_cells.tuning,
            "surround_scale": self.place_cells.surround_scale,
            "place_cell_seed": self.place_cells.seed,
            "n_hd_cells": n_hd,
            "hd_concentration": float(hd_concentration),
            "init_input": self.init_input,
            "init_input_scale": self.init_input_scale,
        }

    @property
    def place_cell_centres(self) -> np.ndarray:
        """``float64 [n_place_cells, 2]`` place-cell centres in metres."""
        return self.place_cells.centres

    @property
    def hd_preferred_directions(self) -> np.ndarray:
        """``float64 [n_hd_cells]`` preferred directions of the head-direction cells (rad)."""
        return self.hd_cells.preferred if self.hd_cells else np.zeros(0)

    def encode(self, position: np.ndarray) -> np.ndarray:
        """Place code of ``position [..., 2]`` (m): ``float32 [..., n_place_cells]``."""
        return self.place_cells.encode(position)

    def encode_heading(self, heading: np.ndarray) -> np.ndarray:
        """Head-direction code of ``heading [...]`` (rad): ``float32 [..., n_hd_cells]``."""
        if self.hd_cells is None:
            return np.zeros((*np.shape(heading), 0), np.float32)
        return self.hd_cells.encode(heading)

    def targets_for(self, position: np.ndarray, heading: np.ndarray) -> np.ndarray:
        """The target layout for ``position [..., 2]`` and ``heading [...]``: ``[..., O]``."""
        return np.concatenate([self.encode(position), self.encode_heading(heading)], axis=-1)

    def trajectories(
        self, n_trials: int, rng: np.random.Generator | int | None = None
    ) -> Trajectories:
        """The raw walk of ``n_trials`` trials (what :meth:`batch` draws with the same ``rng``)."""
        return generate_trajectories(n_trials, self.n_steps, rng, **self.walk)

    def batch(self, n_trials: int, rng: np.random.Generator | int | None = None) -> TrialBatch:
        """``n_trials`` trajectories with their inputs, codes and covariates (seeded)."""
        tr = self.trajectories(n_trials, rng)
        n, t, ts = tr.speed.shape[0], self.n_steps, self.time_step
        heading = tr.heading[:, 1:]
        if self.velocity_input == "cartesian":
            parts = [np.diff(tr.position, axis=1) / ts]
        else:
            parts = [tr.speed[..., None], np.cos(heading)[..., None], np.sin(heading)[..., None]]
        if self.angular_velocity_input:
            parts.append((np.diff(tr.heading, axis=1) / ts)[..., None])
        start = tr.position[:, 0]
        init_code = self.targets_for(start, tr.heading[:, 0])
        if self.init_input:
            pulse = np.zeros((n, t, self.n_outputs), np.float32)
            pulse[:, 0] = init_code * self.init_input_scale
            parts.append(pulse)
        inputs = np.concatenate(parts, axis=-1).astype(np.float32)
        targets = self.targets_for(tr.position[:, 1:], heading)
        trials = pd.DataFrame(
            {
                "start_x": start[:, 0],
                "start_y": start[:, 1],
                "start_heading": _wrap(tr.heading[:, 0]),
                "arena": self.arena,
            },
            index=pd.RangeIndex(n, name="trial"),
        )
        covariates = {
            "position": tr.position[:, 1:],
            "head_direction": _wrap(heading),
            "speed": tr.speed,
            "init_code": init_code,
        }
        return TrialBatch(
            inputs=inputs,
            targets=targets,
            mask=np.ones((n, t), np.float32),
            trials=trials,
            dt=self.dt,
            valid=np.ones((n, t), bool),
            target_kind="continuous",
            covariates=covariates,
        )

    def decode_position(self, outputs: np.ndarray, k: int = 3) -> np.ndarray:
        """Positions ``[..., 2]`` decoded from outputs or targets ``[..., O]`` (top-``k`` centres)."""
        return decode_position(
            np.asarray(outputs)[..., : self.n_place_cells], self.place_cell_centres, k
        )

    def performance(self, outputs: np.ndarray, batch: TrialBatch) -> np.ndarray:
        """Minus the mean position-decoding error per trial, in cm (higher is better; 0 best).

        The place part of ``outputs [B, T, O]`` (codes or logits) is decoded with
        :func:`decode_position` (``k = 3``) and compared with
        ``batch.covariates["position"]`` (or, without it, with the position decoded
        from the targets), averaged over masked steps.
        """
        decoded = self.decode_position(outputs)
        true = batch.covariates.get("position")
        if true is None:
            true = self.decode_position(batch.targets)
        err = position_error_cm(decoded, true)
        w = batch.mask > 0
        return -(err * w).sum(1) / np.maximum(w.sum(1), 1)


def _n_steps(n_steps: Any, duration: Any, time_step: float) -> int:
    if n_steps is not None and duration is not None:
        raise ValueError(
            f"give n_steps = {n_steps!r} or duration = {duration!r} (seconds), not both"
        )
    if duration is not None:
        steps = check_positive("duration", duration) / time_step
        if abs(steps - round(steps)) > 1e-6 or round(steps) < 1:
            raise ValueError(
                f"duration = {duration!r} is not allowed; it must be a whole number (>= 1) of "
                f"time_step = {time_step} s steps"
            )
        return int(round(steps))
    return 20 if n_steps is None else int(check_positive("n_steps", n_steps, integer=True))


def _factory(arena: str) -> Any:
    def make_arena(**kwargs: Any) -> NavigationParadigm:
        if "arena" in kwargs:
            raise ValueError(
                f"navigation/{arena} fixes arena = {arena!r}; for another arena make "
                f"one of {[f'navigation/{a}' for a in ARENAS]}"
            )
        return NavigationParadigm(arena, **kwargs)  # type: ignore[arg-type]

    return make_arena


def _register() -> None:
    """Register ``navigation/square`` and ``navigation/circle``."""
    for arena in ARENAS:
        register(f"navigation/{arena}", _factory(arena))
