"""The bandit-agent contract (vectorised over sessions) and the closed-loop runner.

An agent holds one state per session: ``S`` sessions of the same agent class run as one
vectorised object, each with its own parameters (a float shared by every session, or an
array ``[S]``). The runner :func:`run_bandit` alternates ``choice_probabilities`` / ``act``
with the environment's ``step`` and the agent's ``update``, and returns the behaviour as an
``xarray.Dataset`` with dims ``session, trial, arm``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any, ClassVar, Protocol

import numpy as np
import pandas as pd
import xarray as xr
from tqdm.auto import tqdm

from paradigms import as_generator

BEHAVIOUR_SCHEMA = "neurosim.bandit_behaviour"


class BanditEnvironment(Protocol):
    """What :func:`run_bandit` needs of a closed-loop bandit (``paradigms.make("bandit/...")``)."""

    id: str
    n_arms: int
    kwargs: dict[str, Any]

    def reset(self, n_sessions: int, rng: np.random.Generator | int | None) -> None: ...

    @property
    def expected_rewards(self) -> np.ndarray: ...

    @property
    def reward_sd(self) -> np.ndarray: ...

    def step(self, actions: np.ndarray) -> np.ndarray: ...


class BanditAgent:
    """Base class of the bandit agents: one vectorised object for ``S`` sessions.

    Subclasses set the class attributes and implement :meth:`_reset`,
    :meth:`choice_probabilities` and :meth:`_update`; agents whose choice rule samples
    (Thompson sampling, the Rényi agent) override :meth:`act` to sample their rule directly
    and compute :meth:`choice_probabilities` exactly or by deterministic quadrature, so that
    the likelihood of choice data is a smooth, repeatable function of the parameters.

    Class attributes
    ----------------
    name : str
        Short name used in tables and datasets.
    param_names : tuple of str
        The fittable parameters, in order.
    defaults : dict
        A default for every parameter a user may leave out.
    param_domain : dict
        Allowed closed interval ``(low, high)`` of each parameter (``±inf`` allowed).
    param_bounds : dict
        Finite search bounds for fitting (inside ``param_domain``).

    Parameters
    ----------
    **params : float or array_like
        One value per parameter: a number shared by all sessions, or a 1-D array with one
        value per session (its length must equal ``n_sessions`` at :meth:`reset`).
    """

    name: ClassVar[str] = "agent"
    param_names: ClassVar[tuple[str, ...]] = ()
    defaults: ClassVar[dict[str, float]] = {}
    param_domain: ClassVar[dict[str, tuple[float, float]]] = {}
    param_bounds: ClassVar[dict[str, tuple[float, float]]] = {}

    def __init__(self, **params: Any) -> None:
        unknown = sorted(set(params) - set(self.param_names) - set(self.extra_options()))
        if unknown:
            raise TypeError(
                f"{type(self).__name__} got unknown parameter(s) {unknown}; "
                f"its parameters are {list(self.param_names)}"
            )
        missing = [p for p in self.param_names if p not in params and p not in self.defaults]
        if missing:
            raise TypeError(f"{type(self).__name__} needs a value for {missing}")
        self.params: dict[str, np.ndarray] = {}
        for p in self.param_names:
            self.params[p] = self._check_param(p, params.get(p, self.defaults.get(p)))
        self.n_sessions = 0
        self.n_arms = 0
        self.rng = np.random.default_rng(0)
        self.p: dict[str, np.ndarray] = {}

    @classmethod
    def extra_options(cls) -> tuple[str, ...]:
        """Keyword options that are not fittable parameters (none by default)."""
        return ()

    def _check_param(self, name: str, value: Any) -> np.ndarray:
        arr = np.asarray(value, dtype=np.float64) if value is not None else np.array(np.nan)
        if arr.ndim > 1 or not np.isfinite(arr).all():
            raise ValueError(
                f"{type(self).__name__} parameter {name} = {value!r} is not allowed; give a "
                "finite number or a 1-D array of finite numbers (one per session)"
            )
        low, high = self.param_domain.get(name, (-math.inf, math.inf))
        if (arr < low).any() or (arr > high).any():
            raise ValueError(
                f"{type(self).__name__} parameter {name} = {value!r} is not allowed; it must "
                f"lie in [{low}, {high}]"
            )
        return arr

    # -- the contract -------------------------------------------------------------------
    def reset(
        self, n_sessions: int, n_arms: int, rng: np.random.Generator | int | None = None
    ) -> None:
        """Start ``n_sessions`` fresh sessions with ``n_arms`` arms; ``rng`` drives :meth:`act`."""
        for field, value, low in (("n_sessions", n_sessions, 1), ("n_arms", n_arms, 2)):
            if not isinstance(value, int | np.integer) or value < low:
                raise ValueError(f"{field} = {value!r} is not allowed; give an integer >= {low}")
        self.n_sessions, self.n_arms = int(n_sessions), int(n_arms)
        self.rng = as_generator(rng)
        self.p = {}
        for name, arr in self.params.items():
            if arr.ndim == 1 and len(arr) != self.n_sessions:
                raise ValueError(
                    f"{type(self).__name__} parameter {name} has {len(arr)} values but there "
                    f"are n_sessions = {self.n_sessions}; give one value or one per session"
                )
            self.p[name] = np.broadcast_to(arr, (self.n_sessions,)).astype(np.float64)
        self._reset()

    def _reset(self) -> None:
        raise NotImplementedError

    def choice_probabilities(self) -> np.ndarray:
        """Probability of choosing each arm on the coming trial, ``float64 [S, A]``."""
        raise NotImplementedError

    def act(self) -> np.ndarray:
        """Draw one choice per session from :meth:`choice_probabilities` (``int64 [S]``)."""
        p = self.choice_probabilities()
        u = self.rng.random((self.n_sessions, 1))
        return np.minimum((np.cumsum(p, axis=1) < u).sum(1), self.n_arms - 1).astype(np.int64)

    def update(self, choices: np.ndarray, rewards: np.ndarray) -> None:
        """Learn from this trial's ``choices`` (``int [S]``) and ``rewards`` (``float [S]``)."""
        c = np.asarray(choices)
        r = np.asarray(rewards, dtype=np.float64)
        if c.shape != (self.n_sessions,) or r.shape != (self.n_sessions,):
            raise ValueError(
                f"choices and rewards must have shape ({self.n_sessions},); got {c.shape} "
                f"and {r.shape}"
            )
        if c.dtype.kind not in "iu" or (c < 0).any() or (c >= self.n_arms).any():
            raise ValueError(
                f"choices must be integers in [0, {self.n_arms - 1}]; got {c[:5]!r} (dtype "
                f"{c.dtype})"
            )
        if not np.isfinite(r).all():
            raise ValueError("rewards must be finite numbers")
        self._update(c.astype(np.int64), r)

    def _update(self, choices: np.ndarray, rewards: np.ndarray) -> None:
        raise NotImplementedError

    def state(self) -> dict[str, np.ndarray]:
        """Internal variables to record each trial, each ``float64 [S, A]`` (none by default)."""
        return {}

    def describe(self) -> dict[str, Any]:
        """Name and parameters (lists for per-session arrays), JSON-serialisable."""
        return {"agent": self.name, "params": {k: v.tolist() for k, v in self.params.items()}}

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{k}={v.item():g}" if v.ndim == 0 else f"{k}=[{len(v)} values]"
            for k, v in self.params.items()
        )
        return f"{type(self).__name__}({shown})"


class RandomAgent(BanditAgent):
    """Chooses uniformly at random: the chance baseline (no parameters).

    Examples
    --------
    >>> agent = RandomAgent()
    >>> agent.reset(3, 4, rng=0)
    >>> agent.choice_probabilities()[0].tolist()
    [0.25, 0.25, 0.25, 0.25]
    """

    name = "random"

    def _reset(self) -> None:
        pass

    def choice_probabilities(self) -> np.ndarray:
        return np.full((self.n_sessions, self.n_arms), 1.0 / self.n_arms)

    def _update(self, choices: np.ndarray, rewards: np.ndarray) -> None:
        pass


def _seeds(seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    env_seq, agent_seq = np.random.SeedSequence(seed).spawn(2)
    return np.random.default_rng(env_seq), np.random.default_rng(agent_seq)


def run_bandit(
    agent: BanditAgent,
    env: BanditEnvironment,
    n_sessions: int,
    n_trials: int,
    seed: int = 0,
    *,
    record_probabilities: bool = True,
    progress: bool = False,
) -> xr.Dataset:
    """Run ``agent`` on ``n_sessions`` independent sessions of ``env`` for ``n_trials`` each.

    Parameters
    ----------
    agent : BanditAgent
        Any agent of :mod:`neurosim.agents`; per-session parameter arrays need
        ``n_sessions`` values.
    env : closed-loop bandit paradigm
        E.g. ``paradigms.make("bandit/sajid2021")``.
    n_sessions, n_trials : int
    seed : int, default 0
        Seeds the environment and the agent (independent streams): same seed, same run.
    record_probabilities : bool, default True
        Store the agent's choice probabilities each trial (``p_choice``); turn off to save
        the quadrature of sampling agents on long runs.
    progress : bool, default False
        Show a progress bar over trials.

    Returns
    -------
    xarray.Dataset
        Dims ``session, trial, arm``. ``choice`` (int64) and ``reward`` (session, trial);
        ``expected_reward`` and ``reward_sd`` (session, trial, arm): the true arm
        statistics of each trial; ``best_arm``; ``regret`` = best expected reward minus the
        chosen arm's (exact, not sampled); ``p_choice`` (session, trial, arm); the agent's
        state variables (e.g. ``value``) as they were *before* the trial's choice; and
        ``param_<name>`` (session) for each agent parameter. ``attrs``: schema, agent,
        agent_params and paradigm_kwargs (JSON), paradigm id, seed.

    Examples
    --------
    >>> import paradigms
    >>> from neurosim.agents import RandomAgent, run_bandit
    >>> ds = run_bandit(RandomAgent(), paradigms.make("bandit/bernoulli"), 4, 10, seed=0)
    >>> ds["choice"].dims, ds.sizes["arm"]
    (('session', 'trial'), 2)
    >>> bool((ds["regret"] >= 0).all())
    True
    """
    for field, value in (("n_sessions", n_sessions), ("n_trials", n_trials)):
        if not isinstance(value, int | np.integer) or value < 1:
            raise ValueError(f"{field} = {value!r} is not allowed; give an integer >= 1")
    if not isinstance(seed, int | np.integer):
        raise TypeError(f"seed = {seed!r} is not allowed; give an int")
    env_rng, agent_rng = _seeds(int(seed))
    env.reset(n_sessions, env_rng)
    agent.reset(n_sessions, env.n_arms, agent_rng)
    S, T, A = int(n_sessions), int(n_trials), env.n_arms
    choice = np.empty((S, T), np.int64)
    reward = np.empty((S, T))
    mean = np.empty((S, T, A))
    sd = np.empty((S, T, A))
    probs = np.full((S, T, A), np.nan)
    states: dict[str, np.ndarray] = {}
    for t in tqdm(range(T), desc=f"{agent.name} on {env.id}", disable=not progress, leave=False):
        mean[:, t] = env.expected_rewards
        sd[:, t] = env.reward_sd
        if record_probabilities:
            probs[:, t] = agent.choice_probabilities()
        for name, value in agent.state().items():
            states.setdefault(name, np.empty((S, T, A)))[:, t] = value
        c = agent.act()
        r = env.step(c)
        agent.update(c, r)
        choice[:, t], reward[:, t] = c, r
    best = mean.max(-1)
    chosen = np.take_along_axis(mean, choice[..., None], -1)[..., 0]
    data: dict[str, Any] = {
        "choice": (("session", "trial"), choice),
        "reward": (("session", "trial"), reward),
        "expected_reward": (("session", "trial", "arm"), mean),
        "reward_sd": (("session", "trial", "arm"), sd),
        "best_arm": (("session", "trial"), mean.argmax(-1).astype(np.int64)),
        "regret": (("session", "trial"), best - chosen),
        "p_choice": (("session", "trial", "arm"), probs),
    }
    for name, value in states.items():
        data[name] = (("session", "trial", "arm"), value)
    for name, value in agent.p.items():
        data[f"param_{name}"] = (("session",), np.array(value))
    return xr.Dataset(
        data,
        coords={"session": np.arange(S), "trial": np.arange(T), "arm": np.arange(A)},
        attrs={
            "schema": BEHAVIOUR_SCHEMA,
            "agent": agent.name,
            "agent_params": json.dumps(agent.describe()["params"]),
            "paradigm": env.id,
            "paradigm_kwargs": json.dumps(env.kwargs, default=str),
            "seed": int(seed),
        },
    )


def choices_frame(ds: xr.Dataset | Mapping[str, Any]) -> pd.DataFrame:
    """The long table ``session, trial, choice, reward`` of a :func:`run_bandit` dataset.

    Examples
    --------
    >>> import paradigms
    >>> from neurosim.agents import RandomAgent, run_bandit
    >>> df = choices_frame(run_bandit(RandomAgent(), paradigms.make("bandit/bernoulli"), 2, 3))
    >>> list(df.columns), len(df)
    (['session', 'trial', 'choice', 'reward'], 6)
    """
    choice = np.asarray(ds["choice"])
    reward = np.asarray(ds["reward"])
    S, T = choice.shape
    return pd.DataFrame(
        {
            "session": np.repeat(np.arange(S), T),
            "trial": np.tile(np.arange(T), S),
            "choice": choice.ravel(),
            "reward": reward.ravel(),
        }
    )
