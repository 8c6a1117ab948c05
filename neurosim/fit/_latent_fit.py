"""Fit a :class:`~neurosim.models._latent.LatentRNN` to a recording, with held-out trials and
neurons (co-smoothing as in the Neural Latents Benchmark), early stopping and checkpoints."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
import xarray as xr
from tqdm.auto import tqdm

from .._checkpoint import find_checkpoint, read_checkpoint, write_checkpoint
from .._device import resolve_device
from .._recordings import recording_array, validate_recording
from .._train import TrainingDivergedError, quiet_mode, seeded_rng, seeded_torch
from ..models._latent import _MAX_LOG_RATE, LatentRNN, kl_to_standard_normal
from ._latent_eval import latent_metrics, latent_predictions, predict_trials, split_trials

_HISTORY = ("epoch", "train_loss", "train_nll", "kl", "kl_weight", "val_nll", "elapsed_s")
_RESUMABLE = ("max_epochs", "patience", "device", "quiet", "checkpoint_dir", "resume")


@dataclass(frozen=True)
class LatentSplit:
    """Which trials and neurons each part of a latent fit used (original indices, sorted).

    Attributes
    ----------
    train, val, test : numpy.ndarray
        Trial indices: the model learns from ``train`` (all neurons), stops early on the
        likelihood of ``val`` and reports its metrics on ``val`` (and on ``test`` if any).
    held_in, held_out : numpy.ndarray
        Neuron indices: the encoder reads ``held_in`` only; ``held_out`` neurons are
        predicted on ``val``/``test`` trials from the held-in ones (co-smoothing).
    """

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    held_in: np.ndarray
    held_out: np.ndarray

    def to_dict(self) -> dict[str, list[int]]:
        """The indices as JSON-serialisable lists."""
        return {k: [int(i) for i in getattr(self, k)] for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class LatentFit:
    """What :func:`fit_latent` returns.

    Attributes
    ----------
    model : LatentRNN
        The fitted model with the weights of the best validation epoch (eval mode).
    history : pandas.DataFrame
        One row per epoch: ``epoch, train_loss, train_nll, kl, kl_weight, val_nll, elapsed_s``
        (``val_nll``: mean negative log-likelihood per bin and neuron, all neurons, val trials).
    split : LatentSplit
    metrics : dict
        Counts: ``co_bps`` (held-out neurons, val trials), ``heldin_bps``, ``baseline_co_bps``
        (smoothed condition PSTH of the training trials), ``val_nll``; rates: ``co_r2``,
        ``co_pvar``, ``heldin_r2``, ``heldin_pvar``, ``baseline_co_r2``, ``baseline_co_pvar``.
        Plus ``psth_r2`` (with ``conditions``), ``decoding_r2`` (with behaviour), and the same
        with a ``test_`` prefix when there are test trials; ``best_epoch``, ``epochs``.
    predictions : xarray.Dataset
        Val (and test) trials: ``rate`` (expected counts per bin or rates), ``activity``,
        ``baseline``, ``state`` (generator states over ``latent``), ``factors``, ``h0``; ``split`` on
        ``trial`` and ``held_out`` on ``unit``.
    stopped_early : bool
        Whether ``patience`` epochs passed without a better validation likelihood.
    checkpoint : pathlib.Path or None
        The last checkpoint written.
    """

    model: LatentRNN
    history: pd.DataFrame
    split: LatentSplit
    metrics: dict[str, float]
    predictions: xr.Dataset
    stopped_early: bool
    checkpoint: Path | None


def _check(name: str, ok: bool, value: Any, accepted: str) -> None:
    if not ok:
        raise ValueError(f"{name} must be {accepted}; got {value!r}")


def _nll(z: torch.Tensor, data: torch.Tensor, scale: torch.Tensor | None) -> torch.Tensor:
    """Per-element negative log-likelihood: Poisson on log-rates ``z`` (with ``log k!``), or
    Gaussian with fixed per-neuron variance ``scale`` (up to its constant)."""
    if scale is None:
        z = z.clamp(max=_MAX_LOG_RATE)
        return torch.exp(z) - data * z + torch.lgamma(data + 1.0)
    return 0.5 * (data - z).pow(2) / scale


def fit_latent(
    recording: xr.Dataset,
    *,
    n_latent: int = 32,
    n_factors: int | None = None,
    held_out_neurons: float | Sequence[int] = 0.25,
    val_fraction: float = 0.2,
    test_fraction: float | Sequence[int] = 0.0,
    inputs: Literal["auto", "given", "none"] = "auto",
    activation: str = "tanh",
    tau: float | None = None,
    encoder_hidden: int = 64,
    kl_weight: float = 0.1,
    kl_warmup: int = 20,
    l2_recurrent: float = 1e-4,
    lr: float = 1e-2,
    batch_size: int = 32,
    max_epochs: int = 200,
    patience: int = 20,
    grad_clip: float = 5.0,
    seed: int = 0,
    device: str = "auto",
    quiet: bool = False,
    checkpoint_dir: str | Path | None = None,
    resume: bool = True,
    conditions: str | Sequence[Any] | None = None,
    behaviour: str | np.ndarray | bool | None = None,
    baseline_sigma_ms: float = 40.0,
) -> LatentFit:
    """Fit a latent RNN (inferred initial state, generator RNN, Poisson/Gaussian readout).

    Trials are split into train / validation (/ test) and neurons into held-in / held-out,
    both seeded. The encoder reads only held-in neurons; the readout predicts every neuron.
    The model learns from every neuron of the training trials and never sees validation or
    test trials; co-smoothing scores the held-out neurons of validation trials, predicted from
    their held-in neurons (Neural Latents Benchmark). Training maximises the ELBO with
    ``kl_weight`` (ramped up linearly over ``kl_warmup`` epochs) on the KL of ``h0``, plus
    ``l2_recurrent·‖W_rec‖²``, with Adam; it stops after ``patience`` epochs without a better
    validation likelihood (all neurons) and keeps the best weights.

    Parameters
    ----------
    recording : xarray.Dataset
        A recording (:func:`neurosim.load_recording`); ``kind="counts"`` gets a Poisson
        readout (bits/spike), ``kind="rates"`` a Gaussian one (R² and pVar).
    n_latent, n_factors, activation, encoder_hidden
        Model sizes (see :class:`LatentRNN`).
    held_out_neurons : float or sequence of int, default 0.25
        Fraction of neurons held out (chosen with ``seed``) or their indices.
    val_fraction : float, default 0.2
        Fraction of the non-test trials used for validation.
    test_fraction : float or sequence of int, default 0
        Fraction of trials (or their indices) set aside and only scored at the end.
    inputs : {"auto", "given", "none"}
        Drive the generator by the recording's ``input`` ("auto": when it has one).
    tau : float, optional
        Generator time constant in ms (default ``5 · dt``).
    kl_weight, kl_warmup, l2_recurrent, lr, batch_size, max_epochs, patience, grad_clip
        Training settings (``kl_weight = 1`` is the full ELBO).
    seed : int
        Seeds the split, the initial weights, batches and posterior samples.
    device, quiet
        ``"auto"``/``"cpu"``/``"cuda"``; no progress bar when ``quiet``.
    checkpoint_dir, resume
        Write ``last`` (every epoch) and ``best/`` checkpoints there; continue from them when
        ``resume`` (``max_epochs`` and ``patience`` may change, nothing else).
    conditions : str or sequence, optional
        Trial coordinate (or one label per trial) grouping trials for PSTHs (``psth_r2``
        and the baseline; without it the baseline is the overall PSTH).
    behaviour : str, array, bool or None
        Variable to decode from the latent factors (ridge, trained on train trials, R² on
        val): a recording variable name, an array ``[B, T(, K)]``, ``False`` for none, or
        ``None`` for the recording's ``behaviour`` when it has one.
    baseline_sigma_ms : float, default 40
        Smoothing of the PSTH baseline.

    Returns
    -------
    LatentFit

    Examples
    --------
    >>> import numpy as np
    >>> from neurosim._recordings import make_recording
    >>> counts = np.random.default_rng(0).poisson(1.0, size=(20, 10, 6))
    >>> fit = fit_latent(make_recording(counts, dt=20.0), n_latent=4, encoder_hidden=8,
    ...                  max_epochs=2, quiet=True, device="cpu")
    >>> sorted(fit.metrics)[:3], len(fit.history)
    (['baseline_co_bps', 'best_epoch', 'co_bps'], 2)
    """
    ds = validate_recording(recording)
    kind, dt = ds.attrs["kind"], float(ds.attrs["dt"])
    act = recording_array(ds).astype(np.float32)
    b, t, n = act.shape
    _check("inputs", inputs in ("auto", "given", "none"), inputs, "'auto', 'given' or 'none'")
    if inputs == "given" and "input" not in ds:
        raise ValueError("inputs='given' but the recording has no 'input' variable")
    use_inputs = inputs != "none" and "input" in ds
    inp = recording_array(ds, "input").astype(np.float32) if use_inputs else np.zeros((b, t, 0))
    for name, v in (("kl_weight", kl_weight), ("l2_recurrent", l2_recurrent)):
        _check(name, isinstance(v, int | float) and v >= 0, v, "a number >= 0")
    for name, v in (("lr", lr), ("grad_clip", grad_clip)):
        _check(name, isinstance(v, int | float) and v > 0, v, "a number > 0")
    for name, v in (("batch_size", batch_size), ("max_epochs", max_epochs), ("patience", patience)):
        _check(name, isinstance(v, int) and v >= 1, v, "an integer >= 1")
    _check("kl_warmup", isinstance(kl_warmup, int) and kl_warmup >= 0, kl_warmup, "an integer >= 0")
    split = LatentSplit(
        *split_trials(b, val_fraction, test_fraction, seed),
        *_split_neurons(n, held_out_neurons, seed),
    )
    tau = 5.0 * dt if tau is None else tau
    settings = {
        "n_latent": n_latent, "n_factors": n_factors, "inputs": use_inputs,
        "activation": activation, "tau": tau, "encoder_hidden": encoder_hidden,
        "kl_weight": kl_weight, "kl_warmup": kl_warmup, "l2_recurrent": l2_recurrent, "lr": lr,
        "batch_size": batch_size, "grad_clip": grad_clip, "seed": seed,
    }  # fmt: skip
    likelihood = "poisson" if kind == "counts" else "gaussian"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LatentRNN(
            n, n_latent, inp.shape[2], n_factors=n_factors, activation=activation, tau=tau,
            dt=dt, likelihood=likelihood, encoder_hidden=encoder_hidden,
            held_in=split.held_in.tolist(),
        )  # fmt: skip
    dev = resolve_device(device)
    train_act = act[split.train]
    scale = None
    with torch.no_grad():
        if likelihood == "poisson":
            mean = train_act.mean(axis=(0, 1))
            model.readout_offset().copy_(torch.from_numpy(np.log(mean + 1e-3)))
        else:
            mean, sd = train_act.mean(axis=(0, 1)), train_act.std(axis=(0, 1))
            sd = np.where(sd > 0, sd, 1.0).astype(np.float32)
            model.readout_offset().copy_(torch.from_numpy(mean))
            model.readout_weight().mul_(torch.from_numpy(sd)[:, None])
            scale = torch.from_numpy(sd**2).to(dev)
        enc = model.encoder_input(torch.from_numpy(train_act)).flatten(0, 1)[
            :, : len(split.held_in)
        ]
        sd_in = enc.std(dim=0)
        model.encoder_centre.copy_(enc.mean(dim=0))
        model.encoder_scale.copy_(torch.where(sd_in > 0, sd_in, torch.ones_like(sd_in)))
    model.to(dev)
    x_all, u_all = torch.from_numpy(act).to(dev), torch.from_numpy(inp.astype(np.float32)).to(dev)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    meta = {"model": model.config(), "fit": settings, "split": split.to_dict()}

    ckpt = Path(checkpoint_dir) if checkpoint_dir is not None else None
    rows: list[dict[str, float]] = []
    start, last_ckpt = 0, None
    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    if resume and ckpt is not None and (found := find_checkpoint(ckpt)) is not None:
        saved_meta = json.loads((found / "meta.json").read_text())
        if {k: saved_meta.get(k) for k in ("fit", "split")} != json.loads(
            json.dumps({k: meta[k] for k in ("fit", "split")})
        ):
            raise ValueError(
                f"checkpoint {found} belongs to a different fit (settings or split differ); "
                "use another checkpoint_dir or resume=False"
            )
        saved = read_checkpoint(found, model=model, optimizer=optimizer)
        start, rows, last_ckpt = saved["step"], saved["history"], found
        if (best := find_checkpoint(ckpt / "best")) is not None:
            clone = LatentRNN(**{k: v for k, v in model.config().items() if k != "class"})
            read_checkpoint(best, model=clone.to(dev))
            best_state = {k: v.detach().clone() for k, v in clone.state_dict().items()}

    def best_so_far() -> tuple[int, float]:
        if not rows:
            return 0, float("inf")
        i = int(np.argmin([r["val_nll"] for r in rows]))
        return int(rows[i]["epoch"]), float(rows[i]["val_nll"])

    best_epoch, best_val = best_so_far()
    stopped_early = bool(rows) and rows[-1]["epoch"] - best_epoch >= patience
    w_rec = model.generator.w_rec
    t0 = time.perf_counter() - (rows[-1]["elapsed_s"] if rows else 0.0)
    bar = tqdm(total=max_epochs, initial=start, desc="fit_latent", disable=quiet_mode(quiet),
               leave=False)  # fmt: skip
    try:
        for epoch in range(start + 1, max_epochs + 1):
            if stopped_early:
                break
            model.train()
            klw = kl_weight * (min(1.0, epoch / kl_warmup) if kl_warmup else 1.0)
            order = seeded_rng(seed, 0, epoch).permutation(split.train)
            sums = np.zeros(3)
            for i in range(0, len(order), batch_size):
                idx = torch.from_numpy(order[i : i + batch_size]).to(dev)
                x, u = x_all[idx], u_all[idx]
                mean, logvar = model.infer_initial_state(x, u if use_inputs else None)
                eps = torch.randn(mean.shape, generator=seeded_torch(seed, 1, epoch, i))
                h0 = mean + torch.exp(0.5 * logvar) * eps.to(dev)
                _, states = model(u, state=h0, generator=seeded_torch(seed, 2, epoch, i))
                nll = _nll(model.log_rates(states), x, scale).mean()
                kl = kl_to_standard_normal(mean, logvar).mean() / (t * n)
                loss = nll + klw * kl + l2_recurrent * w_rec.pow(2).sum()
                if not torch.isfinite(loss):
                    model.load_state_dict(best_state)
                    raise TrainingDivergedError(
                        f"fit_latent diverged at epoch {epoch} (loss {loss.item()}); the model "
                        "holds the best weights so far. Try a lower lr or grad_clip."
                    )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
                optimizer.step()
                sums += np.array([loss.item(), nll.item(), kl.item()]) * len(idx)
            sums /= len(order)
            val = predict_trials(model, x_all, u_all, split.val, use_inputs, batch_size)
            val_nll = float(_nll(val["log_rates"], x_all[split.val], scale).mean())
            loss_mean, nll_mean, kl_mean = sums.tolist()
            row = {"epoch": epoch, "train_loss": loss_mean, "train_nll": nll_mean,
                   "kl": kl_mean, "kl_weight": klw, "val_nll": val_nll,
                   "elapsed_s": time.perf_counter() - t0}  # fmt: skip
            rows.append(row)
            if val_nll < best_val:
                best_epoch, best_val = epoch, val_nll
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                if ckpt is not None:  # best first: a crash between the two re-runs this epoch
                    write_checkpoint(ckpt / "best", model=model, optimizer=None, step=epoch,
                                     history=[], meta=meta)  # fmt: skip
            stopped_early = epoch - best_epoch >= patience
            if ckpt is not None:
                last_ckpt = write_checkpoint(
                    ckpt, model=model, optimizer=optimizer, step=epoch, history=rows, meta=meta
                )
            bar.update(1)
            bar.set_postfix(loss=f"{row['train_loss']:.4f}", val=f"{val_nll:.4f}")
    finally:
        bar.close()
    model.load_state_dict(best_state)
    model.eval()
    history = pd.DataFrame(rows, columns=list(_HISTORY))
    pred = predict_trials(model, x_all, u_all, np.arange(b), use_inputs, batch_size)
    metrics = latent_metrics(ds, pred, split, conditions, behaviour, baseline_sigma_ms)
    metrics.update(best_epoch=best_epoch, epochs=int(rows[-1]["epoch"]) if rows else 0)
    predictions = latent_predictions(ds, model, pred, split, metrics, baseline_sigma_ms, conditions)
    return LatentFit(model, history, split, metrics, predictions, stopped_early, last_ckpt)


def _split_neurons(n: int, held_out: float | Sequence[int], seed: int) -> tuple[np.ndarray, ...]:
    """``(held_in, held_out)`` neuron indices from a fraction (seeded) or explicit indices."""
    if isinstance(held_out, int | float) and not isinstance(held_out, bool):
        _check("held_out_neurons", 0 <= held_out < 1, held_out, "a fraction in [0, 1)")
        k = max(1, int(round(held_out * n))) if held_out > 0 else 0
        out = np.sort(seeded_rng(seed, 11).permutation(n)[:k])
    else:
        out = np.asarray(list(held_out))
        ok = out.dtype.kind in "iu" and out.ndim == 1 and np.unique(out).size == out.size
        ok = ok and (out.size == 0 or (out.min() >= 0 and out.max() < n))
        _check("held_out_neurons", ok, held_out, f"distinct neuron indices in 0..{n - 1}")
        out = np.sort(out.astype(np.int64))
    held_in = np.setdiff1d(np.arange(n), out)
    if held_in.size == 0:
        raise ValueError(f"held_out_neurons={held_out!r} leaves no held-in neuron (of {n})")
    return held_in, out
