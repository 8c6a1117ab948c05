"""Closed-loop multi-armed bandits: the base class and the stationary and switching bandits.

Every environment is vectorised over ``S`` sessions (numpy, float64) and seeded. It keeps
one generator from :meth:`BanditParadigm.reset`; each :meth:`~BanditParadigm.step` first
draws the payoff of *every* arm of every session (so the random stream, the payoffs an arm
would have given and the evolution of the arms do not depend on the actions taken) and
then lets the arms evolve. The same seed therefore gives the same payoffs for the same
actions, and the same arm trajectories whatever the actions.

The restless bandit of Daw et al. (2006) and the Gaussian-mixture bandit of Sajid et al.
(2021) live in :mod:`paradigms._bandit_envs`.
"""

from __future__ import annotations

import json
from typing import Any, Literal

import numpy as np

from ._base import as_generator, register

RewardKind = Literal["binary", "continuous"]


def check_number(
    name: str,
    value: object,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    integer: bool = False,
) -> float:
    """``value`` as a finite number in ``[low, high]`` (``(low, high]`` when ``low_open``),
    else a ``ValueError`` naming ``name``, the value and the accepted range."""
    ok_type = int | np.integer if integer else int | float | np.integer | np.floating
    if isinstance(value, ok_type) and not isinstance(value, bool | np.bool_):
        v = float(value)  # type: ignore[arg-type]
        if (
            np.isfinite(v)
            and (low is None or v > low or (v == low and not low_open))
            and (high is None or v <= high)
        ):
            return v
    kind = "an integer" if integer else "a number"
    lo = "-inf" if low is None else f"{low:g}"
    hi = "inf" if high is None else f"{high:g}"
    interval = (
        f"{'(' if low_open or low is None else '['}{lo}, {hi}{']' if high is not None else ')'}"
    )
    shown = value.item() if isinstance(value, np.generic) else value
    raise ValueError(f"{name} = {shown!r} is not allowed; it must be {kind} in {interval}")


def check_vector(
    name: str,
    value: object,
    n: int | None,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
) -> np.ndarray:
    """``value`` as a float64 vector of length ``n`` (any length >= 1 if ``None``) with every
    entry in the range of :func:`check_number`, else a ``ValueError`` naming ``name``."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        arr = None
    if arr is None or arr.ndim != 1 or arr.size == 0 or (n is not None and arr.size != n):
        length = "at least one entry" if n is None else f"{n} entries (one per arm)"
        raise ValueError(
            f"{name} = {value!r} is not allowed; it must be a 1-D sequence with {length}"
        )
    for i, v in enumerate(arr):
        check_number(f"{name}[{i}]", float(v), low=low, high=high, low_open=low_open)
    return arr


def resolve_n_arms(n_arms: object, given: np.ndarray | None, given_name: str, default: int) -> int:
    """The number of arms: ``n_arms`` (an integer >= 2), or ``len(given)`` or ``default`` when
    ``n_arms`` is ``None``; a ``ValueError`` when ``n_arms`` and ``given`` disagree."""
    if n_arms is None:
        n = default if given is None else given.size
    else:
        n = int(check_number("n_arms", n_arms, low=2, integer=True))
    if n < 2:
        raise ValueError(f"n_arms = {n} is not allowed; a bandit needs at least 2 arms")
    if given is not None and given.size != n:
        raise ValueError(
            f"{given_name} has {given.size} entries but n_arms = {n_arms!r}; give one entry per arm"
        )
    return n


def _jsonable(value: Any) -> Any:
    """``value`` with numpy arrays and scalars turned into lists and Python numbers."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


class BanditParadigm:
    """Base class of the closed-loop bandit environments, vectorised over sessions.

    Subclasses set ``id``, ``n_arms``, ``reward_kind``, ``kwargs`` and implement
    ``_start(rng, n)`` (draw the session parameters), ``_stats()`` (true mean and SD of each
    arm's payoff on the current trial, ``[S, A]`` each), ``_draw(rng)`` (the payoffs of every
    arm on the current trial, ``[S, A]``) and, for arms that change, ``_advance(rng)``.

    Attributes
    ----------
    id : str
        Registry id, e.g. ``"bandit/bernoulli"``.
    n_arms : int
    kwargs : dict
        Every constructor parameter, resolved and JSON-serialisable;
        ``paradigms.make(env.id, **env.kwargs)`` builds an equal environment.
    closed_loop : bool
        Always ``True``: the environment answers actions (``reset`` / ``step``), it has no
        ``batch``.
    reward_kind : {"binary", "continuous"}

    Examples
    --------
    >>> import numpy as np, paradigms
    >>> env = paradigms.make("bandit/bernoulli", probs=[0.2, 0.9])
    >>> env.reset(3, rng=0)
    >>> env.expected_rewards
    array([[0.2, 0.9],
           [0.2, 0.9],
           [0.2, 0.9]])
    >>> r = env.step(np.array([1, 1, 0]))
    >>> r.shape, r.dtype, env.trial
    ((3,), dtype('float64'), 1)
    """

    id: str = ""
    n_arms: int = 2
    closed_loop: bool = True
    reward_kind: RewardKind = "continuous"
    reference: str = ""
    kwargs: dict[str, Any]

    _rng: np.random.Generator | None = None
    _n: int = 0
    _trial: int = 0
    _cache: tuple[np.ndarray, np.ndarray] | None = None

    # -- subclass hooks -------------------------------------------------------------------
    def _start(self, rng: np.random.Generator, n: int) -> None:
        raise NotImplementedError

    def _stats(self) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def _draw(self, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def _advance(self, rng: np.random.Generator) -> None:
        """Let the arms evolve after a trial (stationary arms: nothing)."""

    # -- public API -----------------------------------------------------------------------
    def reset(self, n_sessions: int, rng: np.random.Generator | int | None = None) -> None:
        """Start ``n_sessions`` independent sessions at trial 0, drawing their parameters.

        ``rng`` is a generator (used, and advanced, by every later ``step``), a seed, or
        ``None`` for fresh entropy.
        """
        n = int(check_number("n_sessions", n_sessions, low=1, integer=True))
        self._rng = as_generator(rng)
        self._n, self._trial, self._cache = n, 0, None
        self._start(self._rng, n)

    def _require_reset(self, what: str) -> np.random.Generator:
        if self._rng is None:
            raise RuntimeError(f"{self.id}: call reset(n_sessions, rng) before {what}")
        return self._rng

    def _current(self) -> tuple[np.ndarray, np.ndarray]:
        if self._cache is None:
            self._cache = self._stats()
        return self._cache

    @property
    def expected_rewards(self) -> np.ndarray:
        """``float64 [S, A]``: the true mean payoff of each arm on the current trial."""
        self._require_reset("reading expected_rewards")
        return self._current()[0].copy()

    @property
    def reward_sd(self) -> np.ndarray:
        """``float64 [S, A]``: the true SD of each arm's payoff on the current trial."""
        self._require_reset("reading reward_sd")
        return self._current()[1].copy()

    @property
    def n_sessions(self) -> int:
        """Number of sessions ``S`` of the last ``reset`` (0 before it)."""
        return self._n

    @property
    def trial(self) -> int:
        """Trials stepped since the last ``reset``."""
        return self._trial

    def step(self, actions: np.ndarray) -> np.ndarray:
        """Pay the current trial for ``actions`` (``int [S]``, arm indices), then advance.

        Returns the ``float64 [S]`` payoffs. Arms that change (switching, restless) change
        after the payment, so ``expected_rewards`` read before ``step`` describes exactly
        the payoffs this call draws.
        """
        rng = self._require_reset("step")
        a = self._check_actions(actions)
        payoffs = self._draw(rng)
        self._advance(rng)
        self._trial += 1
        self._cache = None
        return payoffs[np.arange(self._n), a]

    def _check_actions(self, actions: object) -> np.ndarray:
        a = np.asarray(actions)
        if a.dtype.kind not in "iu":
            raise ValueError(
                f"actions must be integer arm indices, got dtype {a.dtype} (value {actions!r})"
            )
        if a.shape != (self._n,):
            raise ValueError(
                f"actions has shape {a.shape}; it must be ({self._n},), one arm per session"
            )
        bad = np.flatnonzero((a < 0) | (a >= self.n_arms))
        if bad.size:
            i = int(bad[0])
            raise ValueError(
                f"actions[{i}] = {a[i]} is out of range; arms are 0..{self.n_arms - 1} "
                f"({bad.size} bad entries)"
            )
        return a

    def describe(self) -> dict[str, Any]:
        """A JSON-serialisable summary: id, closed_loop, n_arms, reward_kind, kwargs, reference."""
        out = {
            "id": self.id,
            "closed_loop": True,
            "n_arms": self.n_arms,
            "reward_kind": self.reward_kind,
            "kwargs": _jsonable(dict(self.kwargs)),
            "reference": self.reference,
        }
        json.dumps(out)  # fails loudly if a subclass stored something that is not JSON-able
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}(id={self.id!r}, n_arms={self.n_arms}, kwargs={self.kwargs})"


class BernoulliBandit(BanditParadigm):
    """Stationary Bernoulli arms (``bandit/bernoulli``): arm ``a`` pays 1 with probability
    ``p_a``, else 0.

    Parameters
    ----------
    n_arms : int, optional
        Number of arms (>= 2); ``None``: ``len(probs)``, or 2.
    probs : sequence of float, optional
        Fixed reward probabilities, one per arm, the same in every session. ``None``: each
        session draws ``p_a ~ U(0, 1)`` independently per arm at ``reset``.
    correlated : bool
        Two arms only: ``p_2 = 1 − p_1`` (Wang et al. 2018's correlated bandits), ``p_1 ~
        U(0, 1)`` per session. With ``probs`` given they must sum to 1.
    """

    id = "bandit/bernoulli"
    reward_kind: RewardKind = "binary"
    reference = "Wang et al. 2018 (independent and correlated two-armed Bernoulli bandits)"

    def __init__(
        self, n_arms: int | None = None, probs: Any = None, correlated: bool = False
    ) -> None:
        p = None if probs is None else check_vector("probs", probs, None, low=0, high=1)
        self.n_arms = resolve_n_arms(n_arms, p, "probs", 2)
        if not isinstance(correlated, bool | np.bool_):
            raise ValueError(f"correlated = {correlated!r} is not allowed; choose True or False")
        if correlated and self.n_arms != 2:
            raise ValueError(f"correlated = True needs n_arms = 2, got n_arms = {self.n_arms}")
        if correlated and p is not None and abs(p.sum() - 1) > 1e-12:
            raise ValueError(f"correlated = True needs probs summing to 1, got probs = {probs!r}")
        self.probs, self.correlated = p, bool(correlated)
        self.kwargs = {"n_arms": self.n_arms, "probs": _jsonable(p), "correlated": self.correlated}

    def _start(self, rng: np.random.Generator, n: int) -> None:
        if self.probs is not None:
            self._p = np.broadcast_to(self.probs, (n, self.n_arms)).copy()
        elif self.correlated:
            p1 = rng.random(n)
            self._p = np.stack([p1, 1.0 - p1], axis=1)
        else:
            self._p = rng.random((n, self.n_arms))

    def _stats(self) -> tuple[np.ndarray, np.ndarray]:
        return self._p, np.sqrt(self._p * (1.0 - self._p))

    def _draw(self, rng: np.random.Generator) -> np.ndarray:
        return (rng.random(self._p.shape) < self._p).astype(np.float64)


class GaussianBandit(BanditParadigm):
    """Stationary Gaussian arms (``bandit/gaussian``): arm ``a`` pays ``N(m_a, sd_a²)``.

    Parameters
    ----------
    n_arms : int, optional
        Number of arms (>= 2); ``None``: ``len(means)``, or 2.
    means : sequence of float, optional
        Fixed arm means (reward units), the same in every session. ``None``: each session
        draws ``m_a ~ N(0, 1)`` independently per arm at ``reset``.
    sd : float or sequence of float
        Payoff SD (> 0), one for all arms or one per arm.
    """

    id = "bandit/gaussian"
    reward_kind: RewardKind = "continuous"
    reference = "stationary Gaussian bandit (means ~ N(0, 1) per session unless given)"

    def __init__(self, n_arms: int | None = None, means: Any = None, sd: Any = 1.0) -> None:
        m = None if means is None else check_vector("means", means, None)
        self.n_arms = resolve_n_arms(n_arms, m, "means", 2)
        if np.ndim(sd) == 0:
            s = np.full(self.n_arms, check_number("sd", sd, low=0, low_open=True))
        else:
            s = check_vector("sd", sd, self.n_arms, low=0, low_open=True)
        self.means, self.sd = m, s
        sd_kw = float(s[0]) if np.ndim(sd) == 0 else _jsonable(s)
        self.kwargs = {"n_arms": self.n_arms, "means": _jsonable(m), "sd": sd_kw}

    def _start(self, rng: np.random.Generator, n: int) -> None:
        shape = (n, self.n_arms)
        self._m = (
            rng.standard_normal(shape)
            if self.means is None
            else np.broadcast_to(self.means, shape).copy()
        )
        self._s = np.broadcast_to(self.sd, shape).copy()

    def _stats(self) -> tuple[np.ndarray, np.ndarray]:
        return self._m, self._s

    def _draw(self, rng: np.random.Generator) -> np.ndarray:
        return self._m + self._s * rng.standard_normal(self._m.shape)


class SwitchingBandit(BanditParadigm):
    """Bernoulli arms whose best arm changes at random reversals (``bandit/switching``).

    Each session starts with the reward probabilities ``probs`` assigned to the arms in a
    uniformly random order. After every trial, with probability ``hazard`` (independently
    per session), the assignment is re-drawn so that the best arm changes: the best
    probability moves to one of the other arms (uniformly) and the remaining probabilities
    are shuffled over the remaining arms. With two arms a reversal swaps them.

    Parameters
    ----------
    n_arms : int, optional
        Number of arms (>= 2); ``None``: ``len(probs)``, or 2.
    probs : sequence of float, optional
        Reward probabilities (each in [0, 1], a unique maximum). ``None``: ``0.8`` for the
        best arm and ``0.2`` for every other arm.
    hazard : float
        Probability of a reversal after each trial, in [0, 1] (per trial; the expected block
        length is ``1 / hazard`` trials).
    """

    id = "bandit/switching"
    reward_kind: RewardKind = "binary"
    reference = "block-reversal (switching) Bernoulli bandit with a constant hazard rate"

    def __init__(self, n_arms: int | None = None, probs: Any = None, hazard: float = 0.05) -> None:
        p = None if probs is None else check_vector("probs", probs, None, low=0, high=1)
        self.n_arms = resolve_n_arms(n_arms, p, "probs", 2)
        if p is None:
            p = np.array([0.8] + [0.2] * (self.n_arms - 1))
        if np.sum(p == p.max()) != 1:
            raise ValueError(
                f"probs = {probs!r} is not allowed; it needs a unique largest probability "
                "(the best arm that reversals move)"
            )
        self.probs = np.sort(p)[::-1].copy()  # best first
        self._given = p
        self.hazard = check_number("hazard", hazard, low=0, high=1)
        self.kwargs = {"n_arms": self.n_arms, "probs": _jsonable(p), "hazard": self.hazard}

    def _assign(self, keys: np.ndarray) -> np.ndarray:
        """Probabilities ``[k, A]``: the arm with the smallest key gets the best probability,
        the next smallest the second best, and so on."""
        out = np.empty_like(keys)
        order = np.argsort(keys, axis=1)
        np.put_along_axis(out, order, np.broadcast_to(self.probs, keys.shape), axis=1)
        return out

    def _start(self, rng: np.random.Generator, n: int) -> None:
        self._p = self._assign(rng.random((n, self.n_arms)))

    def _stats(self) -> tuple[np.ndarray, np.ndarray]:
        return self._p, np.sqrt(self._p * (1.0 - self._p))

    def _draw(self, rng: np.random.Generator) -> np.ndarray:
        return (rng.random(self._p.shape) < self._p).astype(np.float64)

    def _advance(self, rng: np.random.Generator) -> None:
        n, a = self._p.shape
        switch = rng.random(n) < self.hazard
        shift = rng.integers(1, a, size=n)  # the best arm moves this many arms on (mod A)
        keys = rng.random((n, a))
        idx = np.flatnonzero(switch)
        if idx.size:
            new_best = (self._p[idx].argmax(1) + shift[idx]) % a
            k = keys[idx]
            k[np.arange(idx.size), new_best] = -1.0  # smallest key: gets the best probability
            self._p[idx] = self._assign(k)


def _register() -> None:
    """Register every ``bandit/*`` id (idempotent)."""
    from ._bandit_envs import GaussianMixtureBandit, RestlessBandit

    for cls in (
        BernoulliBandit,
        GaussianBandit,
        SwitchingBandit,
        RestlessBandit,
        GaussianMixtureBandit,
    ):
        register(cls.id, cls)
