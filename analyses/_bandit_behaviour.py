"""Behaviour on bandits: regret, best-arm choices, entropy, switching and reward-to-variance.

Every function takes the dataset of :func:`neurosim.agents.run_bandit` (dims ``session,
trial, arm``; ``choice``, ``reward``, ``expected_reward``, ``regret``, ``p_choice``).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import xarray as xr

from ._stats import format_mean_ci, mean_ci

METRICS = (
    "total_regret",
    "p_best",
    "choice_entropy",
    "policy_entropy",
    "switch_rate",
    "reward_mean",
    "reward_sd",
    "sharpe",
)


def _check(ds: xr.Dataset) -> None:
    need = ("choice", "reward", "expected_reward", "regret")
    missing = [v for v in need if v not in ds]
    if missing:
        raise ValueError(
            f"not a bandit behaviour dataset: missing variable(s) {missing}; "
            "pass the result of neurosim.agents.run_bandit"
        )


def _chose_best(ds: xr.Dataset) -> np.ndarray:
    """``[S, T]`` bool: the chosen arm has the largest expected reward (ties all count)."""
    mean = np.asarray(ds["expected_reward"])
    chosen = np.take_along_axis(mean, np.asarray(ds["choice"])[..., None], -1)[..., 0]
    return np.isclose(chosen, mean.max(-1), rtol=0, atol=1e-12)


def _entropy_bits(p: np.ndarray, axis: int = -1) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, -p * np.log2(np.where(p > 0, p, 1.0)), 0.0)
    return terms.sum(axis)


def compute_bandit_metrics(ds: xr.Dataset) -> xr.Dataset:
    """Per-session summaries of bandit behaviour.

    Parameters
    ----------
    ds : xarray.Dataset
        From :func:`neurosim.agents.run_bandit`.

    Returns
    -------
    xarray.Dataset
        Dim ``session``: ``total_regret`` (sum over trials of the best arm's expected
        reward minus the chosen arm's), ``p_best`` (fraction of trials on a best arm),
        ``choice_entropy`` (bits, of the session's choice frequencies), ``policy_entropy``
        (bits, the mean entropy of the agent's choice probabilities; NaN if not recorded),
        ``switch_rate`` (fraction of trials after the first whose choice differs from the
        previous one), ``reward_mean``, ``reward_sd`` and ``sharpe`` (the
        reward-to-variability ratio ``reward_mean / reward_sd``; NaN when the rewards do
        not vary).

    Examples
    --------
    >>> import paradigms
    >>> from neurosim.agents import RandomAgent, run_bandit
    >>> ds = run_bandit(RandomAgent(), paradigms.make("bandit/bernoulli"), 50, 200, seed=0)
    >>> m = compute_bandit_metrics(ds)
    >>> round(float(m["choice_entropy"].mean()), 2), round(float(m["policy_entropy"].mean()), 2)
    (1.0, 1.0)
    """
    _check(ds)
    choice = np.asarray(ds["choice"])
    reward = np.asarray(ds["reward"], dtype=np.float64)
    S, T = choice.shape
    A = ds.sizes["arm"]
    freq = np.stack([(choice == a).mean(1) for a in range(A)], -1)
    if "p_choice" in ds and np.isfinite(np.asarray(ds["p_choice"])).all():
        policy_entropy = _entropy_bits(np.asarray(ds["p_choice"])).mean(1)
    else:
        policy_entropy = np.full(S, np.nan)
    switch = (np.diff(choice, axis=1) != 0).mean(1) if T > 1 else np.full(S, np.nan)
    r_mean = reward.mean(1)
    r_sd = reward.std(1, ddof=1) if T > 1 else np.full(S, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        sharpe = np.where(r_sd > 0, r_mean / np.where(r_sd > 0, r_sd, 1.0), np.nan)
    data = {
        "total_regret": np.asarray(ds["regret"]).sum(1),
        "p_best": _chose_best(ds).mean(1),
        "choice_entropy": _entropy_bits(freq),
        "policy_entropy": policy_entropy,
        "switch_rate": switch,
        "reward_mean": r_mean,
        "reward_sd": r_sd,
        "sharpe": sharpe,
    }
    out = xr.Dataset(
        {k: ("session", np.asarray(v, dtype=np.float64)) for k, v in data.items()},
        coords={"session": ds["session"].values},
        attrs={k: ds.attrs[k] for k in ("agent", "paradigm") if k in ds.attrs},
    )
    return out


def compute_bandit_curves(ds: xr.Dataset, confidence: float = 0.95) -> xr.Dataset:
    """Learning curves over trials, averaged over sessions with confidence intervals.

    Returns
    -------
    xarray.Dataset
        Dim ``trial``: ``cumulative_regret`` and ``p_best`` (means over sessions) with
        ``*_ci`` (half-widths of the Student-t interval at ``confidence``).

    Examples
    --------
    >>> import paradigms
    >>> from neurosim.agents import RandomAgent, run_bandit
    >>> ds = run_bandit(RandomAgent(), paradigms.make("bandit/bernoulli"), 20, 30, seed=0)
    >>> c = compute_bandit_curves(ds)
    >>> bool((c["cumulative_regret"].diff("trial") >= 0).all())
    True
    """
    _check(ds)
    cum = np.cumsum(np.asarray(ds["regret"]), axis=1)
    best = _chose_best(ds).astype(np.float64)
    out = {}
    for name, values in (("cumulative_regret", cum), ("p_best", best)):
        m, h, _ = mean_ci(values, axis=0, confidence=confidence)
        out[name] = ("trial", m)
        out[f"{name}_ci"] = ("trial", h)
    return xr.Dataset(out, coords={"trial": ds["trial"].values}, attrs=dict(ds.attrs))


def summarise_bandit_metrics(
    metrics: xr.Dataset, confidence: float = 0.95
) -> dict[str, tuple[float, float]]:
    """``{metric: (mean, CI half-width)}`` over sessions of :func:`compute_bandit_metrics`."""
    out = {}
    for name in METRICS:
        if name in metrics:
            m, h, _ = mean_ci(np.asarray(metrics[name]), confidence=confidence)
            out[name] = (float(m), float(h))
    return out


def compare_agents(
    runs: Mapping[str, xr.Dataset],
    metrics: tuple[str, ...] = (
        "total_regret",
        "p_best",
        "choice_entropy",
        "switch_rate",
        "sharpe",
    ),
    confidence: float = 0.95,
    digits: int = 3,
) -> pd.DataFrame:
    """A table of agents (rows) by behaviour metric (columns, ``"mean ± CI"`` strings).

    Parameters
    ----------
    runs : mapping of name to dataset
        Each a :func:`neurosim.agents.run_bandit` result (on the same environment, for a
        fair comparison).
    metrics : tuple of str
        Columns, from :data:`METRICS`.

    Examples
    --------
    >>> import paradigms
    >>> from neurosim.agents import RandomAgent, run_bandit
    >>> env = paradigms.make("bandit/bernoulli")
    >>> table = compare_agents({"random": run_bandit(RandomAgent(), env, 10, 20)})
    >>> list(table.columns)[:2], list(table.index)
    (['total_regret', 'p_best'], ['random'])
    """
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; choose from {list(METRICS)}")
    rows = {}
    for name, ds in runs.items():
        summary = summarise_bandit_metrics(compute_bandit_metrics(ds), confidence)
        rows[name] = {m: format_mean_ci(*summary[m], digits=digits) for m in metrics}
    table = pd.DataFrame.from_dict(rows, orient="index", columns=list(metrics))
    table.index.name = "agent"
    return table
