"""Adapter that exposes every neurogym task with observations and ground truth.

Batches are built from the environment's own ``new_trial()`` (not
``neurogym.Dataset``, which is unseeded, ignores trial boundaries and drops
data), so every trial is whole, aligned at its first step, padded and masked.
"""

from __future__ import annotations

import contextlib
import copy
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ._base import Paradigm, TrialBatch, add_lazy_loader, as_generator, register

#: Registered neurogym ids that cannot drive an open-loop batch, and why.
EXCLUDED: dict[str, str] = {
    "Bandit-v0": "closed-loop task without ground truth (gt)",
    "EconomicDecisionMaking-v0": "no ground truth (gt)",
    "DawTwoStep-v0": "no observation array (ob)",
    "Null-v0": "no observation array (ob)",
    "AnnubesEnv-v0": "needs the 'session' and 'catch_prob' arguments",
}

#: Tasks whose ``gt`` is an angle stored in an integer array (truncated by neurogym):
#: their target is rebuilt as (cos θ, sin θ) of the wanted heading, a continuous target.
ANGLE_TARGET_TASKS: frozenset[str] = frozenset(
    {"Reaching1D-v0", "Reaching1DWithSelfDistraction-v0"}
)

#: Period names scored by the default ``mask="auto"``, in order of preference.
RESPONSE_PERIODS: tuple[str, ...] = (
    "decision",
    "response",
    "production",
    "reach",
    "test",
    "test1",
    "test2",
    "test3",
)


@contextlib.contextmanager
def _global_rng_pinned(seed: int, active: bool = True) -> Iterator[None]:
    """Seed numpy's global RNG (restored afterwards) for tasks that draw from it."""
    if not active:
        yield
        return
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def _draws_from_global_rng(env: Any, n_probe: int = 20) -> bool:
    """Whether ``new_trial`` touches numpy's global RNG (probed on a copy of the task)."""
    probe = copy.deepcopy(env)
    before = np.random.get_state()
    try:
        probe.seed(0)
        for _ in range(n_probe):
            probe.new_trial()
        after = np.random.get_state()
        return after[2] != before[2] or not np.array_equal(after[1], before[1])
    finally:
        np.random.set_state(before)


def _to_scalar(value: Any) -> Any:
    """Trial variables as plain Python scalars; sequences become tuples."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.item() if value.ndim == 0 else tuple(value.tolist())
    if isinstance(value, list | tuple):
        return tuple(_to_scalar(v) for v in value)
    if isinstance(value, range):
        return tuple(value)
    return value


class NeurogymParadigm(Paradigm):
    """A neurogym task as an open-loop paradigm (id ``neurogym/<TaskId>``).

    Parameters
    ----------
    task : str
        The neurogym id, e.g. ``"PerceptualDecisionMaking-v0"``.
    mask : {"auto", "all"} or str or sequence of str, default "auto"
        Which steps count in the loss. ``"auto"`` scores the response period
        (the first of :data:`RESPONSE_PERIODS` that the task has; all steps if
        none), ``"all"`` every real step, a name or list of names those periods.
    **env_kwargs
        Passed to the task (``dt``, ``timing``, ``sigma``, ...).

    Examples
    --------
    >>> import paradigms
    >>> task = paradigms.make("neurogym/PerceptualDecisionMaking-v0", dt=100)
    >>> b = task.batch(4, rng=1)
    >>> b.inputs.shape[2], b.targets.dtype.name, sorted(b.trials.columns)[:2]
    (3, 'int64', ['coh', 'ground_truth'])
    """

    def __init__(self, task: str, *, mask: str | Sequence[str] = "auto", **env_kwargs: Any) -> None:
        import gymnasium as gym
        import neurogym  # noqa: F401  (registers the tasks with gymnasium)

        if task in EXCLUDED:
            raise ValueError(f"neurogym task {task!r} cannot be used: {EXCLUDED[task]}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                env = gym.make(task, disable_env_checker=True, **env_kwargs)
            except TypeError as err:
                raise TypeError(f"neurogym task {task!r} rejected its arguments: {err}") from None
        # Some tasks carry state across trials (blocks, counters) and some timing
        # closures refer to the task object itself, so each batch restores the
        # task's pristine attributes in place and then seeds it: a batch depends
        # on its seed alone.
        self._env = env.unwrapped
        self._pristine = copy.deepcopy(vars(self._env))
        self._keep = self._reseeded_objects()
        self._uses_global_rng = _draws_from_global_rng(self._env)
        self.task = task
        self.id = f"neurogym/{task}"
        self.kwargs = {"mask": mask if isinstance(mask, str) else list(mask), **env_kwargs}
        self.dt = float(self._env.dt)
        self.n_inputs = int(np.prod(self._env.observation_space.shape))
        space = self._env.action_space
        if task in ANGLE_TARGET_TASKS:
            self.target_kind, self.n_outputs = "continuous", 2
        elif hasattr(space, "n"):
            self.target_kind = "class"
            self.n_outputs = int(space.n)
        else:
            self.target_kind = "continuous"
            self.n_outputs = int(np.prod(space.shape))
        if not (isinstance(mask, str) and mask in ("auto", "all")):
            names = [mask] if isinstance(mask, str) else list(mask)
            if not names or not all(isinstance(n, str) for n in names):
                raise ValueError(
                    f"mask must be 'auto', 'all', a period name or a list of names, got {mask!r}"
                )
        self._mask = mask
        self.is_yang19 = task.startswith("yang19.")

    # -- batches ---------------------------------------------------------
    def batch(self, n_trials: int, rng: np.random.Generator | int | None = None) -> TrialBatch:
        """Draw ``n_trials`` whole trials from the task's ``new_trial()``.

        Parameters
        ----------
        n_trials : int
            Batch size ``B`` (≥ 1).
        rng : numpy.random.Generator or int or None
            Source of the task seed; the same seed gives a bit-identical batch.
        """
        if int(n_trials) < 1:
            raise ValueError(f"n_trials must be a positive integer, got {n_trials!r}")
        gen = as_generator(rng)
        seed = int(gen.integers(0, 2**31 - 1))
        env = self._env
        state = vars(env)
        state.clear()
        state.update(copy.deepcopy(self._pristine, dict(self._keep)))
        angle = self.task in ANGLE_TARGET_TASKS
        obs, gts, rows, starts, ends = [], [], [], [], []
        with _global_rng_pinned(seed, self._uses_global_rng):
            self._seed(seed)
            for _ in range(int(n_trials)):  # hot loop: keep references, convert in bulk later
                trial = env.new_trial()
                obs.append(env.ob)
                gts.append(self._angle_target(env, trial) if angle else env.gt)
                rows.append(dict(trial or {}))
                starts.append(env.start_ind.copy())
                ends.append(env.end_ind.copy())
        return self._assemble(obs, gts, rows, starts, ends)

    def _reseeded_objects(self) -> dict[int, Any]:
        """Deep-copy memo that keeps the live RNG, spaces, self-reference and timing samplers.

        ``_seed`` resets each of these before every batch, so restoring copies of
        them would only cost time; everything else is restored from the pristine copy.
        """
        live, saved = vars(self._env), self._pristine
        keep = {id(saved["_top"]): self._env} if "_top" in saved else {}
        for key in ("rng", "action_space", "observation_space"):
            if key in saved:
                keep[id(saved[key])] = live[key]
        for name, sampler in saved.get("timing", {}).items():
            if hasattr(sampler, "seed"):
                keep[id(sampler)] = live["timing"][name]
        return keep

    def _seed(self, seed: int) -> None:
        """``TrialEnv.seed`` without building a new ``RandomState`` (same stream)."""
        from neurogym.core import TrialEnv

        env = self._env
        if type(env).seed is not TrialEnv.seed or not isinstance(env.rng, np.random.RandomState):
            env.seed(seed)
            return
        env.rng.seed(seed)
        if getattr(env, "action_space", None) is not None:
            env.action_space.seed(seed)
        for sampler in env.timing.values():
            if hasattr(sampler, "seed"):
                sampler.seed(seed)

    @staticmethod
    def _angle_target(env: Any, trial: dict[str, Any]) -> np.ndarray:
        """Heading π while fixating, the trial's target angle while reaching, as (cos, sin)."""
        theta = np.full(len(env.ob), np.pi)
        theta[env.start_ind["reach"] : env.end_ind["reach"]] = trial["ground_truth"]
        return np.stack([np.cos(theta), np.sin(theta)], axis=1).astype(np.float32)

    def _assemble(
        self,
        obs: list[np.ndarray],
        gts: list[np.ndarray],
        rows: list[dict[str, Any]],
        starts: list[dict[str, int]],
        ends: list[dict[str, int]],
    ) -> TrialBatch:
        n = len(obs)
        lengths = np.fromiter((len(o) for o in obs), dtype=np.int64, count=n)
        t_max = int(lengths.max())
        valid = np.arange(t_max)[None, :] < lengths[:, None]
        cls = self.target_kind == "class"
        target_shape = (t_max,) if cls else (t_max, self.n_outputs)
        target_dtype = np.int64 if cls else np.float32
        if (lengths == t_max).all():  # common case: one stack, no padding
            inputs = np.asarray(obs, dtype=np.float32).reshape(n, t_max, self.n_inputs)
            targets = np.asarray(gts, dtype=target_dtype).reshape(n, *target_shape)
        else:
            inputs = np.zeros((n, t_max, self.n_inputs), dtype=np.float32)
            targets = np.zeros((n, *target_shape), dtype=target_dtype)
            for i, (o, g) in enumerate(zip(obs, gts, strict=True)):
                inputs[i, : len(o)] = np.reshape(o, (len(o), -1))
                targets[i, : len(g)] = np.reshape(g, (len(g), *target_shape[1:]))
        names = list(dict.fromkeys(p for s in starts for p in s))
        periods = {
            p: np.array(
                [(s.get(p, -1), e.get(p, -1)) for s, e in zip(starts, ends, strict=True)],
                dtype=np.int64,
            )
            for p in names
        }
        trials = pd.DataFrame(rows, index=pd.RangeIndex(n, name="trial"))
        for col in [c for c, d in trials.dtypes.items() if d.kind == "O"]:
            trials[col] = [_to_scalar(v) for v in trials[col]]
        if cls and "ground_truth" not in trials:
            # yang19 decision tasks record no ground truth: take the target of the
            # last step (the response the trial asks for).
            trials["ground_truth"] = targets[np.arange(n), lengths - 1]
        return TrialBatch(
            inputs=inputs,
            targets=targets,
            mask=self._make_mask(periods, valid),
            trials=trials,
            dt=self.dt,
            valid=valid,
            target_kind=self.target_kind,
            periods=periods,
        )

    def _make_mask(self, periods: dict[str, np.ndarray], valid: np.ndarray) -> np.ndarray:
        if self._mask == "all":
            return valid.astype(np.float32)
        if self._mask == "auto":
            names = [p for p in RESPONSE_PERIODS if p in periods][:1]
            if not names:
                return valid.astype(np.float32)
        else:
            names = [self._mask] if isinstance(self._mask, str) else list(self._mask)
            unknown = [p for p in names if p not in periods]
            if unknown:
                raise ValueError(
                    f"mask period(s) {unknown} not in task {self.task!r}; "
                    f"its periods are {sorted(periods)}"
                )
        steps = np.arange(valid.shape[1])[None, :]
        mask = np.zeros(valid.shape, dtype=bool)
        for p in names:
            a, b = periods[p][:, :1], periods[p][:, 1:]
            mask |= (steps >= a) & (steps < b)
        return (mask & valid).astype(np.float32)

    # -- scoring ---------------------------------------------------------
    def performance(self, outputs: np.ndarray, batch: TrialBatch) -> np.ndarray:
        """Per-trial performance.

        Decision-period accuracy (fraction of masked steps whose arg-max output
        equals the target) for neurogym tasks; for ``yang19.*`` tasks Yang et al.
        (2019)'s rule at the last step: fixation probability ≤ 0.5 and the
        decoded ring angle within 0.2π of the target (or fixation held, > 0.5,
        when the target is to fixate).
        """
        if self.is_yang19 and self.target_kind == "class":
            return _yang19_performance(np.asarray(outputs), batch)
        return super().performance(outputs, batch)


def _yang19_performance(outputs: np.ndarray, batch: TrialBatch) -> np.ndarray:
    last = batch.lengths - 1
    idx = np.arange(batch.n_trials)
    logits = outputs[idx, last]
    logits = logits - logits.max(-1, keepdims=True)
    prob = np.exp(logits)
    prob /= prob.sum(-1, keepdims=True)
    p_fix = prob[:, 0]
    n_ring = outputs.shape[-1] - 1
    theta = 2 * np.pi * np.arange(n_ring) / n_ring
    ring = prob[:, 1:]
    decoded = np.arctan2(ring @ np.sin(theta), ring @ np.cos(theta))
    target = batch.targets[idx, last]
    target_theta = theta[np.clip(target - 1, 0, n_ring - 1)]
    dist = np.abs((decoded - target_theta + np.pi) % (2 * np.pi) - np.pi)
    respond_ok = (p_fix <= 0.5) & (dist < 0.2 * np.pi)
    fixate_ok = p_fix > 0.5
    return np.where(target == 0, fixate_ok, respond_ok).astype(np.float64)


def neurogym_task_ids() -> list[str]:
    """All registered neurogym ids (collections included) that give open-loop batches."""
    from neurogym.envs.registration import all_envs

    return [t for t in all_envs(collections=True) if t not in EXCLUDED]


def _register_all() -> None:
    for task in neurogym_task_ids():
        register(f"neurogym/{task}", lambda _t=task, **kw: NeurogymParadigm(_t, **kw))


add_lazy_loader(_register_all)
