"""The Kalman-filter softmax learner of Daw et al. (2006) for restless bandits."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from scipy import special

from ._base import BanditAgent


class KalmanSoftmax(BanditAgent):
    """Kalman filter on restless arms with a softmax choice rule (Daw et al. 2006).

    Each arm's mean is tracked as ``N(μ_a, σ_a²)`` under the generative model of the task
    (``paradigms.make("bandit/daw2006")``): the mean decays towards ``decay_center`` with
    rate ``decay`` and diffuses with SD ``diffusion_sd``; payoffs are the mean plus noise of
    SD ``obs_sd``. On each trial

    1. choose with ``P(a) ∝ exp(β (μ_a + φ σ_a))`` (``φ = bonus``: 0 in the paper's
       winning model; > 0 an uncertainty bonus, < 0 aversion);
    2. update the chosen arm: ``K = σ_a² / (σ_a² + σ_o²)``, ``μ_a ← μ_a + K (r − μ_a)``,
       ``σ_a² ← (1 − K) σ_a²`` (the others keep theirs);
    3. predict every arm: ``μ ← λ μ + (1 − λ) θ``, ``σ² ← λ² σ² + σ_d²``.

    Defaults are the task's generative values and the paper's fitted temperature
    (REFERENCES "Bandits": λ = 0.9836, θ = 50, σ_d = 2.8, σ_o = 4, β ≈ 0.112); the prior
    ``N(50, 4²)`` per arm is our choice, documented here. By default only ``beta`` is fitted
    (:attr:`fit_params`); free any other with ``fit_agent(..., free=[...])``.

    Parameters
    ----------
    beta : float, default 0.112
        Inverse temperature on the payoff scale (1–100 points), >= 0.
    bonus : float, default 0.0
        φ, weight of the posterior SD in the choice rule.
    decay : float, default 0.9836
        λ in [0, 1].
    decay_center : float, default 50.0
        θ.
    diffusion_sd : float, default 2.8
        σ_d >= 0.
    obs_sd : float, default 4.0
        σ_o > 0.
    prior_mean : float, default 50.0
    prior_sd : float, default 4.0
        > 0.

    Examples
    --------
    >>> import numpy as np
    >>> agent = KalmanSoftmax(prior_mean=50.0, prior_sd=4.0, obs_sd=4.0)
    >>> agent.reset(1, 4, rng=0)
    >>> agent.update(np.array([0]), np.array([60.0]))  # K = 16 / 32
    >>> agent.state()["value"][0].round(3).tolist()  # then λ·55 + (1 − λ)·50 and 50
    [54.918, 50.0, 50.0, 50.0]
    >>> agent.choice_probabilities()[0].round(3).tolist()
    [0.366, 0.211, 0.211, 0.211]
    """

    name = "kalman_softmax"
    param_names = (
        "beta",
        "bonus",
        "decay",
        "decay_center",
        "diffusion_sd",
        "obs_sd",
        "prior_mean",
        "prior_sd",
    )
    fit_params: ClassVar[tuple[str, ...]] = ("beta",)
    defaults: ClassVar[dict[str, float]] = {
        "beta": 0.112,
        "bonus": 0.0,
        "decay": 0.9836,
        "decay_center": 50.0,
        "diffusion_sd": 2.8,
        "obs_sd": 4.0,
        "prior_mean": 50.0,
        "prior_sd": 4.0,
    }
    param_domain: ClassVar[dict[str, tuple[float, float]]] = {
        "beta": (0.0, np.inf),
        "bonus": (-np.inf, np.inf),
        "decay": (0.0, 1.0),
        "decay_center": (-np.inf, np.inf),
        "diffusion_sd": (0.0, np.inf),
        "obs_sd": (1e-6, np.inf),
        "prior_mean": (-np.inf, np.inf),
        "prior_sd": (1e-6, np.inf),
    }
    param_bounds: ClassVar[dict[str, tuple[float, float]]] = {
        "beta": (0.0, 1.0),
        "bonus": (-3.0, 3.0),
        "decay": (0.5, 1.0),
        "decay_center": (0.0, 100.0),
        "diffusion_sd": (0.1, 20.0),
        "obs_sd": (0.1, 20.0),
        "prior_mean": (0.0, 100.0),
        "prior_sd": (0.1, 50.0),
    }

    def _reset(self) -> None:
        shape = (self.n_sessions, self.n_arms)
        self.mean = np.broadcast_to(self.p["prior_mean"][:, None], shape).copy()
        self.var = np.broadcast_to(self.p["prior_sd"][:, None] ** 2, shape).copy()

    def log_choice_probabilities(self) -> np.ndarray:
        """``log P(a)`` by a stable log-softmax (what the likelihood uses)."""
        utility = self.mean + self.p["bonus"][:, None] * np.sqrt(self.var)
        logits = self.p["beta"][:, None] * utility
        return logits - special.logsumexp(logits, axis=-1, keepdims=True)

    def choice_probabilities(self) -> np.ndarray:
        return np.exp(self.log_choice_probabilities())

    def _update(self, choices: np.ndarray, rewards: np.ndarray) -> None:
        rows = np.arange(self.n_sessions)
        var = self.var[rows, choices]
        gain = var / (var + self.p["obs_sd"] ** 2)
        self.mean[rows, choices] += gain * (rewards - self.mean[rows, choices])
        self.var[rows, choices] = (1.0 - gain) * var
        lam = self.p["decay"][:, None]
        self.mean = lam * self.mean + (1.0 - lam) * self.p["decay_center"][:, None]
        self.var = lam**2 * self.var + self.p["diffusion_sd"][:, None] ** 2

    def state(self) -> dict[str, np.ndarray]:
        return {"value": self.mean.copy(), "sd": np.sqrt(self.var)}
