"""Splits, predictions and goodness of fit of a latent fit (used by :func:`fit_latent`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import xarray as xr

from .._train import seeded_rng
from ..models._latent import LatentRNN
from ._metrics import (
    bits_per_spike,
    decoding_r2,
    poisson_nll,
    psth_r2,
    pvar,
    r2_per_unit,
    smoothed_psth_baseline,
)

if TYPE_CHECKING:
    from ._latent_fit import LatentSplit


def split_trials(
    n_trials: int, val_fraction: float, test: float | Sequence[int], seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seeded ``(train, val, test)`` trial indices (sorted).

    ``test`` is a fraction of all trials or explicit indices; ``val_fraction`` applies to the
    rest. Validation and training keep at least one trial each.

    Examples
    --------
    >>> [a.tolist() for a in split_trials(10, 0.2, [0, 1], seed=0)][2]
    [0, 1]
    """
    if not (isinstance(val_fraction, int | float) and 0 < val_fraction < 1):
        raise ValueError(f"val_fraction must be a fraction in (0, 1); got {val_fraction!r}")
    if isinstance(test, int | float) and not isinstance(test, bool):
        if not 0 <= test < 1:
            raise ValueError(
                f"test_fraction must be a fraction in [0, 1) or trial indices; got {test!r}"
            )
        k = int(round(test * n_trials))
        test_idx = seeded_rng(seed, 10).permutation(n_trials)[:k]
    else:
        test_idx = np.asarray(list(test))
        ok = test_idx.ndim == 1 and (test_idx.size == 0 or test_idx.dtype.kind in "iu")
        ok = ok and np.unique(test_idx).size == test_idx.size
        if not ok or (test_idx.size and (test_idx.min() < 0 or test_idx.max() >= n_trials)):
            raise ValueError(
                f"test_fraction as indices must be distinct trials in 0..{n_trials - 1}; got {test!r}"
            )
    rest = seeded_rng(seed, 12).permutation(np.setdiff1d(np.arange(n_trials), test_idx))
    n_val = max(1, int(round(val_fraction * len(rest))))
    if len(rest) - n_val < 1:
        raise ValueError(
            f"{n_trials} trials leave {len(rest)} for training and validation: need at least 2"
        )
    return np.sort(rest[n_val:]), np.sort(rest[:n_val]), np.sort(test_idx.astype(np.int64))


@torch.no_grad()
def predict_trials(
    model: LatentRNN,
    activity: torch.Tensor,
    inputs: torch.Tensor,
    trials: np.ndarray,
    use_inputs: bool,
    batch_size: int,
) -> dict[str, torch.Tensor]:
    """Posterior-mean reconstructions of ``trials``: ``h0, states, log_rates, rates, factors``.

    The encoder reads held-in neurons only; no noise and no posterior sampling.
    """
    was_training = model.training
    model.eval()
    parts: dict[str, list[torch.Tensor]] = {}
    try:
        for i in range(0, len(trials), max(batch_size, 256)):
            idx = torch.from_numpy(np.asarray(trials[i : i + max(batch_size, 256)])).to(
                activity.device
            )
            u = inputs[idx]
            h0, _ = model.infer_initial_state(activity[idx], u if use_inputs else None)
            rates, states = model(u, state=h0, noise=False)
            out = {"h0": h0, "states": states, "log_rates": model.log_rates(states),
                   "rates": rates, "factors": model.factors(states)}  # fmt: skip
            for k, v in out.items():
                parts.setdefault(k, []).append(v)
    finally:
        model.train(was_training)
    return {k: torch.cat(v) for k, v in parts.items()}


def _labels(ds: xr.Dataset, conditions: str | Sequence[Any] | None) -> np.ndarray:
    b = ds.sizes["trial"]
    if conditions is None:
        return np.zeros(b, dtype=np.int64)
    if isinstance(conditions, str):
        if conditions not in ds.coords or ds[conditions].dims != ("trial",):
            have = [str(k) for k in ds.coords if ds[k].dims == ("trial",) and k != "trial"]
            raise ValueError(f"conditions={conditions!r} is not a trial coordinate; have {have}")
        return ds[conditions].values
    labels = np.asarray(list(conditions))
    if labels.shape != (b,):
        raise ValueError(f"conditions needs one label per trial ({b}); got shape {labels.shape}")
    return labels


def _behaviour(ds: xr.Dataset, behaviour: str | np.ndarray | bool | None) -> np.ndarray | None:
    if behaviour is None:
        behaviour = "behaviour" if "behaviour" in ds else False
    if behaviour is False:
        return None
    if behaviour is True:
        behaviour = "behaviour"
    if isinstance(behaviour, str):
        if behaviour not in ds.data_vars:
            raise ValueError(f"behaviour={behaviour!r} is not a variable of the recording")
        arr = ds[behaviour].values
    else:
        arr = np.asarray(behaviour)
    arr = np.asarray(arr, dtype=np.float64)
    if arr.shape[:2] != (ds.sizes["trial"], ds.sizes["time"]) or arr.ndim not in (2, 3):
        raise ValueError(f"behaviour must be [trial, time(, channel)]; got shape {arr.shape}")
    return arr


def _scores(prefix: str, pred: np.ndarray, data: np.ndarray, counts: bool) -> dict[str, float]:
    if counts:
        ok = pred.size and data.sum() > 0
        return {f"{prefix}bps": bits_per_spike(pred, data) if ok else float("nan")}
    if data.size == 0 or data.var() == 0:
        return {f"{prefix}r2": float("nan"), f"{prefix}pvar": float("nan")}
    return {f"{prefix}r2": float(np.nanmean(r2_per_unit(data, pred))),
            f"{prefix}pvar": pvar(data, pred)}  # fmt: skip


def _baseline(ds: xr.Dataset, split: LatentSplit, labels: np.ndarray, trials, sigma_ms: float):
    act = ds["activity"].values.astype(np.float64)
    return smoothed_psth_baseline(
        act[split.train], labels[split.train], labels[trials], dt=float(ds.attrs["dt"]),
        sigma_ms=sigma_ms,
    )  # fmt: skip


def latent_metrics(
    ds: xr.Dataset,
    pred: dict[str, torch.Tensor],
    split: LatentSplit,
    conditions: str | Sequence[Any] | None,
    behaviour: str | np.ndarray | bool | None,
    sigma_ms: float,
) -> dict[str, float]:
    """Co-smoothing and PSTH/decoding scores on val (and ``test_``-prefixed test) trials."""
    counts = ds.attrs["kind"] == "counts"
    act = ds["activity"].values.astype(np.float64)
    rates = pred["rates"].cpu().numpy().astype(np.float64)
    labels = _labels(ds, conditions)
    target = _behaviour(ds, behaviour)
    factors = pred["factors"].cpu().numpy().astype(np.float64)
    out: dict[str, float] = {}
    for pre, trials in (("", split.val), ("test_", split.test)):
        if len(trials) == 0:
            continue
        a, r = act[trials], rates[trials]
        base = _baseline(ds, split, labels, trials, sigma_ms)
        hi, ho = split.held_in, split.held_out
        out.update(_scores(f"{pre}co_", r[..., ho], a[..., ho], counts))
        out.update(_scores(f"{pre}heldin_", r[..., hi], a[..., hi], counts))
        out.update(_scores(f"{pre}baseline_co_", base[..., ho], a[..., ho], counts))
        if counts:
            out[f"{pre}nll"] = poisson_nll(r, a) / a.size
        if conditions is not None:
            out[f"{pre}psth_r2"] = psth_r2(r, a, labels[trials])
        if target is not None:
            out[f"{pre}decoding_r2"] = decoding_r2(factors, target, train=split.train, test=trials)
    return out


def latent_predictions(
    ds: xr.Dataset,
    model: LatentRNN,
    pred: dict[str, torch.Tensor],
    split: LatentSplit,
    metrics: dict[str, float],
    sigma_ms: float,
    conditions: str | Sequence[Any] | None,
) -> xr.Dataset:
    """Predictions on val and test trials as a dataset (see :class:`LatentFit`)."""
    trials = np.concatenate([split.val, split.test])
    which = np.array(["val"] * len(split.val) + ["test"] * len(split.test), dtype=object)

    def arr(key: str) -> np.ndarray:
        return pred[key][torch.from_numpy(trials).to(pred[key].device)].cpu().numpy()

    base = _baseline(ds, split, _labels(ds, conditions), trials, sigma_ms)
    held_out = np.isin(np.arange(ds.sizes["unit"]), split.held_out)
    trial_coords = {
        str(k): ("trial", ds[k].values[trials])
        for k in ds.coords
        if ds[k].dims == ("trial",) and k != "trial"
    }
    unit_coords = {str(k): ("unit", ds[k].values) for k in ds.coords if ds[k].dims == ("unit",)}
    counts = ds.attrs["kind"] == "counts"
    out = xr.Dataset(
        {
            "rate": (("trial", "time", "unit"), arr("rates").astype(np.float32)),
            "activity": (("trial", "time", "unit"), ds["activity"].values[trials]),
            "baseline": (("trial", "time", "unit"), base.astype(np.float32)),
            "state": (("trial", "time", "latent"), arr("states").astype(np.float32)),
            "factors": (("trial", "time", "factor"), arr("factors").astype(np.float32)),
            "h0": (("trial", "latent"), arr("h0").astype(np.float32)),
        },
        coords={
            **unit_coords,
            "trial": trials.astype(np.int64),
            "split": ("trial", which.astype(str)),
            "time": ds["time"].values,
            "held_out": ("unit", held_out),
            **trial_coords,
        },
        attrs={
            "kind": ds.attrs["kind"],
            "dt": float(ds.attrs["dt"]),
            "likelihood": model.likelihood,
            "rate_units": "expected counts per bin" if counts else "activity units",
            "model": json.dumps(model.config()),
            "metrics": json.dumps({k: float(v) for k, v in metrics.items()}),
            "split": json.dumps(split.to_dict()),
        },
    )
    return out
