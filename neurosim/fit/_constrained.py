"""Data-constrained RNNs (CURBD, Perich et al.): one model unit per recorded neuron.

:func:`fit_constrained` fits a :class:`neurosim.models.RateRNN` whose ``N`` units are the ``N``
recorded neurons, by recursive least squares / FORCE (``method="rls"``, the trials of a batch
stepped in parallel, :mod:`neurosim.fit._rls`) or by backpropagation through time
(``method="bptt"``, Adam). The data ``A`` (counts are smoothed into rates first) are scaled into
the range of ``φ``; the model's ``w_out = diag(scale)`` and ``b_out = offset`` (frozen) map
``φ(h)`` back to data units. Held-out trials are predicted by a free run from their first frame
(``h_0 = φ⁻¹(A_0)``, clipped) with the trial's inputs and no teacher forcing; the goodness of fit
(pVar, per-unit R²) is measured on frames ``1..T−1``.
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
import xarray as xr
from scipy.ndimage import gaussian_filter1d
from tqdm.auto import tqdm

from .._checkpoint import write_checkpoint
from .._device import resolve_device
from .._recordings import recording_array, validate_recording
from .._train import quiet_mode, seeded_rng, seeded_torch
from ..models import RateRNN
from ._bptt import BPTTFitter
from ._metrics import pvar, r2_per_unit
from ._rls import INVERTIBLE, TARGETS, ForceFitter, activation_pair, bump_basis, filtered_noise

METHODS = ("rls", "bptt")
INPUT_MODES = ("given", "noise", "learned", "none")
DEFAULT_SMOOTH_MS = 50.0  # Gaussian SD used on counts when smooth_ms is not given
TAU_IN_STEPS = 5.0  # default τ = 5 dt


@dataclass(frozen=True)
class ConstrainedFit:
    """What :func:`fit_constrained` returns.

    Attributes
    ----------
    model : RateRNN
        ``N`` units, float32 on the CPU; ``readout(h)`` is the predicted activity in data units.
    history : pandas.DataFrame
        One row per epoch: ``epoch, loss, pvar_train, pvar_val, elapsed_s``; ``loss`` is the
        mean squared error of the RLS updates (drive units) or BPTT's MSE (scaled units), the
        pVars those of free runs with the epoch's weights.
    pvar_train, pvar_val : float
        pVar of free runs of the returned model on the training and validation trials
        (``nan`` without validation trials).
    r2_val : numpy.ndarray
        ``[N]`` R² of each unit on the validation trials.
    predictions : xarray.Dataset
        The validation trials (training trials when there are none) in the recording schema:
        ``activity`` = prediction, ``data`` = the activity it is compared with (rates).
    train_trials, val_trials : numpy.ndarray
        Positions of the trials used (``isel`` indices).
    config : dict
        Every setting (JSON-serialisable), the derived ``tau``, ``dt``, ``scale_values``,
        ``offset``, the split, and ``notes`` (defaults applied, early stop, divergence).
    fixed_inputs : numpy.ndarray or None
        ``[T, I]`` inputs shared by all trials (``inputs="noise"`` or ``"learned"``).
    """

    model: RateRNN
    history: pd.DataFrame
    pvar_train: float
    pvar_val: float
    r2_val: np.ndarray
    predictions: xr.Dataset
    train_trials: np.ndarray
    val_trials: np.ndarray
    config: dict[str, Any]
    fixed_inputs: np.ndarray | None = None

    def inputs_for(self, recording: xr.Dataset) -> np.ndarray:
        """The model's inputs ``[B, T, I]`` for the trials of ``recording``."""
        return _model_inputs(self.config["inputs"], recording, self.fixed_inputs)

    def predict(self, recording: xr.Dataset) -> np.ndarray:
        """Free run from each trial's first frame: predicted activity ``[B, T, N]``, data units."""
        data = _activity(recording, self.config["smooth_ms"])
        return _free_run(self.model, data, self.inputs_for(recording), self.config["activation"])


def _check(name: str, ok: bool, value: Any, accepted: str) -> None:
    if not ok:
        raise ValueError(f"{name} must be {accepted}; got {value!r}")


_SETTINGS = ("method", "activation", "tau", "inputs", "n_epochs", "lr", "scale", "center",
             "smooth_ms", "g", "p0", "target", "bias", "noise_amp", "noise_tau_ms", "n_basis",
             "batch_trials", "truncation", "clip_grad", "patience", "seed")  # fmt: skip


def _check_settings(s: dict[str, Any], dt: float, t_len: int) -> None:
    """Raise a ValueError naming the first setting that is out of range."""
    _check("method", s["method"] in METHODS, s["method"], f"one of {METHODS}")
    _check(
        "activation", s["activation"] in INVERTIBLE, s["activation"], f"one of {sorted(INVERTIBLE)}"
    )
    _check("target", s["target"] in TARGETS, s["target"], f"one of {TARGETS}")
    _check("inputs", s["inputs"] in INPUT_MODES, s["inputs"], f"one of {INPUT_MODES}")
    number = (int, float, np.integer, np.floating)
    tau = s["tau"]
    ok = isinstance(tau, number) and math.isfinite(tau) and tau >= dt
    _check("tau", ok, tau, f"a number of ms >= dt ({dt} ms)")
    _check(
        "n_epochs",
        isinstance(s["n_epochs"], int) and s["n_epochs"] >= 1,
        s["n_epochs"],
        "an integer >= 1",
    )
    for name in ("patience", "batch_trials", "truncation"):
        v = s[name]
        _check(name, v is None or (isinstance(v, int) and v >= 1), v, "None or an integer >= 1")
    for name in ("lr", "g", "p0", "noise_tau_ms", "clip_grad"):
        v = s[name]
        ok = isinstance(v, number) and math.isfinite(v) and v > 0
        _check(name, ok, v, "a positive number")
    v = s["noise_amp"]
    _check("noise_amp", isinstance(v, number) and math.isfinite(v) and v >= 0, v, "a number >= 0")
    v = s["smooth_ms"]
    _check(
        "smooth_ms",
        v is None or (isinstance(v, number) and v >= 0),
        v,
        "None or a number of ms >= 0",
    )
    v = s["n_basis"]
    ok = v is None or (isinstance(v, int) and 1 <= v <= t_len)
    _check("n_basis", ok, v, f"an integer in 1..{t_len} (the trial length)")
    _check("recording", t_len >= 2, t_len, "a recording with at least 2 time bins")


def _activity(recording: xr.Dataset, smooth_ms: float | None) -> np.ndarray:
    """``[B, T, N]`` float64 activity: counts as rates in Hz, Gaussian-smoothed if asked."""
    dt = float(recording.attrs["dt"])
    data = recording_array(recording).astype(np.float64)
    if recording.attrs["kind"] == "counts":
        data = data * (1000.0 / dt)
    if smooth_ms:
        data = gaussian_filter1d(data, smooth_ms / dt, axis=1, mode="nearest")
    return data


def _model_inputs(mode: str, recording: xr.Dataset, fixed: np.ndarray | None) -> np.ndarray:
    b, t = recording.sizes["trial"], recording.sizes["time"]
    if mode == "given":
        if "input" not in recording:
            raise ValueError(
                "inputs='given' needs the recording's 'input' variable (trial, time, "
                "input_channel), which this recording lacks; use inputs='noise', 'learned' "
                "or 'none'"
            )
        return recording["input"].values.astype(np.float64)
    if mode == "none":
        return np.zeros((b, t, 1))
    if fixed is None or t > fixed.shape[0]:
        raise ValueError(
            f"inputs={mode!r} are fixed for trials of at most "
            f"{0 if fixed is None else fixed.shape[0]} steps; got {t}"
        )
    return np.broadcast_to(fixed[:t], (b, t, fixed.shape[1])).copy()


def _split(
    n: int, train: Any, val: Any, val_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    def indices(name: str, value: Any) -> np.ndarray:
        idx = np.asarray(value, dtype=np.int64).ravel()
        _check(
            name,
            bool(((idx >= 0) & (idx < n)).all()) and len(set(idx.tolist())) == len(idx),
            value,
            f"distinct trial positions in 0..{n - 1}",
        )
        return idx

    train_idx = None if train is None else indices("train_trials", train)
    if val is not None:
        val_idx = indices("val_trials", val)
    elif train_idx is not None:
        val_idx = np.setdiff1d(np.arange(n), train_idx)
    else:
        _check("val_fraction", 0 <= val_fraction < 1, val_fraction, "a number in [0, 1)")
        n_val = min(max(int(round(n * val_fraction)), 1 if val_fraction > 0 else 0), n - 1)
        val_idx = np.sort(seeded_rng(seed, 1).permutation(n)[:n_val])
    if train_idx is None:
        train_idx = np.setdiff1d(np.arange(n), val_idx)
    _check(
        "train_trials",
        len(train_idx) > 0 and not np.intersect1d(train_idx, val_idx).size,
        train,
        "a non-empty set of trials disjoint from val_trials",
    )
    return train_idx, val_idx


def _scaling(
    data: np.ndarray, scale: str | float, center: bool, activation: str
) -> tuple[np.ndarray, np.ndarray]:
    """``(scale [N], offset [N])`` mapping training data into the range of ``φ``."""
    n = data.shape[2]
    flat = data.reshape(-1, n)
    offset = flat.mean(axis=0) if center else np.zeros(n)
    dev = np.abs(flat - offset)
    if isinstance(scale, str):
        _check("scale", scale in ("maxabs", "unit"), scale, "'maxabs', 'unit' or a positive number")
        s = np.full(n, dev.max()) if scale == "maxabs" else dev.max(axis=0)
        s = np.where(s > 0, s, 1.0)
    else:
        _check(
            "scale",
            isinstance(scale, int | float) and math.isfinite(scale) and scale > 0,
            scale,
            "'maxabs', 'unit' or a positive number",
        )
        s = np.full(n, float(scale))
    lo = INVERTIBLE[activation][2]
    if lo == 0.0 and (flat - offset < 0).any():
        raise ValueError(
            f"activation {activation!r} has no negative rates but the data (minus offset) "
            "go below 0; use activation='tanh' or 'identity', or center=False on data >= 0"
        )
    return s, offset


def _free_run(model: RateRNN, data: np.ndarray, inputs: np.ndarray, activation: str) -> np.ndarray:
    """Readout of a free run from ``φ⁻¹`` of each trial's scaled first frame, in data units."""
    _, phi_inv = activation_pair(activation)
    p = model.w_rec
    scale = torch.diagonal(model.w_out)
    with torch.no_grad():
        a0 = (torch.as_tensor(data[:, 0], dtype=p.dtype) - model.b_out) / scale
        h0 = phi_inv(a0)
        x = torch.as_tensor(inputs, dtype=p.dtype)
        _, hs = model(x[:, 1:], state=h0, noise=False)
        out = model.readout(torch.cat([h0[:, None], hs], dim=1))
    return out.numpy().astype(np.float64)


def _build_model(
    weights: dict[str, torch.Tensor],
    n_in: int,
    scale: np.ndarray,
    offset: np.ndarray,
    settings: dict[str, Any],
) -> RateRNN:
    n = len(scale)
    model = RateRNN(
        n_in,
        n,
        n,
        activation=settings["activation"],
        tau=settings["tau"],
        dt=settings["dt"],
        sigma_rec=0.0,
        w_rec_init="normal",
        gain=settings["g"],
    )
    with torch.no_grad():
        model.w_rec.copy_(weights["w_rec"])
        model.w_in.copy_(weights["w_in"])
        model.b.copy_(weights["b"])
        model.w_out.copy_(torch.diag(torch.as_tensor(scale, dtype=torch.float32)))
        model.b_out.copy_(torch.as_tensor(offset, dtype=torch.float32))
    model.w_out.requires_grad_(False)
    model.b_out.requires_grad_(False)
    if settings["inputs"] in ("noise", "none"):
        model.w_in.requires_grad_(False)
    return model.eval()


def fit_constrained(
    recording: xr.Dataset,
    *,
    method: Literal["rls", "bptt"] = "rls",
    activation: str = "tanh",
    tau: float | None = None,
    inputs: Literal["given", "noise", "learned", "none"] | None = None,
    train_trials: Any = None,
    val_trials: Any = None,
    val_fraction: float = 0.2,
    n_epochs: int | None = None,
    lr: float = 1e-2,
    scale: str | float = "maxabs",
    center: bool = False,
    smooth_ms: float | None = None,
    g: float = 1.5,
    p0: float = 1.0,
    target: Literal["rates", "currents"] = "rates",
    bias: bool = True,
    noise_amp: float = 0.01,
    noise_tau_ms: float = 100.0,
    n_basis: int | None = None,
    batch_trials: int | None = None,
    truncation: int | None = None,
    clip_grad: float = 1.0,
    patience: int | None = None,
    seed: int = 0,
    device: str = "cpu",
    dtype: torch.dtype | None = None,
    quiet: bool = False,
    checkpoint_dir: str | Path | None = None,
) -> ConstrainedFit:
    """Fit a data-constrained rate RNN (one unit per recorded neuron) to a recording.

    Parameters
    ----------
    recording : xarray.Dataset
        A recording (:func:`neurosim.load_recording`): ``activity (trial, time, unit)``.
    method : {"rls", "bptt"}
        Recursive least squares / FORCE as CURBD (``n_epochs`` passes over the training trials,
        one exact block update per step), or Adam on the MSE of free runs.
    activation : {"tanh", "sigmoid", "softplus", "identity"}
        ``φ``; invertible, so each trial can start on its first frame.
    tau : float, optional
        Time constant in ms; default ``5·dt``.
    inputs : {"given", "noise", "learned", "none"}, optional
        ``"given"``: the recording's ``input``, ``W_in`` learned; ``"noise"``: CURBD's fixed
        filtered white noise (SD ``noise_amp``, ``noise_tau_ms``, one draw shared by all trials);
        ``"learned"``: a drive ``W_in b_t`` on ``n_basis`` fixed temporal bumps (default
        ``min(T, 20)``; ``n_basis=T`` is a free drive per step), ``W_in`` learned; ``"none"``.
        Default: ``"given"`` when the recording has ``input``, else ``"noise"``.
    train_trials, val_trials : sequence of int, optional
        Trial positions; by default a seeded ``val_fraction`` of the trials is held out.
    n_epochs : int, optional
        Passes over the training trials (default 20 for RLS, 300 for BPTT).
    lr, clip_grad, truncation : BPTT's Adam learning rate, gradient-norm clip and truncation
        (steps between detaching the state; default none).
    scale : {"maxabs", "unit"} or float
        Data are divided by it (after subtracting the per-unit mean if ``center``):
        the largest ``|A|`` over all training data (CURBD), per unit, or a given number.
    smooth_ms : float, optional
        Gaussian SD for smoothing (rates in Hz for counts); counts default to 50 ms (noted).
    g, p0, target, bias
        Initial ``J ~ g N(0, 1)/√N``; RLS's ``P0``; RLS error (see
        :func:`neurosim.fit._rls.force_epoch`); whether a bias ``b`` is learned.
    batch_trials : int, optional
        Trials stepped in parallel (default: all training trials).
    patience : int, optional
        Stop after this many epochs without a better validation pVar (the best is kept).
    seed, device, dtype, quiet, checkpoint_dir
        Seed of split, initial weights and noise; ``"cpu"``, ``"cuda"`` or ``"auto"``; compute
        dtype (float64 for RLS, float32 for BPTT by default); no progress bar; where the best
        model is written (:mod:`neurosim._checkpoint` format) whenever it improves.

    Returns
    -------
    ConstrainedFit

    Examples
    --------
    >>> from neurosim._recordings import make_recording
    >>> t = np.arange(30) * 0.2
    >>> act = np.stack([np.sin(t + p) for p in np.linspace(0, 3, 8)], -1) * 0.8
    >>> rec = make_recording(np.repeat(act[None], 5, 0), dt=10.0)
    >>> fit = fit_constrained(rec, inputs="learned", n_epochs=5, quiet=True)
    >>> fit.model.n_units, fit.pvar_val > 0.9
    (8, True)
    """
    rec = validate_recording(recording)
    dt = float(rec.attrs["dt"])
    if inputs is None:
        inputs = "given" if "input" in rec else "noise"
    tau = TAU_IN_STEPS * dt if tau is None else tau
    n_epochs = (20 if method == "rls" else 300) if n_epochs is None else n_epochs
    b, t_len, n = rec.sizes["trial"], rec.sizes["time"], rec.sizes["unit"]
    n_basis = min(t_len, 20) if inputs == "learned" and n_basis is None else n_basis
    settings = {k: v for k, v in locals().items() if k in _SETTINGS}
    _check_settings(settings, dt, t_len)
    notes: list[str] = []
    if rec.attrs["kind"] == "counts" and smooth_ms is None:
        smooth_ms = settings["smooth_ms"] = DEFAULT_SMOOTH_MS
        notes.append(
            f"counts were smoothed into rates (Hz) with a Gaussian of SD {smooth_ms} ms "
            "(the default; set smooth_ms to choose)"
        )
        warnings.warn(notes[-1], UserWarning, stacklevel=2)
    train_idx, val_idx = _split(b, train_trials, val_trials, val_fraction, seed)
    data = _activity(rec, smooth_ms)
    scale_v, offset = _scaling(data[train_idx], scale, center, activation)
    fixed = None
    if inputs == "noise":
        gen = seeded_torch(seed, 3)
        fixed = filtered_noise(t_len, n, dt=dt, tau=noise_tau_ms, generator=gen).numpy()
    elif inputs == "learned":
        fixed = bump_basis(t_len, n_basis).numpy()
    x = _model_inputs(inputs, rec, fixed)
    settings.update(tau=float(tau), dt=dt, device=str(device), train_trials=train_idx.tolist(),
                    val_trials=val_idx.tolist(), scale_values=scale_v.tolist(),
                    offset=offset.tolist(), notes=notes)  # fmt: skip
    dev = resolve_device(device)
    dtype = dtype or (torch.float64 if method == "rls" else torch.float32)
    settings["dtype"] = str(dtype).removeprefix("torch.")
    if not len(val_idx):
        notes.append("no validation trials: early stopping and predictions use training trials")
    scaled = (data - offset) / scale_v
    if method == "rls":
        keys = ("activation", "target", "bias", "g", "p0", "noise_amp", "batch_trials", "seed")
        kw = {k: settings[k] for k in keys}
        fitter: Any = ForceFitter(
            scaled, x, train_idx, alpha=dt / tau, input_mode=inputs, device=dev, dtype=dtype, **kw
        )
    else:
        fitter = BPTTFitter(scaled, x, train_idx, settings=settings, device=dev, dtype=dtype)

    has_val = len(val_idx) > 0
    eval_idx = val_idx if has_val else train_idx

    def score(idx: np.ndarray) -> float:
        pred = fitter.evaluate(idx) * scale_v + offset
        return pvar(data[idx][:, 1:], pred[:, 1:])

    rows: list[dict[str, float]] = []
    best: tuple[float, dict[str, torch.Tensor] | None] = (-math.inf, None)
    since_best, t0 = 0, time.perf_counter()
    bar = tqdm(range(n_epochs), desc=f"fit_constrained ({method})", disable=quiet_mode(quiet))
    for epoch in bar:
        loss = fitter.train_epoch(epoch)
        p_tr = score(train_idx) if math.isfinite(loss) else math.nan
        p_val = score(val_idx) if has_val and math.isfinite(loss) else math.nan
        elapsed = time.perf_counter() - t0
        rows.append(
            dict(epoch=epoch + 1, loss=loss, pvar_train=p_tr, pvar_val=p_val, elapsed_s=elapsed)
        )
        bar.set_postfix(loss=f"{loss:.3g}", pvar_val=f"{p_val:.3f}")
        current = p_val if has_val else p_tr
        if not math.isfinite(loss) or not math.isfinite(current):
            notes.append(f"training diverged at epoch {epoch + 1}; the best epoch is kept")
            break
        if current > best[0]:
            best, since_best = (current, fitter.weights()), 0
            if checkpoint_dir is not None:
                model = _build_model(best[1], x.shape[2], scale_v, offset, settings)
                meta = {"model": model.config(), "fit": settings}
                write_checkpoint(checkpoint_dir, model=model, optimizer=None, step=epoch + 1,
                                 history=rows, meta=meta)  # fmt: skip
        else:
            since_best += 1
            if patience is not None and since_best >= patience:
                notes.append(f"stopped early after epoch {epoch + 1} (patience {patience})")
                break
    bar.close()
    if best[1] is None:
        raise RuntimeError("fit_constrained diverged in its first epoch; lower lr, g or p0")
    model = _build_model(best[1], x.shape[2], scale_v, offset, settings)
    pred_train = _free_run(model, data[train_idx], x[train_idx], activation)
    pred_eval = _free_run(model, data[eval_idx], x[eval_idx], activation)
    target_eval = data[eval_idx]
    p_val = pvar(target_eval[:, 1:], pred_eval[:, 1:]) if has_val else math.nan
    predictions = rec.isel(trial=eval_idx).copy()
    predictions["activity"] = (("trial", "time", "unit"), pred_eval.astype(np.float32))
    predictions["data"] = (("trial", "time", "unit"), target_eval.astype(np.float32))
    evaluated = "val" if has_val else "train"
    predictions.attrs.update(kind="rates", source="fit_constrained", method=method, pvar=p_val,
                             evaluated=evaluated)  # fmt: skip
    return ConstrainedFit(
        model=model,
        history=pd.DataFrame(rows),
        pvar_train=pvar(data[train_idx][:, 1:], pred_train[:, 1:]),
        pvar_val=p_val,
        r2_val=r2_per_unit(target_eval[:, 1:], pred_eval[:, 1:]),
        predictions=predictions,
        train_trials=train_idx,
        val_trials=val_idx,
        config=copy.deepcopy(settings),
        fixed_inputs=fixed,
    )
