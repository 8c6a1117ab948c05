"""Training of any neurosim model on any open-loop paradigm."""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from paradigms import Paradigm, TrialBatch

from ._checkpoint import find_checkpoint, read_checkpoint, write_checkpoint
from ._config import ConfigError, TrainConfig, from_dict
from ._device import resolve_device
from .models import RecurrentModel


class TrainingDivergedError(RuntimeError):
    """The loss or the gradients became NaN or infinite."""


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes
    ----------
    model : RecurrentModel
        The trained model (the same object that was passed in).
    history : pandas.DataFrame
        One row per step: ``step, loss, performance`` (NaN between evaluations), ``elapsed_s``.
    performance : float
        The last evaluated performance.
    steps : int
        Gradient steps taken in total (including resumed ones).
    stopped_early : bool
        Whether ``target_performance`` was reached before ``n_steps``.
    checkpoint : pathlib.Path or None
        The last checkpoint written.
    """

    model: RecurrentModel
    history: pd.DataFrame
    performance: float
    steps: int
    stopped_early: bool
    checkpoint: Path | None


def quiet_mode(quiet: bool = False) -> bool:
    """Progress bars are off when asked, and always on CI (the ``CI`` variable is set)."""
    return quiet or os.environ.get("CI", "").lower() in ("1", "true", "yes")


def seeded_rng(seed: int, *key: int) -> np.random.Generator:
    """A numpy generator for ``(seed, *key)``: independent streams per purpose and step."""
    return np.random.default_rng([seed, *key])


def seeded_torch(seed: int, *key: int) -> torch.Generator:
    """A CPU torch generator for ``(seed, *key)``."""
    state = np.random.SeedSequence([seed, *key]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 31 ^ int(state[1]))


def masked_loss(
    outputs: torch.Tensor,
    batch_targets: torch.Tensor,
    mask: torch.Tensor,
    kind: str,
    groups: Sequence[int] | None = None,
) -> torch.Tensor:
    """Mask-weighted mean loss: cross-entropy on class ids or on distributions, or MSE.

    Parameters
    ----------
    outputs : torch.Tensor
        ``[B, T, O]`` model outputs (logits for the cross-entropies).
    batch_targets : torch.Tensor
        ``[B, T]`` int64 class ids or ``[B, T, O]`` floats.
    mask : torch.Tensor
        ``[B, T]`` non-negative weights.
    kind : {"cross_entropy", "soft_cross_entropy", "mse"}
        ``soft_cross_entropy``: ``−Σ p log softmax(y)`` per group of outputs, summed.
    groups : sequence of int, optional
        Sizes of the output groups for ``soft_cross_entropy`` (default: one group).

    Examples
    --------
    >>> import torch
    >>> p = torch.tensor([[[0.25, 0.75, 1.0]]])
    >>> y = torch.log(p)  # logits equal to the log target in each group
    >>> loss = masked_loss(y, p, torch.ones(1, 1), "soft_cross_entropy", groups=[2, 1])
    >>> round(float(loss), 4)  # the entropy of (0.25, 0.75) plus 0
    0.5623
    """
    if kind == "cross_entropy":
        per_step = torch.nn.functional.cross_entropy(
            outputs.flatten(0, 1), batch_targets.flatten(), reduction="none"
        ).view_as(mask)
    elif kind == "soft_cross_entropy":
        sizes = list(groups) if groups else [outputs.shape[-1]]
        if sum(sizes) != outputs.shape[-1]:
            raise ValueError(f"output groups {sizes} do not add up to {outputs.shape[-1]} outputs")
        per_step = sum(
            -(t * torch.log_softmax(y, -1)).sum(-1)
            for y, t in zip(outputs.split(sizes, -1), batch_targets.split(sizes, -1), strict=True)
        )
    else:
        per_step = ((outputs - batch_targets) ** 2).mean(-1)
    return (per_step * mask).sum() / mask.sum().clamp_min(1e-12)


def _tensors(batch: TrialBatch, device: torch.device) -> tuple[torch.Tensor, ...]:
    return (
        torch.from_numpy(batch.inputs).to(device),
        torch.from_numpy(batch.targets).to(device),
        torch.from_numpy(batch.mask).to(device),
    )


def evaluate(
    model: RecurrentModel,
    paradigm: Paradigm,
    batch: TrialBatch,
    *,
    noise: bool = True,
    generator: torch.Generator | None = None,
) -> float:
    """Mean of ``paradigm.performance`` over ``batch``, without gradients."""
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        with torch.no_grad():
            outputs, _ = model(
                torch.from_numpy(batch.inputs).to(device), noise=noise, generator=generator
            )
        return float(np.mean(paradigm.performance(outputs.cpu().numpy(), batch)))
    finally:
        model.train(was_training)


def _resolve_config(
    config: TrainConfig | dict[str, Any] | None, overrides: dict[str, Any]
) -> TrainConfig:
    """Merge ``overrides`` into ``config`` first, then validate the whole once."""
    if config is None:
        base: dict[str, Any] = {}
    elif isinstance(config, dict):
        base = dict(config)
    elif isinstance(config, TrainConfig):
        base = dataclasses.asdict(config)
    else:
        raise TypeError(
            f"config must be a TrainConfig, a dict or None, got {type(config).__name__}"
        )
    return from_dict(TrainConfig, {**base, **overrides}, "train")


def train(
    model: RecurrentModel,
    paradigm: Paradigm,
    config: TrainConfig | dict[str, Any] | None = None,
    **overrides: Any,
) -> TrainResult:
    """Train ``model`` on ``paradigm`` with Adam on the masked loss.

    Batches, noise and the held-out evaluation set are seeded by ``config.seed``
    and the step number, so a resumed run sees exactly the batches an
    uninterrupted one would have.

    Parameters
    ----------
    model : RecurrentModel
        Any model that follows the contract (``forward(inputs) -> (outputs, states)``).
    paradigm : Paradigm
        An open-loop paradigm (``batch``, ``performance``, ``target_kind``).
    config : TrainConfig or dict, optional
        See :class:`neurosim.TrainConfig`; keyword ``overrides`` replace its fields.

    Returns
    -------
    TrainResult

    Raises
    ------
    TrainingDivergedError
        When the loss or gradients become NaN/inf; the model is restored to the
        last good (evaluated) weights and the last good checkpoint is kept.

    Examples
    --------
    >>> import torch, paradigms, neurosim
    >>> task = paradigms.make("neurogym/PerceptualDecisionMaking-v0")
    >>> _ = torch.manual_seed(0)
    >>> net = neurosim.models.RateRNN(task.n_inputs, 32, task.n_outputs, dt=task.dt, tau=200.0)
    >>> result = neurosim.train(net, task, n_steps=5, eval_every=5, eval_trials=50, quiet=True)
    >>> len(result.history)
    5
    """
    cfg = _resolve_config(config, overrides)
    if model.n_inputs != paradigm.n_inputs or model.n_outputs != paradigm.n_outputs:
        raise ValueError(
            f"model sizes (inputs {model.n_inputs}, outputs {model.n_outputs}) do not match "
            f"paradigm {paradigm.id!r} (inputs {paradigm.n_inputs}, outputs {paradigm.n_outputs})"
        )
    if not math.isclose(model.dt, paradigm.dt):
        raise ValueError(
            f"model dt {model.dt} ms differs from paradigm {paradigm.id!r} dt {paradigm.dt} ms"
        )
    kind = cfg.loss
    if kind == "auto":
        kind = getattr(paradigm, "loss", None) or (
            "cross_entropy" if paradigm.target_kind == "class" else "mse"
        )
    if (kind == "cross_entropy") != (paradigm.target_kind == "class") and kind != "mse":
        raise ConfigError(
            f"train.loss = {kind!r} does not suit {paradigm.id!r}, whose targets are "
            f"{paradigm.target_kind}; use 'cross_entropy' for class targets, "
            "'soft_cross_entropy' or 'mse' for continuous ones"
        )
    if kind == "mse" and paradigm.target_kind == "class":
        raise ConfigError(
            f"train.loss = 'mse' needs continuous targets; {paradigm.id!r} has classes"
        )
    groups = getattr(paradigm, "output_groups", None)
    w_rec = getattr(model, str(getattr(model, "recurrent_weights", "")), None)
    if cfg.l2_recurrent and not isinstance(w_rec, torch.Tensor):
        raise ConfigError(
            f"train.l2_recurrent needs a model that names its recurrent weights "
            f"(recurrent_weights); {type(model).__name__} does not"
        )
    device = resolve_device(cfg.device)
    model.to(device)
    optimizer = torch.optim.Adam(
        [p for p in model.parameters() if p.requires_grad], lr=cfg.lr, weight_decay=cfg.weight_decay
    )
    ckpt_dir = Path(cfg.checkpoint_dir) if cfg.checkpoint_dir else None
    ckpt_every = cfg.checkpoint_every or cfg.eval_every
    meta = {
        "model": model.config(),
        "paradigm": paradigm.describe(),
        "train": dataclasses.asdict(cfg),
    }

    rows: list[dict[str, float]] = []
    start, last_ckpt = 0, None
    if cfg.resume and ckpt_dir is not None and (found := find_checkpoint(ckpt_dir)) is not None:
        saved = read_checkpoint(found, model=model, optimizer=optimizer)
        start, rows, last_ckpt = saved["step"], saved["history"], found

    eval_batch = paradigm.batch(cfg.eval_trials, seeded_rng(cfg.seed, 1))
    good_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    performance = rows[-1]["performance"] if rows else float("nan")
    t0 = time.perf_counter() - (rows[-1]["elapsed_s"] if rows else 0.0)
    stopped_early = False
    model.train()
    bar = tqdm(
        total=cfg.n_steps,
        initial=start,
        desc=paradigm.id,
        disable=quiet_mode(cfg.quiet),
        leave=False,
    )
    try:
        for step in range(start + 1, cfg.n_steps + 1):
            batch = paradigm.batch(cfg.batch_size, seeded_rng(cfg.seed, 0, step))
            inputs, targets, mask = _tensors(batch, device)
            outputs, _ = model(inputs, noise=cfg.noise, generator=seeded_torch(cfg.seed, 2, step))
            loss = masked_loss(outputs, targets, mask, kind, groups)
            if cfg.l2_recurrent:
                loss = loss + cfg.l2_recurrent * w_rec.pow(2).sum()
            optimizer.zero_grad(set_to_none=True)
            if not torch.isfinite(loss):
                _diverged(
                    model, good_state, f"the loss became {loss.item()} at step {step}", last_ckpt
                )
            loss.backward()
            if cfg.grad_clip is not None:
                norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                if not torch.isfinite(norm):
                    _diverged(
                        model,
                        good_state,
                        f"the gradient norm became {norm.item()} at step {step}",
                        last_ckpt,
                    )
            optimizer.step()
            row = {"step": step, "loss": loss.item(), "performance": float("nan")}
            if step % cfg.eval_every == 0 or step == cfg.n_steps:
                performance = evaluate(
                    model,
                    paradigm,
                    eval_batch,
                    noise=cfg.noise,
                    generator=seeded_torch(cfg.seed, 3),
                )
                row["performance"] = performance
                good_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                stopped_early = (
                    cfg.target_performance is not None and performance >= cfg.target_performance
                )
            row["elapsed_s"] = time.perf_counter() - t0
            rows.append(row)
            bar.update(1)
            bar.set_postfix(loss=f"{row['loss']:.3f}", perf=f"{performance:.3f}")
            done = stopped_early or step == cfg.n_steps
            if ckpt_dir is not None and (step % ckpt_every == 0 or done):
                last_ckpt = write_checkpoint(
                    ckpt_dir, model=model, optimizer=optimizer, step=step, history=rows, meta=meta
                )
            if stopped_early:
                break
    finally:
        bar.close()
    history = pd.DataFrame(rows, columns=["step", "loss", "performance", "elapsed_s"])
    return TrainResult(
        model=model,
        history=history,
        performance=performance,
        steps=int(history["step"].iloc[-1]) if len(history) else start,
        stopped_early=stopped_early,
        checkpoint=last_ckpt,
    )


def _diverged(
    model: RecurrentModel, good_state: dict[str, torch.Tensor], what: str, last: Path | None
) -> None:
    model.load_state_dict(good_state)
    where = f"the last good checkpoint is kept at {last}" if last else "no checkpoint was written"
    raise TrainingDivergedError(
        f"training diverged: {what}. The model was restored to its last evaluated weights; {where}. "
        "Try a lower learning rate (train.lr) or gradient clipping (train.grad_clip)."
    )
