"""The Rényi variational bound of a Gaussian ``q`` over one scalar (a bandit arm's mean).

Model, per arm: rewards ``y_i ~ N(θ, s²)`` with a known SD ``s``; a prior on ``θ`` that is
a Gaussian mixture ``Σ_m w_m N(m_m, v_m)``; a variational ``q(θ) = N(μ, σ²)``. The bound
(Li & Turner 2016; Sajid et al. 2021, arXiv:2107.05438) is

    L_α(q) = (1 − α)⁻¹ log E_q[(p(y, θ) / q(θ))^(1−α)] = log p(y) − D_α(q ‖ p(θ | y)),

with the Rényi divergence ``D_α(q‖p) = (α − 1)⁻¹ log ∫ q^α p^(1−α)``; ``α → 1`` is the ELBO
``E_q[log p(y, θ) − log q(θ)]`` (``D_1`` = KL). Since ``D_α ≥ 0`` with equality iff
``q = p(θ|y)``, a Gaussian prior (conjugate case) makes the exact posterior the maximiser
for *every* α > 0: :func:`conjugate_posterior` is the closed-form solution. Otherwise (the
mixture prior) :func:`maximise_bound` runs Adam on a reparameterised estimate
``θ_k = μ + σ ε_k`` of the bound, vectorised over sessions.

The data enter through sufficient statistics ``(n, Σy, Σy²)``: in ``θ`` the log-likelihood
is ``c − λ/2 (θ − ȳ)²`` (:func:`likelihood_terms`), so nothing grows with the number of
observations.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy import special

LOG_2PI = math.log(2 * math.pi)
LIKELIHOODS = ("sum", "mean")


def likelihood_terms(
    n: np.ndarray, sum_y: np.ndarray, sum_y2: np.ndarray, obs_sd: np.ndarray, kind: str = "sum"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(λ, ȳ, c)`` with ``log p(y | θ) = c − λ/2 (θ − ȳ)²`` from sufficient statistics.

    ``kind="sum"``: the ordinary likelihood ``Σ_i log N(y_i; θ, s²)`` (``λ = n/s²``).
    ``kind="mean"``: the *average* log-likelihood ``(1/n) Σ_i log N(y_i; θ, s²)``, as in
    the published code of Sajid et al. (``torch.mean(factor.log_prob(...))`` over the
    stored observations), so the window weighs like one observation at its mean
    (``λ = 1/s²``). Arms without data get ``λ = 0, ȳ = 0, c = 0``.

    Examples
    --------
    >>> lam, ybar, c = likelihood_terms(np.array([4.0]), np.array([8.0]), np.array([20.0]),
    ...                                 np.array([2.0]))
    >>> lam.tolist(), ybar.tolist()
    ([1.0], [2.0])
    """
    n = np.asarray(n, dtype=np.float64)
    s2 = np.asarray(obs_sd, dtype=np.float64) ** 2
    has = n > 0
    safe_n = np.where(has, n, 1.0)
    ybar = np.where(has, sum_y / safe_n, 0.0)
    ss = np.maximum(np.asarray(sum_y2) - safe_n * ybar**2, 0.0)  # Σ (y − ȳ)², ≥ 0 by rounding
    if kind == "sum":
        lam = n / s2
        c = -0.5 * n * (LOG_2PI + np.log(s2)) - 0.5 * ss / s2
    elif kind == "mean":
        lam = has / s2
        c = -0.5 * has * (LOG_2PI + np.log(s2)) - 0.5 * ss / (safe_n * s2)
    else:
        raise ValueError(f"likelihood = {kind!r} is not allowed; choose one of {LIKELIHOODS}")
    return lam, ybar, np.where(has, c, 0.0)


def conjugate_posterior(
    prior_mean: np.ndarray, prior_var: np.ndarray, lam: np.ndarray, ybar: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Exact posterior ``N(mean, var)`` of a Gaussian prior times ``exp(−λ/2 (θ − ȳ)²)``.

    This is the maximiser of ``L_α`` over Gaussian ``q`` for every ``α > 0`` (and of the
    ELBO): the closed-form update of the agent when its prior is one Gaussian.

    Examples
    --------
    >>> mean, var = conjugate_posterior(0.0, 1.0, 1.0, 2.0)  # N(0, 1) prior, one y = 2
    >>> float(mean), float(var)
    (1.0, 0.5)
    """
    prec = 1.0 / np.asarray(prior_var) + lam
    var = 1.0 / prec
    return var * (np.asarray(prior_mean) / prior_var + lam * ybar), var


def geometric_interpolation(
    mean_q: np.ndarray, var_q: np.ndarray, post_mean: np.ndarray, post_var: np.ndarray, alpha
) -> tuple[np.ndarray, np.ndarray]:
    """``(μ_α, σ²_α)`` of the normalised ``r_α ∝ q^α p(θ|y)^(1−α)`` (natural parameters mixed).

    This is the closed form quoted from Sajid et al. for the linear-Gaussian model,
    ``σ_α = [(1−α)(1/σ_p + xᵀΣ⁻¹x) + α/σ_q]⁻¹``, ``μ_α = σ_α[αμ_q/σ_q + (1−α)xᵀΣ⁻¹y]``
    (variances; prior mean 0), written with the posterior's precision
    ``1/σ_p + xᵀΣ⁻¹x`` and precision-weighted mean. Its normaliser gives the bound,
    ``D_α(q‖post) = (α−1)⁻¹ log ∫ q^α post^(1−α)`` (see :func:`gaussian_renyi_divergence`).
    Read as an update ``q ← r_α`` it is a step from ``q`` toward the posterior: at
    ``α = 0`` it *is* the posterior, at ``α = 1`` it leaves ``q`` unchanged, and for
    ``0 < α < 1`` iterating it converges geometrically (rate α) to its fixed point, the
    posterior: the optimum of ``L_α`` for every α, and the exact KL/ELBO solution. For
    ``α > 1`` it extrapolates away from the posterior (``var`` may be negative: ``r_α`` is
    not normalisable and ``D_α = ∞``).

    Examples
    --------
    >>> geometric_interpolation(0.0, 1.0, 2.0, 0.5, alpha=0.0)  # α = 0: the posterior
    (2.0, 0.5)
    """
    alpha = np.asarray(alpha, dtype=np.float64)
    prec = alpha / var_q + (1 - alpha) / post_var
    var = 1.0 / prec
    mean = var * (alpha * mean_q / var_q + (1 - alpha) * post_mean / post_var)
    if var.ndim == 0:
        return float(mean), float(var)
    return mean, var


def gaussian_renyi_divergence(mean_1, var_1, mean_2, var_2, alpha) -> np.ndarray:
    """Closed-form ``D_α(N(mean_1, var_1) ‖ N(mean_2, var_2))`` (Gil, Alajaji & Linder 2013).

    ``D_α = α (m₁−m₂)² / (2 v*) − log(v* / (v₁^(1−α) v₂^α)) / (2(α−1))`` with
    ``v* = α v₂ + (1−α) v₁``; ``+inf`` where ``v* ≤ 0`` (only for α > 1: ``q`` too wide);
    at ``α = 1`` the KL divergence ``(log(v₂/v₁) + (v₁ + (m₁−m₂)²)/v₂ − 1) / 2``.

    Examples
    --------
    >>> float(gaussian_renyi_divergence(0.0, 1.0, 0.0, 1.0, 2.0))
    0.0
    >>> round(float(gaussian_renyi_divergence(1.0, 1.0, 0.0, 1.0, 1.0)), 6)  # KL
    0.5
    """
    m1, v1, m2, v2, a = np.broadcast_arrays(*(np.asarray(x, np.float64) for x in
                                              (mean_1, var_1, mean_2, var_2, alpha)))  # fmt: skip
    d2 = (m1 - m2) ** 2
    kl = 0.5 * (np.log(v2 / v1) + (v1 + d2) / v2 - 1.0)
    vstar = a * v2 + (1 - a) * v1
    ok = vstar > 0
    vs = np.where(ok, vstar, 1.0)
    am1 = np.where(a == 1, 1.0, a - 1)
    renyi = a * d2 / (2 * vs) - (np.log(vs) - (1 - a) * np.log(v1) - a * np.log(v2)) / (2 * am1)
    out = np.where(a == 1, kl, np.where(ok, renyi, np.inf))
    return out if out.ndim else np.float64(out)


def gaussian_log_evidence(prior_mean, prior_var, lam, ybar, c) -> np.ndarray:
    """``log ∫ N(θ; m, v) exp(c − λ/2 (θ − ȳ)²) dθ`` (the marginal likelihood, Gaussian prior).

    Examples
    --------
    >>> float(gaussian_log_evidence(0.0, 1.0, 0.0, 0.0, 0.0))  # no data: log 1
    0.0
    """
    v = np.asarray(prior_var, np.float64)
    return c - 0.5 * np.log1p(lam * v) - 0.5 * lam * (ybar - prior_mean) ** 2 / (1 + lam * v)


def gaussian_renyi_bound(mean_q, var_q, prior_mean, prior_var, lam, ybar, c, alpha):
    """Analytic ``L_α(q) = log p(y) − D_α(q ‖ p(θ|y))`` for a Gaussian prior.

    Examples
    --------
    >>> post = conjugate_posterior(0.0, 1.0, 1.0, 2.0)
    >>> ev = gaussian_log_evidence(0.0, 1.0, 1.0, 2.0, 0.0)
    >>> bool(np.isclose(gaussian_renyi_bound(*post, 0.0, 1.0, 1.0, 2.0, 0.0, 3.0), ev))
    True
    """
    pm, pv = conjugate_posterior(prior_mean, prior_var, lam, ybar)
    ev = gaussian_log_evidence(prior_mean, prior_var, lam, ybar, c)
    return ev - gaussian_renyi_divergence(mean_q, var_q, pm, pv, alpha)


def gauss_hermite_nodes(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Standard-normal nodes ``ε_k`` and log weights for ``E[f(ε)] ≈ Σ_k w_k f(ε_k)``."""
    x, w = np.polynomial.hermite.hermgauss(n)
    keep = w > 1e-300
    return np.sqrt(2.0) * x[keep], np.log(w[keep]) - 0.5 * math.log(math.pi)


def bound_gradient(
    eps: np.ndarray,
    mu: np.ndarray,
    log_var: np.ndarray,
    prior: tuple[np.ndarray, np.ndarray, np.ndarray],
    lam: np.ndarray,
    ybar: np.ndarray,
    alpha: np.ndarray,
    log_node_weights: np.ndarray | None = None,
    const: np.ndarray | None = None,
    work: list[np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Reparameterised estimate of ``∂L_α/∂μ``, ``∂L_α/∂log σ²`` (and ``L_α``) for ``C`` sessions.

    ``θ_k = μ + σ ε_k``; ``f_k = log p(y, θ_k) − log q(θ_k)``; with
    ``w_k = softmax_k((1−α) f_k + log ν_k)`` (``ν_k = 1/K`` for Monte Carlo, Gauss–Hermite
    weights for quadrature) the gradient is ``Σ_k w_k ∂f_k`` (Li & Turner 2016): no
    division by ``1 − α``, so ``α = 1`` (uniform ``w``: the ELBO gradient) needs no special
    case. ``∂f/∂μ = g(θ)``, ``∂f/∂log σ² = g(θ) σ ε / 2 + 1/2`` with
    ``g = ∂_θ log p(y, θ)``. Sample arrays keep the dtype of ``eps`` (float32 in the agent:
    the Monte-Carlo error dwarfs the rounding).

    Parameters
    ----------
    eps : array ``[C, K]`` or ``[K]`` (shared nodes)
    mu, log_var, lam, ybar, alpha : arrays ``[C]`` (float64)
    prior : ``(log_weight, mean, var)``, each ``[C, M]``; ``log_weight`` holds
        ``log w_m − log(2π v_m)/2`` (the normalised log density of each component).
    log_node_weights : array ``[K]``, optional
        Quadrature log weights (``None``: Monte Carlo, equal weights).
    const : array ``[C]``, optional
        The likelihood constant ``c``; given, the bound value is returned too (float64).
    work : list of arrays, optional
        ``4 + 2M`` scratch arrays of at least ``[C, K]`` (``eps``'s dtype), reused between
        calls: allocating fresh ``[C, K]`` arrays costs more than the arithmetic on them.
    """
    C, K = len(mu), eps.shape[-1]
    eps = np.broadcast_to(eps, (C, K))  # shared nodes: one row for all
    dt = eps.dtype.type
    lw, pm, pv = prior
    M = pm.shape[1]
    if work is None:
        work = scratch(C, K, M, eps.dtype)
    se, dl, g, f, *rest = (w[:C] for w in work)
    a, u = rest[:M], rest[M : 2 * M]

    def col(v: np.ndarray) -> np.ndarray:
        return v.astype(dt)[:, None]

    sd = np.exp(0.5 * log_var)
    np.multiply(eps, col(sd), out=se)
    # log-likelihood part: −λ/2 (θ − ȳ)², gradient g = −λ (θ − ȳ); with the ε part of
    # −log q(θ) = log σ + log(2π)/2 + ε²/2 (the rest is per session), 2f starts as ε² − λ dl²
    np.add(se, col(mu - ybar), out=dl)
    np.multiply(dl, col(-lam), out=g)
    np.multiply(eps, eps, out=f)
    dl *= g
    f += dl
    # the mixture prior: log Σ_m exp(a_m), a_m = log w_m − (θ − m_m)²/(2 v_m) + const,
    # gradient −Σ_m r_m (θ − m_m)/v_m with responsibilities r_m = softmax_m(a_m)
    for j in range(M):
        np.add(se, col(mu - pm[:, j]), out=a[j])
        np.multiply(a[j], col(1.0 / pv[:, j]), out=u[j])  # (θ − m_j)/v_j
        a[j] *= u[j]
        a[j] *= dt(-0.5)
        a[j] += col(lw[:, j])
    if M == 1:  # one Gaussian: r = 1
        g -= u[0]
        f += a[0]
        f += a[0]
    else:
        top, total = se, dl  # both free now
        np.maximum(a[0], a[1], out=top)
        for aj in a[2:]:
            np.maximum(top, aj, out=top)
        for aj in a:
            aj -= top
            np.exp(aj, out=aj)
        np.add(a[0], a[1], out=total)
        for aj in a[2:]:
            total += aj
        for aj, uj in zip(a, u, strict=True):
            aj *= uj
        gp = u[0]
        np.add(a[0], a[1], out=gp)
        for aj in a[2:]:
            gp += aj
        gp /= total
        g -= gp
        np.log(total, out=total)
        total += top
        f += total
        f += total
    # f = 2·(log p(y, θ) − log q(θ)) minus twice the per-session constant
    value = None
    if const is not None:
        value = _bound_value(0.5 * f, alpha, log_node_weights)
        value += const + 0.5 * (LOG_2PI + log_var)
    x = f
    x *= col(0.5 * (1 - alpha))
    if log_node_weights is not None:
        x += log_node_weights.astype(dt)
    x -= x.max(axis=1, keepdims=True)
    np.exp(x, out=x)
    z = x.sum(axis=1).astype(np.float64)
    x *= g
    grad_mu = x.sum(axis=1) / z
    grad_lv = 0.5 * sd * np.einsum("ij,ij->i", x, eps) / z + 0.5
    return grad_mu, grad_lv, value


def scratch(C: int, K: int, M: int, dtype: np.dtype | type) -> list[np.ndarray]:
    """The work arrays of :func:`bound_gradient` for ``C`` sessions, ``K`` samples, ``M`` components."""
    return [np.empty((C, K), dtype) for _ in range(4 + 2 * M)]


def _bound_value(f: np.ndarray, alpha: np.ndarray, log_nu: np.ndarray | None) -> np.ndarray:
    """``(1−α)⁻¹ log Σ_k ν_k exp((1−α) f_k)`` in float64, accurate near α = 1."""
    f = f.astype(np.float64)
    K = f.shape[1]
    log_nu = np.full(K, -math.log(K)) if log_nu is None else log_nu
    nu = np.exp(log_nu)
    fbar = f @ nu
    xc = (1 - alpha)[:, None] * (f - fbar[:, None])
    # log Σ ν exp(xc) = log1p(Σ ν expm1(xc)) when xc is small (Σ ν xc = 0 cancels exactly)
    small = np.abs(xc).max(axis=1) < 0.5
    lse = special.logsumexp(xc + log_nu, axis=1)
    lse_small = np.log1p(np.expm1(np.where(small[:, None], xc, 0.0)) @ nu)
    one_minus = np.where(alpha == 1, 1.0, 1 - alpha)
    tail = np.where(alpha == 1, 0.0, np.where(small, lse_small, lse) / one_minus)
    return fbar + tail


def maximise_bound(
    mu: np.ndarray,
    log_var: np.ndarray,
    adam: tuple[np.ndarray, np.ndarray, np.ndarray],
    prior: tuple[np.ndarray, np.ndarray, np.ndarray],
    lam: np.ndarray,
    ybar: np.ndarray,
    alpha: np.ndarray,
    *,
    n_steps: int,
    lr: float,
    noise: Callable[[int], np.ndarray] | None = None,
    nodes: tuple[np.ndarray, np.ndarray] | None = None,
    chunk: int = 128,
    betas: tuple[float, float] = (0.9, 0.999),
    adam_eps: float = 1e-8,
) -> None:
    """Run ``n_steps`` Adam steps on ``L_α`` for every session, updating the arrays in place.

    One Python loop over sessions in blocks of ``chunk`` (small ``[chunk, K]`` sample
    arrays, reused scratch) and, inside, over the steps; everything else is array arithmetic.
    Adam is ``torch.optim.Adam``'s rule (β = 0.9, 0.999, ε = 1e-8, bias-corrected with each
    session's own step count) on ``−L_α`` over ``(μ, log σ²)``, the parameterisation of
    Sajid et al.'s code.

    Parameters
    ----------
    mu, log_var : float64 ``[S]``
        The variational parameters (warm start), overwritten with the result.
    adam : ``(m [S, 2], v [S, 2], t [S])``
        Adam's moment estimates and step counts, overwritten.
    prior : ``(log_weight, mean, var)`` each ``[S, M]`` (see :func:`bound_gradient`)
    lam, ybar, alpha : float64 ``[S]``
    noise : callable ``n -> eps [n, K]``, optional
        Draws standard-normal samples (Monte Carlo).
    nodes : ``(eps [K], log_weights [K])``, optional
        Fixed quadrature nodes instead of ``noise``.
    """
    m1, m2, t = adam
    b1, b2 = betas
    S = len(mu)
    work = None
    for lo in range(0, S, chunk):
        sl = slice(lo, min(lo + chunk, S))
        pr = tuple(p[sl] for p in prior)
        for _ in range(n_steps):
            eps, log_nu = (noise(sl.stop - lo), None) if nodes is None else nodes
            if work is None:
                work = scratch(min(chunk, S), eps.shape[-1], prior[1].shape[1], eps.dtype)
            gm, gv = bound_gradient(eps, mu[sl], log_var[sl], pr, lam[sl], ybar[sl],
                                    alpha[sl], log_nu, work=work)[:2]  # fmt: skip
            grad = -np.stack([gm, gv], axis=1)  # Adam minimises −L
            t[sl] += 1
            m1[sl] = b1 * m1[sl] + (1 - b1) * grad
            m2[sl] = b2 * m2[sl] + (1 - b2) * grad * grad
            tt = t[sl][:, None]
            denom = np.sqrt(m2[sl]) / np.sqrt(1 - b2**tt) + adam_eps
            step = (lr / (1 - b1**tt)) * m1[sl] / denom
            mu[sl] -= step[:, 0]
            log_var[sl] -= step[:, 1]
