"""Goodness of fit for recorded activity: pVar, R², Poisson likelihood, co-bps, PSTH R², decoding.

Arrays are ``[..., N]`` with units last (usually ``[trial, time, unit]``). Rates passed to the
Poisson metrics are *expected counts per bin* (Hz × dt / 1000), not Hz.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.special import gammaln

_EPS = 1e-9  # floor on Poisson rates: a zero rate under a spike would give an infinite NLL


def _pair(data: np.ndarray, pred: np.ndarray, names: tuple[str, str]) -> tuple[np.ndarray, ...]:
    a, r = np.asarray(data, dtype=np.float64), np.asarray(pred, dtype=np.float64)
    if a.shape != r.shape:
        raise ValueError(f"{names[0]} {a.shape} and {names[1]} {r.shape} must have the same shape")
    if a.size == 0:
        raise ValueError(f"{names[0]} is empty")
    return a, r


def pvar(data: np.ndarray, pred: np.ndarray) -> float:
    """Fraction of variance explained, CURBD's ``pVar = 1 − ‖A − R‖²_F / (n · var A)``.

    ``var A`` is the variance of all entries of the data together (not per unit), so units
    with large swings weigh more, as in Perich et al.

    Examples
    --------
    >>> a = np.random.default_rng(0).normal(size=(4, 10, 3))
    >>> pvar(a, a), round(pvar(a, np.full_like(a, a.mean())), 12)
    (1.0, 0.0)
    """
    a, r = _pair(data, pred, ("data", "pred"))
    var = a.var()
    if var == 0:
        raise ValueError("data has zero variance: pVar is undefined")
    return float(1.0 - np.sum((a - r) ** 2) / (a.size * var))


def r2_per_unit(data: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Coefficient of determination of each unit (last axis) over all other axes.

    A unit whose data never change gets ``nan``.

    Examples
    --------
    >>> a = np.stack([np.arange(5.0), np.arange(5.0) ** 2], axis=-1)
    >>> r2_per_unit(a, a).tolist()
    [1.0, 1.0]
    """
    a, r = _pair(data, pred, ("data", "pred"))
    a2, r2 = a.reshape(-1, a.shape[-1]), r.reshape(-1, r.shape[-1])
    sst = np.sum((a2 - a2.mean(axis=0)) ** 2, axis=0)
    sse = np.sum((a2 - r2) ** 2, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(sst > 0, 1.0 - sse / np.where(sst > 0, sst, 1.0), np.nan)


def _counts_rates(rates: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lam, k = _pair(rates, counts, ("rates", "counts"))
    if (lam < 0).any() or not np.isfinite(lam).all():
        raise ValueError("rates must be finite and >= 0 (expected counts per bin)")
    if (k < 0).any() or (k != np.round(k)).any():
        raise ValueError("counts must be non-negative whole numbers")
    return lam, k


def poisson_nll(rates: np.ndarray, counts: np.ndarray) -> float:
    """Summed Poisson negative log-likelihood ``Σ λ − k log λ + log k!``.

    Examples
    --------
    >>> round(poisson_nll(np.array([1.0]), np.array([0])), 12)  # P(0 | λ=1) = e^-1
    1.0
    """
    lam, k = _counts_rates(rates, counts)
    lam = np.maximum(lam, _EPS)
    return float(np.sum(lam - k * np.log(lam) + gammaln(k + 1)))


def bits_per_spike(rates: np.ndarray, counts: np.ndarray) -> float:
    """Co-smoothing bits per spike as defined by the Neural Latents Benchmark.

    ``(NLL_null − NLL_model) / (n_spikes · ln 2)``, where the null model predicts each unit's
    mean count per bin over the evaluated data. Zero for a model no better than the mean
    rate, negative for a worse one.

    Parameters
    ----------
    rates : numpy.ndarray
        Predicted expected counts per bin ``[..., N]``.
    counts : numpy.ndarray
        Observed counts, same shape.

    Examples
    --------
    >>> k = np.random.default_rng(0).poisson(2.0, size=(50, 20, 4))
    >>> bits_per_spike(np.broadcast_to(k.mean(axis=(0, 1)), k.shape), k)
    0.0
    """
    lam, k = _counts_rates(rates, counts)
    n_spikes = k.sum()
    if n_spikes == 0:
        raise ValueError("counts hold no spikes: bits per spike is undefined")
    null = np.broadcast_to(k.reshape(-1, k.shape[-1]).mean(axis=0), k.shape)
    gain = poisson_nll(null, k) - poisson_nll(lam, k)
    return float(gain / (n_spikes * math.log(2)))


def _condition_means(x: np.ndarray, conditions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labels = np.unique(conditions)
    return labels, np.stack([x[conditions == c].mean(axis=0) for c in labels])


def psth_r2(pred: np.ndarray, data: np.ndarray, conditions: Sequence) -> float:
    """R² of condition-averaged PSTHs (``pred`` against ``data``), averaged over units.

    Both arrays are ``[trial, time, unit]``; ``conditions`` holds one label per trial.
    Units whose PSTHs never change are left out of the average.

    Examples
    --------
    >>> x = np.random.default_rng(1).normal(size=(6, 8, 2))
    >>> psth_r2(x, x, [0, 0, 1, 1, 2, 2])
    1.0
    """
    d, p = _pair(data, pred, ("data", "pred"))
    cond = np.asarray(conditions)
    if d.ndim != 3 or cond.shape != (d.shape[0],):
        raise ValueError(
            f"need [trial, time, unit] arrays and one condition per trial; got {d.shape}, "
            f"conditions {cond.shape}"
        )
    _, psth_d = _condition_means(d, cond)
    _, psth_p = _condition_means(p, cond)
    r2 = r2_per_unit(psth_d.reshape(-1, d.shape[2]), psth_p.reshape(-1, d.shape[2]))
    return float(np.nanmean(r2))


def smoothed_psth_baseline(
    train_counts: np.ndarray,
    train_conditions: Sequence,
    test_conditions: Sequence,
    *,
    dt: float,
    sigma_ms: float = 40.0,
) -> np.ndarray:
    """Predict counts of test trials by the Gaussian-smoothed PSTH of their condition.

    The PSTH of each condition (mean count per bin over the training trials of that
    condition, smoothed along time with a Gaussian of ``sigma_ms``) is the prediction for
    every test trial of that condition; an unseen condition gets the overall PSTH.

    Returns
    -------
    numpy.ndarray
        Expected counts per bin ``[B_test, T, N]``.

    Examples
    --------
    >>> k = np.ones((4, 10, 2))
    >>> smoothed_psth_baseline(k, [0, 0, 1, 1], [1, 2], dt=10.0).shape
    (2, 10, 2)
    """
    k = np.asarray(train_counts, dtype=np.float64)
    train_c, test_c = np.asarray(train_conditions), np.asarray(test_conditions)
    if k.ndim != 3 or train_c.shape != (k.shape[0],):
        raise ValueError(
            f"train_counts must be [trial, time, unit] with one condition per trial; "
            f"got {k.shape} and {train_c.shape}"
        )
    if not sigma_ms >= 0 or not dt > 0:
        raise ValueError(f"sigma_ms must be >= 0 and dt > 0; got {sigma_ms}, {dt}")
    sigma = sigma_ms / dt

    def smooth(x: np.ndarray) -> np.ndarray:
        return gaussian_filter1d(x, sigma, axis=-2, mode="reflect") if sigma > 0 else x

    labels, psths = _condition_means(k, train_c)
    overall = smooth(k.mean(axis=0))
    table = {c: smooth(p) for c, p in zip(labels.tolist(), psths, strict=True)}
    return np.stack([table.get(c, overall) for c in test_c.tolist()])


def decoding_r2(
    features: np.ndarray,
    target: np.ndarray,
    *,
    train: Sequence[int],
    test: Sequence[int],
    alpha: float = 1.0,
) -> float:
    """Ridge-decode ``target`` from ``features`` on ``train`` trials; R² on ``test`` trials.

    Parameters
    ----------
    features : numpy.ndarray
        ``[B, T, F]`` (e.g. latent factors or smoothed rates).
    target : numpy.ndarray
        ``[B, T, K]`` or ``[B, T]`` behavioural variable(s).
    train, test : sequence of int
        Trial indices; the R² is averaged over the ``K`` target columns.
    alpha : float, default 1
        Ridge penalty on standardised features.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(20, 30, 3))
    >>> y = x @ np.array([1.0, -2.0, 0.5])
    >>> round(decoding_r2(x, y, train=range(15), test=range(15, 20), alpha=1e-6), 6)
    1.0
    """
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(target, dtype=np.float64)
    y = y[..., None] if y.ndim == 2 else y
    if x.ndim != 3 or y.shape[:2] != x.shape[:2]:
        raise ValueError(
            f"features [B, T, F] and target [B, T, K] must align; got {x.shape}, {y.shape}"
        )
    tr, te = np.asarray(train, dtype=int), np.asarray(test, dtype=int)
    xtr, ytr = x[tr].reshape(-1, x.shape[2]), y[tr].reshape(-1, y.shape[2])
    mu, sd = xtr.mean(axis=0), xtr.std(axis=0)
    sd[sd == 0] = 1.0
    z = (xtr - mu) / sd
    ym = ytr.mean(axis=0)
    w = np.linalg.solve(z.T @ z + alpha * np.eye(z.shape[1]), z.T @ (ytr - ym))
    pred = ((x[te].reshape(-1, x.shape[2]) - mu) / sd) @ w + ym
    return float(np.nanmean(r2_per_unit(y[te].reshape(-1, y.shape[2]), pred)))
