"""The restless bandit of Daw et al. (2006) and the Gaussian-mixture bandit of Sajid et al. (2021)."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import ndtr

from ._bandits import BanditParadigm, RewardKind, _jsonable, check_number, check_vector

#: Sajid et al. (2021)'s three arms, each a list of mixture components ``(weight, mean, sd)``.
SAJID2021_ARMS: tuple[tuple[tuple[float, float, float], ...], ...] = (
    ((0.97, 10.0, 1.0), (0.03, 22.0, 1.0)),
    ((1.0, 16.0, 3.0),),
    ((0.97, 18.0, 1.0), (0.03, 10.0, 1.0)),
)


class RestlessBandit(BanditParadigm):
    """Restless Gaussian arms with rounded, clipped payoffs (``bandit/daw2006``).

    Daw et al. (2006): the mean payoff ``μ`` of every arm follows a decaying Gaussian random
    walk, updated after each trial (independently per arm and session) as
    ``μ ← λ μ + (1 − λ) θ + N(0, σ_d²)``, and the arm pays ``round(μ + N(0, σ_o²))`` points
    clipped to ``[low, high]``. The walk is stationary with mean ``θ`` and variance
    ``σ_d² / (1 − λ²)`` (SD 15.5 points at the paper's values).

    ``expected_rewards`` is the exact mean of the payoff actually paid (rounded and
    clipped), not ``μ``: ``E = low + Σ_{k=low}^{high−1} P(μ + ε ≥ k + ½)`` with the normal
    CDF, and ``reward_sd`` likewise from ``E[payoff²] = low² + Σ (2k + 1) P(μ + ε ≥ k + ½)``.
    Far from the bounds they equal ``μ`` and ``σ_o`` to ~1e-12; near a bound the clipping
    pulls them in. The latent means are ``env.means`` (``[S, A]``).

    Initial means: the paper used fixed instantiations of the walk that are not published
    as numbers; by default each session and arm starts from the walk's stationary
    distribution ``N(θ, σ_d² / (1 − λ²))``, so the process is stationary from trial 0.
    ``initial_means`` fixes them instead (one value, or one per arm, for every session).

    Parameters
    ----------
    n_arms : int
        Number of arms (>= 2; the paper: 4).
    decay : float
        ``λ`` in [0, 1] (per trial); ``1`` is an undamped random walk (needs ``initial_means``).
    decay_center : float
        ``θ``, the mean the walk decays toward (points).
    diffusion_sd : float
        ``σ_d`` >= 0, SD of the per-trial diffusion of ``μ`` (points).
    payoff_sd : float
        ``σ_o`` > 0, SD of the payoff noise around ``μ`` (points).
    low, high : int
        Payoff bounds (points), ``low < high``; payoffs are integers in ``[low, high]``.
    initial_means : float or sequence of float, optional
        Start values of ``μ``; ``None``: drawn from the stationary distribution.

    Examples
    --------
    >>> import numpy as np, paradigms
    >>> env = paradigms.make("bandit/daw2006", initial_means=[50, 50, 50, -20])
    >>> env.reset(2, rng=0)
    >>> env.expected_rewards.round(3)  # the last arm is clipped at 1
    array([[50., 50., 50.,  1.],
           [50., 50., 50.,  1.]])
    >>> float(env.step(np.array([0, 3]))[1])
    1.0
    """

    id = "bandit/daw2006"
    reward_kind: RewardKind = "continuous"
    reference = (
        "Daw, O'Doherty, Dayan, Seymour & Dolan 2006, Nature 441:876 (restless 4-armed bandit)"
    )

    def __init__(
        self,
        n_arms: int = 4,
        decay: float = 0.9836,
        decay_center: float = 50.0,
        diffusion_sd: float = 2.8,
        payoff_sd: float = 4.0,
        low: int = 1,
        high: int = 100,
        initial_means: Any = None,
    ) -> None:
        self.n_arms = int(check_number("n_arms", n_arms, low=2, integer=True))
        self.decay = check_number("decay", decay, low=0, high=1)
        self.decay_center = check_number("decay_center", decay_center)
        self.diffusion_sd = check_number("diffusion_sd", diffusion_sd, low=0)
        self.payoff_sd = check_number("payoff_sd", payoff_sd, low=0, low_open=True)
        self.low = int(check_number("low", low, integer=True))
        self.high = int(check_number("high", high, integer=True))
        if self.high <= self.low:
            raise ValueError(f"high = {high!r} is not allowed; it must be > low = {low!r}")
        if initial_means is None:
            if self.decay == 1:
                raise ValueError(
                    "decay = 1 has no stationary distribution to draw the initial means from; "
                    "give initial_means"
                )
            init = None
        elif np.ndim(initial_means) == 0:
            init = np.full(self.n_arms, check_number("initial_means", initial_means))
        else:
            init = check_vector("initial_means", initial_means, self.n_arms)
        self.initial_means = init
        self._k = np.arange(self.low, self.high, dtype=np.float64)
        self.kwargs = {
            "n_arms": self.n_arms,
            "decay": self.decay,
            "decay_center": self.decay_center,
            "diffusion_sd": self.diffusion_sd,
            "payoff_sd": self.payoff_sd,
            "low": self.low,
            "high": self.high,
            "initial_means": _jsonable(init),
        }

    @property
    def stationary_sd(self) -> float:
        """SD of the walk's stationary distribution, ``σ_d / sqrt(1 − λ²)`` (inf if λ = 1)."""
        if self.decay == 1:
            return float("inf")
        return self.diffusion_sd / float(np.sqrt(1.0 - self.decay**2))

    @property
    def means(self) -> np.ndarray:
        """``float64 [S, A]``: the latent means ``μ`` of the current trial."""
        self._require_reset("reading means")
        return self._mu.copy()

    def _start(self, rng: np.random.Generator, n: int) -> None:
        shape = (n, self.n_arms)
        if self.initial_means is None:
            self._mu = self.decay_center + self.stationary_sd * rng.standard_normal(shape)
        else:
            self._mu = np.broadcast_to(self.initial_means, shape).copy()

    def _stats(self) -> tuple[np.ndarray, np.ndarray]:
        # P(payoff >= k + 1) = P(mu + eps >= k + 1/2) for k = low .. high - 1
        z = (self._k + 0.5 - self._mu[..., None]) / self.payoff_sd
        q = ndtr(-z)
        mean = self.low + q.sum(-1)
        second = self.low**2 + (q * (2.0 * self._k + 1.0)).sum(-1)
        return mean, np.sqrt(np.maximum(second - mean * mean, 0.0))

    def _draw(self, rng: np.random.Generator) -> np.ndarray:
        x = self._mu + self.payoff_sd * rng.standard_normal(self._mu.shape)
        return np.clip(np.rint(x), self.low, self.high)

    def _advance(self, rng: np.random.Generator) -> None:
        noise = self.diffusion_sd * rng.standard_normal(self._mu.shape)
        self._mu = self.decay * self._mu + (1.0 - self.decay) * self.decay_center + noise


class GaussianMixtureBandit(BanditParadigm):
    """Stationary arms with Gaussian-mixture payoffs (``bandit/sajid2021``).

    Sajid et al. (2021, arXiv:2107.05438): three arms paying ``0.97·N(10, 1) + 0.03·N(22, 1)``,
    ``N(16, 3²)`` and ``0.97·N(18, 1) + 0.03·N(10, 1)``, the same in every session. Arm 3
    has the highest mean (17.76) and the lowest SD (1.69): the best arm by mean and by
    reward-to-variance ratio alike.

    ``expected_rewards`` are the exact mixture means ``Σ w m`` (10.36, 16, 17.76) and
    ``reward_sd`` the exact mixture SDs ``sqrt(Σ w (s² + m²) − mean²)`` (2.278, 3, 1.692).

    Parameters
    ----------
    arms : sequence of sequences of (weight, mean, sd), optional
        One list of mixture components per arm (weights > 0 summing to 1 per arm, SDs > 0;
        reward units). ``None``: Sajid et al.'s three arms (:data:`SAJID2021_ARMS`).

    Examples
    --------
    >>> import paradigms
    >>> env = paradigms.make("bandit/sajid2021")
    >>> env.reset(1, rng=0)
    >>> env.expected_rewards.round(3), env.reward_sd.round(3)
    (array([[10.36, 16.  , 17.76]]), array([[2.278, 3.   , 1.692]]))
    """

    id = "bandit/sajid2021"
    reward_kind: RewardKind = "continuous"
    reference = "Sajid, Faccio, Da Costa, Parr, Schmidhuber & Friston 2021, arXiv:2107.05438"

    def __init__(self, arms: Any = None) -> None:
        spec = SAJID2021_ARMS if arms is None else arms
        if isinstance(spec, str) or not hasattr(spec, "__len__") or len(spec) < 2:
            raise ValueError(
                f"arms = {arms!r} is not allowed; give at least 2 arms, each a list of "
                "(weight, mean, sd) components"
            )
        comps = []
        for i, arm in enumerate(spec):
            try:
                c = np.asarray(arm, dtype=np.float64)
            except (TypeError, ValueError):
                c = None
            if c is None or c.ndim != 2 or c.shape[1] != 3 or c.shape[0] == 0:
                raise ValueError(
                    f"arms[{i}] = {arm!r} is not allowed; it must be a list of (weight, mean, sd)"
                )
            for j, (w, m, s) in enumerate(c):
                check_number(f"arms[{i}][{j}] weight", float(w), low=0, high=1, low_open=True)
                check_number(f"arms[{i}][{j}] mean", float(m))
                check_number(f"arms[{i}][{j}] sd", float(s), low=0, low_open=True)
            if abs(c[:, 0].sum() - 1) > 1e-9:
                raise ValueError(
                    f"arms[{i}] weights sum to {float(c[:, 0].sum())!r}; they must sum to 1"
                )
            comps.append(c)
        self.n_arms = len(comps)
        n_comp = max(len(c) for c in comps)
        # padded [A, K] tables; padding components have weight 0 (never drawn)
        self._w = np.zeros((self.n_arms, n_comp))
        self._m = np.zeros((self.n_arms, n_comp))
        self._s = np.ones((self.n_arms, n_comp))
        for i, c in enumerate(comps):
            self._w[i, : len(c)], self._m[i, : len(c)], self._s[i, : len(c)] = c.T
        self._w /= self._w.sum(1, keepdims=True)
        self._cum = np.cumsum(self._w, axis=1)
        self._cum[:, -1] = np.inf  # guards against cumulative sums a hair below 1
        mean = (self._w * self._m).sum(1)
        var = (self._w * (self._s**2 + self._m**2)).sum(1) - mean**2
        self.arm_means, self.arm_sds = mean, np.sqrt(np.maximum(var, 0.0))
        self.kwargs = {"arms": [c.tolist() for c in comps]}

    def _start(self, rng: np.random.Generator, n: int) -> None:
        self._mean = np.broadcast_to(self.arm_means, (n, self.n_arms)).copy()
        self._sd = np.broadcast_to(self.arm_sds, (n, self.n_arms)).copy()

    def _stats(self) -> tuple[np.ndarray, np.ndarray]:
        return self._mean, self._sd

    def _draw(self, rng: np.random.Generator) -> np.ndarray:
        n, a = self._n, self.n_arms
        u = rng.random((n, a))
        z = rng.standard_normal((n, a))
        comp = (u[..., None] >= self._cum).sum(-1)  # [S, A] component index
        arm = np.arange(a)
        return self._m[arm, comp] + self._s[arm, comp] * z
