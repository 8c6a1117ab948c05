"""Behaviour read off trajectories: choices, accuracy, psychometric curves."""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy.optimize import curve_fit
from scipy.stats import norm


def compute_choices(ds: xr.Dataset) -> xr.DataArray:
    """Each trial's choice: arg-max of the output summed over the trial's masked steps.

    Returns an ``int64`` DataArray over ``trial`` (with the trial coordinates);
    ``-1`` for trials with no masked step.
    """
    out = ds["output"].transpose("trial", "time", ...).values.astype(np.float64)
    z = out - out.max(-1, keepdims=True)
    prob = np.exp(z) / np.exp(z).sum(-1, keepdims=True)
    w = ds["mask"].values > 0
    score = (prob * w[..., None]).sum(1)
    choice = np.where(w.any(1), score.argmax(-1), -1)
    return xr.DataArray(choice, dims="trial", coords=ds["trial"].coords, name="choice")


def _wilson(k: np.ndarray, n: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    z = norm.ppf(0.5 + level / 2)
    p = k / np.maximum(n, 1)
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
    return centre - half, centre + half


def _logistic(x: np.ndarray, bias: float, slope: float, lapse: float) -> np.ndarray:
    return lapse + (1 - 2 * lapse) / (1 + np.exp(-(x - bias) * slope))


def compute_psychometric(
    ds: xr.Dataset,
    *,
    stimulus: str = "coh",
    side: str = "ground_truth",
    side_positive: int = 1,
    choice_positive: int = 2,
) -> xr.Dataset:
    """Psychometric curve: P(choose the positive side) against signed stimulus strength.

    Defaults fit ``neurogym/PerceptualDecisionMaking-v0``: the signed coherence is
    ``coh`` when ``ground_truth == 1`` and ``-coh`` otherwise; the positive choice is
    action 2 (``ground_truth + 1``).

    Returns
    -------
    xarray.Dataset
        Over ``condition`` (signed strength): ``p_positive`` with Wilson 95 % bounds
        ``p_low``/``p_high``, ``accuracy``, ``n_trials``; attrs hold a logistic fit
        (``bias``, ``slope``, ``lapse``) and the overall ``accuracy``.

    Examples
    --------
    >>> import paradigms, neurosim, analyses
    >>> task = paradigms.make("neurogym/PerceptualDecisionMaking-v0")
    >>> net = neurosim.models.RateRNN(task.n_inputs, 16, task.n_outputs, dt=task.dt)
    >>> curve = analyses.compute_psychometric(neurosim.simulate(net, task, 50, seed=0))
    >>> curve.p_positive.dims
    ('condition',)
    """
    for c in (stimulus, side):
        if c not in ds.coords:
            raise KeyError(
                f"trial coordinate {c!r} not in dataset; trial coords: {sorted(ds['trial'].coords)}"
            )
    choice = compute_choices(ds).values
    strength = np.asarray(ds[stimulus].values, dtype=np.float64)
    sign = np.where(np.asarray(ds[side].values) == side_positive, 1.0, -1.0)
    signed = np.round(strength * sign, 9)
    correct = choice == np.asarray(ds[side].values) + (choice_positive - side_positive)
    levels = np.unique(signed)
    pos = np.array([(choice[signed == s] == choice_positive).sum() for s in levels], dtype=float)
    n = np.array([(signed == s).sum() for s in levels], dtype=float)
    acc = np.array([correct[signed == s].mean() for s in levels])
    lo, hi = _wilson(pos, n)
    attrs = {"accuracy": float(correct.mean()), "stimulus": stimulus}
    try:
        (bias, slope, lapse), _ = curve_fit(
            _logistic,
            signed,
            (choice == choice_positive).astype(float),
            p0=(0.0, 0.1, 0.02),
            bounds=([-100, 0, 0], [100, 10, 0.5]),
            maxfev=5000,
        )
        attrs.update(bias=float(bias), slope=float(slope), lapse=float(lapse))
    except (RuntimeError, ValueError):
        attrs.update(bias=np.nan, slope=np.nan, lapse=np.nan)
    return xr.Dataset(
        {
            "p_positive": ("condition", pos / n),
            "p_low": ("condition", lo),
            "p_high": ("condition", hi),
            "accuracy": ("condition", acc),
            "n_trials": ("condition", n.astype(np.int64)),
        },
        coords={"condition": levels},
        attrs=attrs,
    )
