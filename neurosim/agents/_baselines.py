"""Baseline bandit agents: ε-greedy, softmax Q-learning, UCB1 and Thompson sampling.

Every agent is vectorised over sessions (parameters are a number or one value per session)
and gives exact choice probabilities, so choice data have a likelihood
(:func:`neurosim.agents._fit.fit_agent`); the sampling agents compute theirs by quadrature
(Thompson Beta: Gauss–Legendre panels, ~1e-9; Thompson Gaussian:
:func:`~neurosim.agents._quadrature.gaussian_argmax_probabilities`, exact for two arms).
UCB1 is deterministic: it is a performance baseline, not a model to fit to choices.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from scipy import special

from ._base import BanditAgent
from ._quadrature import gaussian_argmax_probabilities

_TIE_TOL = 1e-12  # values within this (relative) of the maximum count as tied


def _argmax_ties(values: np.ndarray) -> np.ndarray:
    """Uniform probability over the arms that share the maximum of ``values`` ``[S, A]``."""
    top = values.max(-1, keepdims=True)
    tied = values >= top - _TIE_TOL * np.maximum(1.0, np.abs(top))
    return tied / tied.sum(-1, keepdims=True)


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    return logits - special.logsumexp(logits, axis=-1, keepdims=True)


class _DeltaRuleAgent(BanditAgent):
    """Shared state of the value learners: ``Q ← Q + α (r − Q)`` on the chosen arm."""

    def __init__(self, *, initial_value: float = 0.0, **params: Any) -> None:
        super().__init__(**params)
        if not np.isfinite(initial_value):
            raise ValueError(f"initial_value = {initial_value!r} is not allowed; give a number")
        self.initial_value = float(initial_value)

    @classmethod
    def extra_options(cls) -> tuple[str, ...]:
        return ("initial_value",)

    def _reset(self) -> None:
        self.q = np.full((self.n_sessions, self.n_arms), self.initial_value)

    def _update(self, choices: np.ndarray, rewards: np.ndarray) -> None:
        rows = np.arange(self.n_sessions)
        q = self.q[rows, choices]
        self.q[rows, choices] = q + self.p["learning_rate"] * (rewards - q)

    def state(self) -> dict[str, np.ndarray]:
        return {"value": self.q.copy()}


class EpsilonGreedy(_DeltaRuleAgent):
    """ε-greedy delta-rule learner: the greedy arm with probability 1 − ε, else uniform.

    ``P(a) = ε/A + (1 − ε)·[a is greedy]/n_greedy`` (arms whose value is within 1e-12 of the
    maximum share the greedy mass); values learn by ``Q ← Q + α (r − Q)`` on the chosen arm,
    from ``initial_value``. The likelihood is piecewise constant in ``learning_rate`` (only the
    ranking of the values matters), so gradient fits of it rely on restarts.

    Parameters
    ----------
    epsilon : float, default 0.1
        Exploration probability, in [0, 1].
    learning_rate : float, default 0.1
        α in [0, 1].
    initial_value : float, default 0.0
        Starting value of every arm (an option, not fitted).

    Examples
    --------
    >>> import numpy as np
    >>> agent = EpsilonGreedy(epsilon=0.2, learning_rate=0.5)
    >>> agent.reset(1, 3, rng=0)
    >>> agent.update(np.array([2]), np.array([1.0]))
    >>> agent.choice_probabilities().round(4).tolist()
    [[0.0667, 0.0667, 0.8667]]
    """

    name = "epsilon_greedy"
    param_names = ("epsilon", "learning_rate")
    defaults: ClassVar[dict[str, float]] = {"epsilon": 0.1, "learning_rate": 0.1}
    param_domain: ClassVar[dict[str, tuple[float, float]]] = {
        "epsilon": (0.0, 1.0),
        "learning_rate": (0.0, 1.0),
    }
    param_bounds: ClassVar[dict[str, tuple[float, float]]] = {
        "epsilon": (0.0, 1.0),
        "learning_rate": (0.0, 1.0),
    }

    def choice_probabilities(self) -> np.ndarray:
        eps = self.p["epsilon"][:, None]
        return eps / self.n_arms + (1.0 - eps) * _argmax_ties(self.q)


class SoftmaxQ(_DeltaRuleAgent):
    """Softmax (Boltzmann) delta-rule learner: ``P(a) ∝ exp(β Q_a)``.

    Values learn by ``Q ← Q + α (r − Q)`` on the chosen arm, from ``initial_value``.

    Parameters
    ----------
    learning_rate : float, default 0.3
        α in [0, 1].
    beta : float, default 3.0
        Inverse temperature, >= 0 (search bounds [0, 20], for rewards of order 1).
    initial_value : float, default 0.0
        Starting value of every arm (an option, not fitted).

    Examples
    --------
    >>> import numpy as np
    >>> agent = SoftmaxQ(learning_rate=0.5, beta=2.0)
    >>> agent.reset(1, 2, rng=0)
    >>> agent.update(np.array([0]), np.array([1.0]))
    >>> agent.state()["value"].tolist()
    [[0.5, 0.0]]
    >>> agent.choice_probabilities().round(4).tolist()  # logistic(2 × 0.5)
    [[0.7311, 0.2689]]
    """

    name = "softmax_q"
    param_names = ("learning_rate", "beta")
    defaults: ClassVar[dict[str, float]] = {"learning_rate": 0.3, "beta": 3.0}
    param_domain: ClassVar[dict[str, tuple[float, float]]] = {
        "learning_rate": (0.0, 1.0),
        "beta": (0.0, np.inf),
    }
    param_bounds: ClassVar[dict[str, tuple[float, float]]] = {
        "learning_rate": (0.0, 1.0),
        "beta": (0.0, 20.0),
    }

    def log_choice_probabilities(self) -> np.ndarray:
        """``log P(a)`` by a stable log-softmax (what the likelihood uses)."""
        return _log_softmax(self.p["beta"][:, None] * self.q)

    def choice_probabilities(self) -> np.ndarray:
        return np.exp(self.log_choice_probabilities())


class UCB1(BanditAgent):
    """UCB1 (Auer et al. 2002): try every arm once, then the argmax of ``Q_a + c √(2 ln t / n_a)``.

    ``Q_a`` is the sample mean of arm ``a``, ``n_a`` its pull count and ``t`` the number of
    trials so far. Untried arms come first (uniformly among them); ties split evenly.
    The rule is deterministic, so :meth:`choice_probabilities` is 0 for every arm but the
    chosen one(s): UCB1 is a performance baseline and is **not meant for likelihood fitting**
    (any deviation from its choices has probability 0).

    Parameters
    ----------
    c : float, default 1.0
        Exploration weight, >= 0 (``c = 1`` is Auer's UCB1).

    Examples
    --------
    >>> import numpy as np
    >>> agent = UCB1()
    >>> agent.reset(1, 3, rng=0)
    >>> agent.update(np.array([0]), np.array([1.0]))
    >>> agent.choice_probabilities().tolist()  # the two untried arms first
    [[0.0, 0.5, 0.5]]
    """

    name = "ucb1"
    param_names = ("c",)
    defaults: ClassVar[dict[str, float]] = {"c": 1.0}
    param_domain: ClassVar[dict[str, tuple[float, float]]] = {"c": (0.0, np.inf)}
    param_bounds: ClassVar[dict[str, tuple[float, float]]] = {"c": (0.0, 5.0)}

    def _reset(self) -> None:
        self.counts = np.zeros((self.n_sessions, self.n_arms))
        self.q = np.zeros((self.n_sessions, self.n_arms))
        self.t = 0

    def choice_probabilities(self) -> np.ndarray:
        untried = self.counts == 0
        bonus = np.sqrt(2.0 * np.log(max(self.t, 1)) / np.maximum(self.counts, 1.0))
        ucb = _argmax_ties(self.q + self.p["c"][:, None] * bonus)
        first = untried / np.maximum(untried.sum(-1, keepdims=True), 1)
        return np.where(untried.any(-1, keepdims=True), first, ucb)

    def _update(self, choices: np.ndarray, rewards: np.ndarray) -> None:
        rows = np.arange(self.n_sessions)
        self.counts[rows, choices] += 1.0
        n = self.counts[rows, choices]
        self.q[rows, choices] += (rewards - self.q[rows, choices]) / n
        self.t += 1

    def state(self) -> dict[str, np.ndarray]:
        return {"value": self.q.copy(), "count": self.counts.copy()}


# -- Thompson sampling ------------------------------------------------------------------------
_BETA_Z = np.array([-20.0, -10, -6, -4, -2.5, -1.2, 0, 1.2, 2.5, 4, 6, 10, 20])
_BETA_EDGE = np.array([1e-6, 1e-4, 1e-3, 1e-2, 5e-2])
_BETA_BREAKS = np.concatenate([[0.0], _BETA_EDGE, 1.0 - _BETA_EDGE[::-1], [1.0]])
_GL_X, _GL_W = np.polynomial.legendre.leggauss(6)


def beta_argmax_probabilities(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """P(arm a has the largest draw) for independent ``X_a ~ Beta(a_a, b_a)``, over the last axis.

    ``P_a = ∫ f_a(x) Π_{b≠a} F_b(x) dx`` by 6-point Gauss–Legendre on panels whose edges are
    every arm's mean + sd·z (z from −20 to 20) and a mesh graded towards 0 and 1 (for
    ``a`` or ``b`` near 1), with exact Beta CDFs; renormalised to sum to 1. Agrees with
    adaptive quadrature to ~1e-9 for integer counts and ~1e-8 for fractional ones (tested
    on 2–4 arms with counts up to 500). Deterministic.

    Parameters
    ----------
    a, b : numpy.ndarray
        Same shape ``[..., A]``, every entry >= 1 (densities bounded).

    Returns
    -------
    numpy.ndarray
        ``[..., A]`` probabilities, each row summing to 1.

    Examples
    --------
    >>> import numpy as np
    >>> beta_argmax_probabilities(np.array([2.0, 1.0]), np.array([1.0, 1.0])).round(6).tolist()
    [0.666667, 0.333333]
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim < 1:
        raise ValueError(f"a and b must have the same shape [..., A]; got {a.shape}, {b.shape}")
    if not (np.isfinite(a).all() and np.isfinite(b).all() and (a >= 1).all() and (b >= 1).all()):
        raise ValueError("a and b must be finite and >= 1")
    lead, n_arms = a.shape[:-1], a.shape[-1]
    n = a + b
    mean = a / n
    sd = np.sqrt(a * b / (n * n * (n + 1.0)))
    arm_breaks = np.clip(mean[..., None] + sd[..., None] * _BETA_Z, 0.0, 1.0).reshape(*lead, -1)
    edges = np.sort(
        np.concatenate([np.broadcast_to(_BETA_BREAKS, (*lead, _BETA_BREAKS.size)), arm_breaks], -1),
        axis=-1,
    )
    lo, hi = edges[..., :-1], edges[..., 1:]
    half = 0.5 * (hi - lo)
    x = (0.5 * (lo + hi))[..., None] + half[..., None] * _GL_X
    w = (half[..., None] * _GL_W).reshape(*lead, -1)
    x = np.clip(x.reshape(*lead, -1), 1e-300, 1.0 - 1e-16)[..., None, :]  # [..., 1, N]
    aa, bb = a[..., None], b[..., None]
    with np.errstate(under="ignore"):
        pdf = np.exp(
            (aa - 1.0) * np.log(x) + (bb - 1.0) * np.log1p(-x) - special.betaln(aa, bb)
        )  # [..., A, N]
        cdf = special.betainc(aa, bb, x)
        p = np.empty(a.shape)
        for k in range(n_arms):
            others = np.prod(np.delete(cdf, k, axis=-2), axis=-2)
            p[..., k] = (w * pdf[..., k, :] * others).sum(-1)
    return p / p.sum(-1, keepdims=True)


class ThompsonBeta(BanditAgent):
    """Thompson sampling with a Beta prior on each Bernoulli arm (no fitted parameters).

    Posterior ``Beta(a, b)`` per arm from ``Beta(prior_a, prior_b)``; a reward ``r`` in
    [0, 1] adds ``r`` to ``a`` and ``1 − r`` to ``b`` of the chosen arm (0/1 rewards give the
    usual counts). :meth:`act` samples one draw per arm and takes the argmax;
    :meth:`choice_probabilities` integrates the same rule numerically
    (:func:`beta_argmax_probabilities`, ~1e-9).

    Parameters
    ----------
    prior_a, prior_b : float, default 1.0
        The Beta prior (options, not fitted; >= 1 so the quadrature stays exact).

    Examples
    --------
    >>> import numpy as np
    >>> agent = ThompsonBeta()
    >>> agent.reset(1, 2, rng=0)
    >>> agent.update(np.array([0]), np.array([1.0]))  # arm 0: Beta(2, 1); arm 1: Beta(1, 1)
    >>> agent.choice_probabilities().round(6).tolist()
    [[0.666667, 0.333333]]
    """

    name = "thompson_beta"

    def __init__(self, *, prior_a: float = 1.0, prior_b: float = 1.0, **params: Any) -> None:
        super().__init__(**params)
        for field, value in (("prior_a", prior_a), ("prior_b", prior_b)):
            if not (np.isfinite(value) and value >= 1.0):
                raise ValueError(f"{field} = {value!r} is not allowed; give a number >= 1")
        self.prior_a, self.prior_b = float(prior_a), float(prior_b)

    @classmethod
    def extra_options(cls) -> tuple[str, ...]:
        return ("prior_a", "prior_b")

    def _reset(self) -> None:
        self.a = np.full((self.n_sessions, self.n_arms), self.prior_a)
        self.b = np.full((self.n_sessions, self.n_arms), self.prior_b)

    def choice_probabilities(self) -> np.ndarray:
        return beta_argmax_probabilities(self.a, self.b)

    def act(self) -> np.ndarray:
        return self.rng.beta(self.a, self.b).argmax(-1).astype(np.int64)

    def _update(self, choices: np.ndarray, rewards: np.ndarray) -> None:
        if ((rewards < 0) | (rewards > 1)).any():
            bad = rewards[(rewards < 0) | (rewards > 1)][0]
            raise ValueError(
                f"ThompsonBeta needs rewards in [0, 1] (Bernoulli arms); got reward {float(bad)!r}"
            )
        rows = np.arange(self.n_sessions)
        self.a[rows, choices] += rewards
        self.b[rows, choices] += 1.0 - rewards

    def state(self) -> dict[str, np.ndarray]:
        n = self.a + self.b
        return {"value": self.a / n, "sd": np.sqrt(self.a * self.b / (n * n * (n + 1.0)))}


class ThompsonGaussian(BanditAgent):
    """Thompson sampling with a Gaussian prior on each arm's mean and known observation noise.

    Conjugate posterior ``N(m, s²)`` per arm, from ``N(prior_mean, prior_sd²)``; a reward on
    the chosen arm gives precision ``1/s² + 1/obs_sd²`` and mean
    ``s'² (m/s² + r/obs_sd²)``. :meth:`act` samples one draw per arm and takes the argmax;
    :meth:`choice_probabilities` is
    :func:`~neurosim.agents._quadrature.gaussian_argmax_probabilities` (exact for 2 arms).

    Parameters
    ----------
    prior_mean : float, default 0.0
    prior_sd : float, default 1.0
        > 0.
    obs_sd : float, default 1.0
        Assumed SD of the payoffs, > 0.

    Examples
    --------
    >>> import numpy as np
    >>> agent = ThompsonGaussian(prior_mean=0.0, prior_sd=1.0, obs_sd=1.0)
    >>> agent.reset(1, 2, rng=0)
    >>> agent.update(np.array([0]), np.array([2.0]))
    >>> agent.state()["value"].tolist(), agent.state()["sd"].round(4).tolist()
    ([[1.0, 0.0]], [[0.7071, 1.0]])
    """

    name = "thompson_gaussian"
    param_names = ("prior_mean", "prior_sd", "obs_sd")
    defaults: ClassVar[dict[str, float]] = {"prior_mean": 0.0, "prior_sd": 1.0, "obs_sd": 1.0}
    param_domain: ClassVar[dict[str, tuple[float, float]]] = {
        "prior_mean": (-np.inf, np.inf),
        "prior_sd": (1e-6, np.inf),
        "obs_sd": (1e-6, np.inf),
    }
    param_bounds: ClassVar[dict[str, tuple[float, float]]] = {
        "prior_mean": (-5.0, 5.0),
        "prior_sd": (0.05, 10.0),
        "obs_sd": (0.05, 10.0),
    }

    def _reset(self) -> None:
        shape = (self.n_sessions, self.n_arms)
        self.mean = np.broadcast_to(self.p["prior_mean"][:, None], shape).copy()
        self.var = np.broadcast_to(self.p["prior_sd"][:, None] ** 2, shape).copy()

    def choice_probabilities(self) -> np.ndarray:
        return gaussian_argmax_probabilities(self.mean, np.sqrt(self.var))

    def act(self) -> np.ndarray:
        draw = self.mean + np.sqrt(self.var) * self.rng.standard_normal(self.mean.shape)
        return draw.argmax(-1).astype(np.int64)

    def _update(self, choices: np.ndarray, rewards: np.ndarray) -> None:
        rows = np.arange(self.n_sessions)
        obs_var = self.p["obs_sd"] ** 2
        var = self.var[rows, choices]
        gain = var / (var + obs_var)
        self.mean[rows, choices] += gain * (rewards - self.mean[rows, choices])
        self.var[rows, choices] = (1.0 - gain) * var

    def state(self) -> dict[str, np.ndarray]:
        return {"value": self.mean.copy(), "sd": np.sqrt(self.var)}
