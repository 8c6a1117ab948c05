"""The Rényi-bound variational bandit agent of Sajid et al. (2021), vectorised over sessions."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from ._base import BanditAgent
from ._quadrature import gaussian_argmax_probabilities
from ._renyi_bound import (
    LIKELIHOODS,
    LOG_2PI,
    conjugate_posterior,
    gauss_hermite_nodes,
    likelihood_terms,
    maximise_bound,
)

#: The agent's prior of Sajid et al. (2021): on each arm's mean, 0.5·N(μ₁, 1.5²) + 0.5·N(μ₂, 1.5²)
#: with (μ₁, μ₂) = (13, 20), (16, 14), (10, 17) for the three arms of ``bandit/sajid2021``.
SAJID2021_PRIOR: dict[str, Any] = {
    "weights": [[0.5, 0.5]] * 3,
    "means": [[13.0, 20.0], [16.0, 14.0], [10.0, 17.0]],
    "sds": 1.5,
}
ESTIMATORS = ("auto", "closed_form", "mc", "quadrature")
CHOICE_RULES = ("ratio", "thompson")
CHUNK = 256  # sessions per block of the Monte-Carlo optimiser (the fastest of 64–256 measured)


def _bad(field: str, value: Any, allowed: str) -> ValueError:
    return ValueError(f"RenyiAgent {field} = {value!r} is not allowed; {allowed}")


def parse_prior(prior: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(weights, means, sds)``, each ``[A, M]`` or ``[1, M]`` (one mixture for every arm).

    ``prior`` is ``"sajid2021"`` or a dict with ``means`` and ``sds`` (and optional
    ``weights``, equal by default): a number or a 1-D list ``[M]`` gives every arm the same
    mixture; a 2-D list ``[A, M]`` one mixture per arm (``[[m₁], [m₂], ...]`` for one
    Gaussian per arm).

    Examples
    --------
    >>> w, m, s = parse_prior({"means": [0.0, 1.0], "sds": 0.5})
    >>> w.tolist(), m.shape
    ([[0.5, 0.5]], (1, 2))
    """
    if isinstance(prior, str):
        if prior != "sajid2021":
            raise _bad("prior", prior, "give 'sajid2021' or a dict with means, sds, weights")
        prior = SAJID2021_PRIOR
    if not isinstance(prior, dict) or not {"means", "sds"} <= set(prior):
        raise _bad("prior", prior, "give 'sajid2021' or a dict with means, sds (and weights)")
    extra = sorted(set(prior) - {"means", "sds", "weights"})
    if extra:
        raise _bad("prior", prior, f"unknown key(s) {extra}; the keys are means, sds, weights")
    arrays = {}
    for key in ("means", "sds", "weights"):
        if key not in prior:
            continue
        try:
            a = np.asarray(prior[key], dtype=np.float64)
        except (TypeError, ValueError):
            raise _bad(f"prior['{key}']", prior[key], "give numbers") from None
        if a.ndim > 2 or not np.isfinite(a).all():
            raise _bad(f"prior['{key}']", prior[key], "give finite numbers, [M] or [A, M]")
        arrays[key] = a.reshape((1,) * (2 - a.ndim) + a.shape)
    means = arrays["means"]
    weights = arrays.get("weights", np.full((1, means.shape[1]), 1.0 / means.shape[1]))
    try:
        weights, means, sds = np.broadcast_arrays(weights, means, arrays["sds"])
    except ValueError:
        raise _bad("prior", prior, "means, sds and weights must broadcast to [A, M]") from None
    if (sds <= 0).any():
        raise _bad("prior['sds']", prior["sds"], "every SD must be > 0")
    if (weights <= 0).any() or (np.abs(weights.sum(1) - 1) > 1e-9).any():
        raise _bad("prior['weights']", prior.get("weights"), "weights must be > 0, sum 1 per arm")
    return weights.copy(), means.copy(), sds.copy()


class RenyiAgent(BanditAgent):
    """Variational bandit agent maximising the Rényi bound ``L_α`` (Sajid et al. 2021).

    Each arm's mean reward ``θ`` has a prior (a Gaussian mixture per arm) and rewards
    ``y ~ N(θ, obs_sd²)``. After each trial the agent refits the chosen arm's Gaussian
    ``q(θ) = N(μ, σ²)`` by maximising
    ``L_α(q) = (1−α)⁻¹ log E_q[(p(y, θ)/q(θ))^(1−α)] = log p(y) − D_α(q ‖ p(θ|y))``
    (``α → 1``: the ELBO). With one Gaussian prior the maximiser is the exact posterior for
    every α (closed form); with a mixture prior it runs, as in the authors' code
    (github.com/ucbtns/renyibounds), ``n_steps`` Adam steps (lr 0.05) on a reparameterised
    ``n_samples``-sample Monte-Carlo estimate, warm-started from the previous ``q``, over
    ``(μ, log σ²)`` — but vectorised over sessions (see :mod:`._renyi_bound`). Small α
    gives mass-covering ``q`` (wide, between the prior's modes), large α mode-seeking ones.

    Choice (``choice="ratio"``, the paper's rule): draw ``θ̃ ~ q`` per arm, take the
    argmax of ``θ̃/σ²``; ``"thompson"``: the argmax of ``θ̃``. ``choice_probabilities``
    integrates the same rule exactly (``θ̃/σ² ~ N(μ/σ², 1/σ²)``) by deterministic
    quadrature.

    Parameters
    ----------
    alpha : float or array ``[S]``, default 1.0
        Order of the Rényi bound, in ``[1e-6, 1e9]``.
    prior : ``"sajid2021"`` or dict, default ``"sajid2021"``
        Prior on each arm's mean (:func:`parse_prior`): the preset is 0.5·N(μ₁, 1.5²) +
        0.5·N(μ₂, 1.5²) with (μ₁, μ₂) = (13, 20), (16, 14), (10, 17) (three arms).
    obs_sd : float or array ``[A]``, default 1.0
        Known SD of the rewards in the likelihood (the components of ``bandit/sajid2021``
        have SD 1, arm 2 SD 3).
    likelihood : ``"sum"`` or ``"mean"``, default ``"sum"``
        ``"sum"``: the Bayesian likelihood of every observation; ``"mean"``: the *average*
        log-likelihood over the stored observations, as the authors' code computes it (so
        the prior keeps its weight; their code also uses the observations' sample variance
        as the likelihood SD, here ``obs_sd``).
    estimator : ``"auto"``, ``"closed_form"``, ``"mc"`` or ``"quadrature"``
        ``"auto"``: closed form for a one-Gaussian prior, Monte Carlo otherwise;
        ``"quadrature"``: Gauss–Hermite nodes instead of random samples (deterministic).
    n_samples : int, default 300
        Monte-Carlo samples (or quadrature nodes) per bound estimate.
    n_steps : int, default 10
        Adam steps per trial (on the chosen arm only).
    lr : float, default 0.05
        Adam learning rate.
    window : int, optional
        Fit on each arm's last ``window`` observations (the paper keeps 1000); ``None``:
        all of them.
    choice : ``"ratio"`` or ``"thompson"``, default ``"ratio"``
    init : ``(mean, sd)``, optional
        Initial ``q`` (numbers or ``[A]`` arrays); ``None``: the prior's mean and SD.

    Examples
    --------
    >>> import numpy as np
    >>> agent = RenyiAgent(alpha=0.5, n_samples=64)
    >>> agent.reset(4, 3, rng=0)
    >>> agent.update(np.array([0, 0, 1, 2]), np.array([10.0, 11.0, 16.0, 18.0]))
    >>> agent.state()["posterior_mean"].shape, agent.choice_probabilities().sum(1).round(6)
    ((4, 3), array([1., 1., 1., 1.]))
    """

    name = "renyi"
    param_names = ("alpha",)
    defaults = {"alpha": 1.0}
    param_domain = {"alpha": (1e-6, 1e9)}
    param_bounds = {"alpha": (0.01, 10.0)}

    def __init__(
        self,
        alpha: float | np.ndarray = 1.0,
        *,
        prior: str | dict[str, Any] = "sajid2021",
        obs_sd: float | np.ndarray = 1.0,
        likelihood: str = "sum",
        estimator: str = "auto",
        n_samples: int = 300,
        n_steps: int = 10,
        lr: float = 0.05,
        window: int | None = None,
        choice: str = "ratio",
        init: tuple[Any, Any] | None = None,
    ) -> None:
        super().__init__(alpha=alpha)
        self._weights, self._means, self._sds = parse_prior(prior)
        sd = np.asarray(obs_sd, dtype=np.float64) if _is_number_like(obs_sd) else None
        if sd is None or sd.ndim > 1 or not (np.isfinite(sd).all() and (sd > 0).all()):
            raise _bad("obs_sd", obs_sd, "give a number > 0 or one per arm")
        for field, value, allowed in (
            ("likelihood", likelihood, LIKELIHOODS),
            ("estimator", estimator, ESTIMATORS),
            ("choice", choice, CHOICE_RULES),
        ):
            if value not in allowed:
                raise _bad(field, value, f"choose one of {allowed}")
        n_comp = self._means.shape[1]
        if estimator == "closed_form" and n_comp > 1:
            raise _bad("estimator", estimator, f"the closed form needs a one-Gaussian prior "
                       f"(this prior has {n_comp} components): use 'mc' or 'quadrature'")  # fmt: skip
        for field, value, low in (("n_samples", n_samples, 2), ("n_steps", n_steps, 1)):
            if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < low:
                raise _bad(field, value, f"give an integer >= {low}")
        if not isinstance(lr, int | float) or not (math.isfinite(lr) and lr > 0):
            raise _bad("lr", lr, "give a finite number > 0")
        if window is not None and (not isinstance(window, int | np.integer) or window < 1):
            raise _bad("window", window, "give None (all observations) or an integer >= 1")
        if init is not None:
            try:
                m0, s0 = (np.asarray(v, dtype=np.float64) for v in init)
            except (TypeError, ValueError):
                raise _bad("init", init, "give (mean, sd), numbers or one per arm") from None
            if not (np.isfinite(m0).all() and np.isfinite(s0).all() and (s0 > 0).all()):
                raise _bad("init", init, "give a finite mean and an sd > 0")
        self.options: dict[str, Any] = {
            "prior": prior, "obs_sd": obs_sd, "likelihood": likelihood, "estimator": estimator,
            "n_samples": int(n_samples), "n_steps": int(n_steps), "lr": float(lr),
            "window": None if window is None else int(window), "choice": choice, "init": init,
        }  # fmt: skip
        if estimator == "auto":
            estimator = "closed_form" if n_comp == 1 else "mc"
        self.method = estimator
        self._nodes = gauss_hermite_nodes(int(n_samples)) if estimator == "quadrature" else None

    @classmethod
    def extra_options(cls) -> tuple[str, ...]:
        return ("prior", "obs_sd", "likelihood", "estimator", "n_samples", "n_steps", "lr",
                "window", "choice", "init")  # fmt: skip

    # -- state ----------------------------------------------------------------------------
    def _reset(self) -> None:
        S, A = self.n_sessions, self.n_arms
        if self._means.shape[0] not in (1, A):
            raise ValueError(
                f"RenyiAgent prior has {self._means.shape[0]} arms but the bandit has "
                f"n_arms = {A}; give a prior with one mixture per arm or one for all"
            )
        obs_sd = np.asarray(self.options["obs_sd"], dtype=np.float64)
        if obs_sd.ndim == 1 and len(obs_sd) != A:
            raise ValueError(f"RenyiAgent obs_sd has {len(obs_sd)} values but n_arms = {A}")
        self._obs_sd = np.broadcast_to(obs_sd, (A,)).copy()
        w, m, sd = (np.broadcast_to(x, (A, x.shape[1])).copy() for x in
                    (self._weights, self._means, self._sds))  # fmt: skip
        self._pm, self._pv = m, sd**2
        self._plw = np.log(w) - 0.5 * (LOG_2PI + np.log(self._pv))  # normalised components
        if self.options["init"] is None:
            mean0 = (w * m).sum(1)
            var0 = (w * (self._pv + m**2)).sum(1) - mean0**2
        else:
            mean0, sd0 = (np.broadcast_to(np.asarray(v, np.float64), (A,)) for v in
                          self.options["init"])  # fmt: skip
            var0 = sd0**2
        self._mu = np.tile(mean0, (S, 1))
        self._lv = np.tile(np.log(var0), (S, 1))
        self._n = np.zeros((S, A))
        self._sy = np.zeros((S, A))
        self._syy = np.zeros((S, A))
        window = self.options["window"]
        self._pulls = np.zeros((S, A), np.int64)
        self._buffer = None if window is None else np.zeros((S, A, window))
        self._adam_m = np.zeros((S, A, 2))
        self._adam_v = np.zeros((S, A, 2))
        self._adam_t = np.zeros((S, A), np.int64)
        self._torch_rng = torch.Generator().manual_seed(int(self.rng.integers(2**63)))
        self._eps: torch.Tensor | None = None

    def _noise(self, n: int) -> np.ndarray:
        """Standard-normal samples ``[n, K]`` (float32), drawn into a reused buffer."""
        k = self.options["n_samples"]
        if self._eps is None or self._eps.shape[0] < n:
            self._eps = torch.empty((max(n, CHUNK), k), dtype=torch.float32)
        return torch.randn((n, k), generator=self._torch_rng, out=self._eps[:n]).numpy()

    def _update(self, choices: np.ndarray, rewards: np.ndarray) -> None:
        s, c, r = np.arange(self.n_sessions), choices, rewards
        if self._buffer is None:
            self._n[s, c] += 1
            self._sy[s, c] += r
            self._syy[s, c] += r * r
        else:  # a ring buffer per session and arm: drop the oldest once the window is full
            window = self._buffer.shape[2]
            pos = self._pulls[s, c] % window
            full = self._pulls[s, c] >= window
            old = np.where(full, self._buffer[s, c, pos], 0.0)
            self._n[s, c] += ~full
            self._sy[s, c] += r - old
            self._syy[s, c] += r * r - old * old
            self._buffer[s, c, pos] = r
        self._pulls[s, c] += 1
        lam, ybar, _ = likelihood_terms(self._n[s, c], self._sy[s, c], self._syy[s, c],
                                        self._obs_sd[c], self.options["likelihood"])  # fmt: skip
        if self.method == "closed_form":
            mean, var = conjugate_posterior(self._pm[c, 0], self._pv[c, 0], lam, ybar)
            self._mu[s, c], self._lv[s, c] = mean, np.log(var)
            return
        mu, lv = self._mu[s, c], self._lv[s, c]  # fancy indexing: copies, written back below
        adam = (self._adam_m[s, c], self._adam_v[s, c], self._adam_t[s, c])
        maximise_bound(
            mu, lv, adam, (self._plw[c], self._pm[c], self._pv[c]), lam, ybar, self.p["alpha"],
            n_steps=self.options["n_steps"], lr=self.options["lr"],
            noise=self._noise if self._nodes is None else None, nodes=self._nodes, chunk=CHUNK,
        )  # fmt: skip
        self._mu[s, c], self._lv[s, c] = mu, lv
        self._adam_m[s, c], self._adam_v[s, c], self._adam_t[s, c] = adam

    # -- behaviour ------------------------------------------------------------------------
    def _score(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean and SD of each arm's sampled score (``θ̃/σ²`` or ``θ̃``), ``[S, A]``."""
        var = np.exp(self._lv)
        sd = np.sqrt(var)
        if self.options["choice"] == "ratio":
            return self._mu / var, 1.0 / sd
        return self._mu.copy(), sd

    def choice_probabilities(self) -> np.ndarray:
        return gaussian_argmax_probabilities(*self._score())

    def act(self) -> np.ndarray:
        mean, sd = self._score()
        z = self.rng.standard_normal((self.n_sessions, self.n_arms))
        return (mean + sd * z).argmax(axis=1).astype(np.int64)

    def state(self) -> dict[str, np.ndarray]:
        """``posterior_mean`` and ``posterior_sd`` of ``q`` per session and arm."""
        return {"posterior_mean": self._mu.copy(), "posterior_sd": np.exp(0.5 * self._lv)}

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        out["options"] = {k: _jsonable(v) for k, v in self.options.items()}
        out["method"] = self.method
        return out


def _is_number_like(value: Any) -> bool:
    try:
        np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return False
    return True


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
