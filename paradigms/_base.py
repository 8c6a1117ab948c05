"""Paradigm contract: :class:`TrialBatch`, :class:`Paradigm` and the id registry."""

from __future__ import annotations

import difflib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

TargetKind = Literal["class", "continuous"]


@dataclass(frozen=True)
class TrialBatch:
    """A batch of trials, batch-first and trial-aligned.

    Attributes
    ----------
    inputs : numpy.ndarray
        ``float32 [B, T, I]`` observations; padding steps are zero.
    targets : numpy.ndarray
        ``int64 [B, T]`` class ids (``target_kind == "class"``) or
        ``float32 [B, T, O]`` continuous targets.
    mask : numpy.ndarray
        ``float32 [B, T]`` per-step loss weights (0 outside the scored period and on padding).
    trials : pandas.DataFrame
        One row per trial with every trial variable the task records.
    dt : float
        Time step in ms.
    valid : numpy.ndarray
        ``bool [B, T]``; ``True`` on the trial's own steps, ``False`` on padding.
    target_kind : {"class", "continuous"}
    periods : dict[str, numpy.ndarray]
        Per period, ``int64 [B, 2]`` start and end step (end exclusive); ``-1`` if absent.
    covariates : dict[str, numpy.ndarray]
        Per-step variables of the task that are neither inputs nor targets, each
        ``[B, T, ...]`` (e.g. an agent's ``position [B, T, 2]`` in metres); ``simulate``
        carries them into the trajectories as variables over ``trial, time``.
    """

    inputs: np.ndarray
    targets: np.ndarray
    mask: np.ndarray
    trials: pd.DataFrame
    dt: float
    valid: np.ndarray
    target_kind: TargetKind = "class"
    periods: dict[str, np.ndarray] = field(default_factory=dict)
    covariates: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def n_trials(self) -> int:
        """Number of trials ``B``."""
        return int(self.inputs.shape[0])

    @property
    def n_steps(self) -> int:
        """Padded number of time steps ``T``."""
        return int(self.inputs.shape[1])

    @property
    def lengths(self) -> np.ndarray:
        """Number of real (unpadded) steps per trial."""
        return self.valid.sum(axis=1)

    @property
    def time(self) -> np.ndarray:
        """Start time of each step in ms, ``[T]``."""
        return np.arange(self.n_steps, dtype=np.float64) * self.dt


class Paradigm:
    """Base class of every open-loop paradigm.

    Subclasses set ``id``, ``dt``, ``n_inputs``, ``n_outputs`` and ``target_kind``
    and implement :meth:`batch`; they may override :meth:`performance`. Closed-loop
    environments (``bandit/*``) are not ``Paradigm`` s: they set ``closed_loop = True`` and
    offer ``reset(n_sessions, rng)`` / ``step(actions)`` instead of ``batch``.
    """

    id: str = ""
    closed_loop: bool = False
    dt: float = 100.0
    n_inputs: int = 0
    n_outputs: int = 0
    target_kind: TargetKind = "class"
    kwargs: dict[str, Any]

    def batch(self, n_trials: int, rng: np.random.Generator | int | None = None) -> TrialBatch:
        """Draw ``n_trials`` trials; the same ``rng`` seed gives a bit-identical batch."""
        raise NotImplementedError

    def performance(self, outputs: np.ndarray, batch: TrialBatch) -> np.ndarray:
        """Per-trial performance from model ``outputs [B, T, O]``.

        Class targets: the fraction of masked steps whose arg-max output equals
        the target (decision-period accuracy; 1 or 0 for a one-step decision).
        Continuous targets: minus the mean squared error over masked steps.
        """
        outputs = np.asarray(outputs)
        w = batch.mask > 0
        n = np.maximum(w.sum(1), 1)
        if batch.target_kind == "class":
            hit = (outputs.argmax(-1) == batch.targets) & w
            return hit.sum(1) / n
        err = ((outputs - batch.targets) ** 2).mean(-1)
        return -(err * w).sum(1) / n

    def describe(self) -> dict[str, Any]:
        """A JSON-serialisable summary: id, dt, sizes, kwargs."""
        return {
            "id": self.id,
            "dt": self.dt,
            "n_inputs": self.n_inputs,
            "n_outputs": self.n_outputs,
            "target_kind": self.target_kind,
            "kwargs": dict(self.kwargs),
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}(id={self.id!r}, dt={self.dt}, I={self.n_inputs}, O={self.n_outputs})"


def as_generator(rng: np.random.Generator | int | None) -> np.random.Generator:
    """Return a numpy ``Generator`` from a generator, a seed, or ``None`` (fresh entropy)."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, int | np.integer):
        return np.random.default_rng(rng)
    raise TypeError(
        f"rng must be a numpy.random.Generator, an int seed or None, got {type(rng).__name__}"
    )


_REGISTRY: dict[str, Callable[..., Paradigm]] = {}
_LAZY_LOADERS: list[Callable[[], None]] = []
_LOAD_LOCK = threading.RLock()
_LOADING: list[Callable[[], None]] = []  # loaders running now (in some thread)


def register(paradigm_id: str, factory: Callable[..., Paradigm]) -> None:
    """Register ``factory(**kwargs) -> Paradigm`` under ``paradigm_id`` (``namespace/name``)."""
    if "/" not in paradigm_id:
        raise ValueError(f"paradigm id must be 'namespace/name', got {paradigm_id!r}")
    _REGISTRY[paradigm_id] = factory


def add_lazy_loader(loader: Callable[[], None]) -> None:
    """Defer registration of a namespace until the registry is first read."""
    _LAZY_LOADERS.append(loader)


def _ensure_loaded() -> None:
    """Run pending lazy loaders once; other threads wait until they have finished."""
    if not _LAZY_LOADERS and not _LOADING:
        return
    with _LOAD_LOCK:  # re-entrant: a loader that calls make() in its own thread passes
        while _LAZY_LOADERS:
            loader = _LAZY_LOADERS.pop(0)
            _LOADING.append(loader)
            try:
                loader()
            finally:
                _LOADING.pop()


def available(namespace: str | None = None) -> list[str]:
    """List registered paradigm ids, sorted, optionally only one ``namespace``.

    Examples
    --------
    >>> import paradigms
    >>> "neurogym/PerceptualDecisionMaking-v0" in paradigms.available()
    True
    """
    _ensure_loaded()
    ids = sorted(_REGISTRY)
    if namespace is not None:
        ids = [i for i in ids if i.split("/", 1)[0] == namespace]
    return ids


def make(paradigm_id: str, **kwargs: Any) -> Paradigm:
    """Build the paradigm registered as ``paradigm_id``.

    Open-loop ids give a :class:`Paradigm`; closed-loop ids (``bandit/*``) give an
    environment with ``closed_loop = True`` and ``reset`` / ``step``.

    Parameters
    ----------
    paradigm_id : str
        A namespaced id such as ``"neurogym/PerceptualDecisionMaking-v0"``.
    **kwargs
        Passed to the paradigm (for neurogym tasks: ``dt``, ``timing``, ``mask``,
        and the task's own keyword arguments).

    Raises
    ------
    KeyError
        Unknown id; the message lists the closest registered ids.

    Examples
    --------
    >>> import paradigms
    >>> task = paradigms.make("neurogym/PerceptualDecisionMaking-v0")
    >>> batch = task.batch(8, rng=0)
    >>> batch.inputs.shape[0], batch.dt
    (8, 100.0)
    """
    _ensure_loaded()
    try:
        factory = _REGISTRY[paradigm_id]
    except KeyError:
        close = difflib.get_close_matches(paradigm_id, list(_REGISTRY), n=5, cutoff=0.4)
        if not close:
            low = paradigm_id.lower().split("/")[-1]
            close = [i for i in _REGISTRY if low[:6] in i.lower()][:5]
        hint = f" Closest ids: {', '.join(close)}." if close else ""
        raise KeyError(
            f"unknown paradigm id {paradigm_id!r}.{hint} "
            f"See paradigms.available() for all {len(_REGISTRY)} ids."
        ) from None
    return factory(**kwargs)
