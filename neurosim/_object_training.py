"""Training of object-centric autoencoders (the CAE and the contrastive CAE) on scene paradigms.

Like :func:`neurosim.train`, batches, contrastive draws and the held-out evaluation set are
seeded by ``config.seed`` and the step number, so a run resumed from its checkpoint sees the
batches an uninterrupted one would have. Object metrics (ARI) live in ``analyses``, which
``neurosim`` does not import: pass a ``scorer`` (e.g. built on
``analyses.compute_object_discovery``) to have them evaluated during training.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from paradigms import Paradigm

from ._checkpoint import find_checkpoint, read_checkpoint, write_checkpoint
from ._config import ConfigError, from_dict
from ._device import resolve_device
from ._train import TrainingDivergedError, quiet_mode, seeded_rng, seeded_torch
from .models._cae import (
    ComplexAutoEncoder,
    contrastive_cae_loss,
    object_features,
    reconstruction_loss,
)

Scorer = Callable[[np.ndarray, np.ndarray, np.ndarray], Mapping[str, float]]
"""``scorer(magnitude [B, C, H, W], phase [B, C, H, W], labels [B, H, W]) -> {name: value}``."""


@dataclass(frozen=True)
class ObjectTrainConfig:
    """Settings of :func:`train_object_model` (validated; unknown keys are errors).

    Attributes
    ----------
    n_steps, batch_size : int
        Gradient steps and scenes per step (default 2000, 32).
    lr : float
        Adam learning rate (default 2e-3), reached after a linear warm-up of
        ``warmup_steps`` steps (default 500; Löwe et al.: 1e-3 and 500).
    seed : int
        Seeds batches, contrastive draws and the evaluation set (the model's weights are
        seeded by the model).
    contrastive : bool
        Add the CtCAE contrastive phase loss (``contrastive_weight``, ``temperature``,
        ``phase_features``; defaults 1e-4, 0.05, ``"angle"`` as Stanić et al.).
    eval_every, eval_images : int
        Evaluate every ``eval_every`` steps (and at the end) on ``eval_images`` held-out
        scenes (default 500, 256).
    grad_clip : float, optional
        Clip the gradient norm.
    checkpoint_dir, checkpoint_every, resume
        Checkpoint folder (none by default), how often (default: every evaluation) and
        whether to resume from one found there (default True).
    device : str
        ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``...
    quiet : bool
        No progress bar (always quiet on CI).
    """

    n_steps: int = 2000
    batch_size: int = 32
    lr: float = 2e-3
    warmup_steps: int = 500
    seed: int = 0
    contrastive: bool = False
    contrastive_weight: float = 1e-4
    temperature: float = 0.05
    phase_features: Literal["angle", "phasor"] = "angle"
    eval_every: int = 500
    eval_images: int = 256
    grad_clip: float | None = None
    checkpoint_dir: str | None = None
    checkpoint_every: int | None = None
    resume: bool = True
    device: str = "auto"
    quiet: bool = False

    def __post_init__(self) -> None:
        for name in ("n_steps", "batch_size", "eval_every", "eval_images"):
            if getattr(self, name) < 1:
                raise ConfigError(f"object_train.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("warmup_steps", "seed"):
            if getattr(self, name) < 0:
                raise ConfigError(f"object_train.{name} must be >= 0, got {getattr(self, name)}")
        for name in ("lr", "temperature"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise ConfigError(f"object_train.{name} must be a positive number, got {v}")
        if not (math.isfinite(self.contrastive_weight) and self.contrastive_weight >= 0):
            raise ConfigError(
                f"object_train.contrastive_weight must be >= 0, got {self.contrastive_weight}"
            )
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ConfigError(f"object_train.grad_clip must be > 0 or None, got {self.grad_clip}")
        if self.checkpoint_every is not None and self.checkpoint_every < 1:
            raise ConfigError(
                f"object_train.checkpoint_every must be >= 1 or None, got {self.checkpoint_every}"
            )


@dataclass
class ObjectTrainResult:
    """What :func:`train_object_model` returns.

    Attributes
    ----------
    model : ComplexAutoEncoder
        The trained model (the object passed in).
    history : pandas.DataFrame
        One row per step: ``step, loss, mse, contrastive`` (the unweighted contrastive
        terms summed; NaN without), ``eval_mse`` and the scorer's metrics (NaN between
        evaluations), ``elapsed_s``.
    metrics : dict
        The last evaluation: ``eval_mse`` and the scorer's metrics.
    steps : int
        Gradient steps taken in total (including resumed ones).
    checkpoint : pathlib.Path or None
        The last checkpoint written.
    """

    model: ComplexAutoEncoder
    history: pd.DataFrame
    metrics: dict[str, float]
    steps: int
    checkpoint: Path | None


def scene_tensors(
    batch: Any, device: torch.device | str = "cpu"
) -> tuple[torch.Tensor, np.ndarray]:
    """Images ``[B·T, C, H, W]`` (a tensor on ``device``) and labels ``[B·T, H, W]`` of a
    scene batch (``covariates["images"]`` / ``["labels"]``; time folded into the batch).

    Examples
    --------
    >>> import numpy as np
    >>> from types import SimpleNamespace
    >>> b = SimpleNamespace(covariates={"images": np.zeros((2, 3, 1, 4, 4), np.float32),
    ...                                 "labels": np.zeros((2, 3, 4, 4), np.int64)})
    >>> x, lab = scene_tensors(b)
    >>> tuple(x.shape), lab.shape
    ((6, 1, 4, 4), (6, 4, 4))
    """
    cov = getattr(batch, "covariates", None) or {}
    if "images" not in cov or "labels" not in cov:
        raise ValueError(
            "the paradigm's batches need covariates 'images' [B, T, C, H, W] and 'labels' "
            f"[B, T, H, W] (a scenes/* paradigm); got covariates {sorted(cov)}"
        )
    images, labels = np.asarray(cov["images"]), np.asarray(cov["labels"])
    x = torch.from_numpy(images.reshape(-1, *images.shape[2:])).to(device)
    return x, labels.reshape(-1, *labels.shape[2:])


def _resolve(config: ObjectTrainConfig | dict[str, Any] | None, overrides: dict[str, Any]):
    if config is None:
        base: dict[str, Any] = {}
    elif isinstance(config, ObjectTrainConfig):
        base = dataclasses.asdict(config)
    elif isinstance(config, dict):
        base = dict(config)
    else:
        raise TypeError(
            f"config must be an ObjectTrainConfig, a dict or None, got {type(config).__name__}"
        )
    return from_dict(ObjectTrainConfig, {**base, **overrides}, "object_train")


@torch.no_grad()
def _evaluate(
    model: ComplexAutoEncoder, images: torch.Tensor, labels: np.ndarray, scorer: Scorer | None
) -> dict[str, float]:
    magnitude, phase = object_features(model, images)
    was = model.training
    model.eval()
    try:
        mse = float(reconstruction_loss(model(images), images))
    finally:
        model.train(was)
    out = {"eval_mse": mse}
    if scorer is not None:
        out.update({k: float(v) for k, v in scorer(magnitude, phase, labels).items()})
    return out


def train_object_model(
    model: ComplexAutoEncoder,
    paradigm: Paradigm,
    config: ObjectTrainConfig | dict[str, Any] | None = None,
    *,
    scorer: Scorer | None = None,
    **overrides: Any,
) -> ObjectTrainResult:
    """Train a complex autoencoder on a scene paradigm with Adam (CAE or contrastive CAE).

    Each step draws ``batch_size`` scenes (``paradigm.batch(n, seeded_rng(seed, 0, step))``),
    reconstructs their images and minimises the MSE (plus, with ``contrastive=True``, the
    weighted CtCAE contrastive phase loss on the output and last encoder layers). The
    learning rate rises linearly over ``warmup_steps``.

    Parameters
    ----------
    model : ComplexAutoEncoder
        Its ``image_shape`` must be the paradigm's.
    paradigm : Paradigm
        A scene paradigm (``image_shape``; batches with ``covariates["images"]`` and
        ``["labels"]``).
    config : ObjectTrainConfig or dict, optional
        Keyword ``overrides`` replace its fields.
    scorer : callable, optional
        ``scorer(magnitude, phase, labels) -> {name: value}`` on the held-out scenes' output
        layer (numpy ``[B, C, H, W]``, ``[B, C, H, W]``, ``[B, H, W]``) at every evaluation,
        e.g. ARI-FG and ARI-BG from ``analyses.compute_object_discovery``.

    Returns
    -------
    ObjectTrainResult

    Raises
    ------
    TrainingDivergedError
        When the loss or the gradient norm becomes NaN or infinite (the model is restored to
        its last evaluated weights).

    Examples
    --------
    >>> from paradigms._scenes import SceneParadigm
    >>> from neurosim.models._cae import ComplexAutoEncoder
    >>> from analyses._objects import compute_object_discovery
    >>> task = SceneParadigm("shapes", shapes=("square", "triangle"))  # as scenes/2shapes
    >>> cae = ComplexAutoEncoder(task.image_shape, channels=(8, 16), strides=(2, 2),
    ...                          linear_dim=16, seed=0)
    >>> def ari(m, phi, labels):
    ...     res = compute_object_discovery(m, phi, labels, magnitude_clip=0.1)
    ...     return {"ari_fg": res.attrs["ari_fg_mean"], "ari_bg": res.attrs["ari_bg_mean"]}
    >>> result = train_object_model(cae, task, n_steps=4, batch_size=8, eval_every=4,
    ...                             eval_images=8, quiet=True, scorer=ari)
    >>> sorted(result.metrics)
    ['ari_bg', 'ari_fg', 'eval_mse']
    """
    cfg = _resolve(config, overrides)
    shape = tuple(getattr(paradigm, "image_shape", ()))
    if tuple(model.image_shape) != shape:
        raise ValueError(
            f"model image_shape {tuple(model.image_shape)} does not match paradigm "
            f"{getattr(paradigm, 'id', paradigm)!r} image_shape {shape or None}"
        )
    device = resolve_device(cfg.device)
    model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=cfg.lr)
    ckpt_dir = Path(cfg.checkpoint_dir) if cfg.checkpoint_dir else None
    ckpt_every = cfg.checkpoint_every or cfg.eval_every
    meta = {
        "model": model.config(),
        "paradigm": paradigm.describe() if hasattr(paradigm, "describe") else str(paradigm),
        "object_train": dataclasses.asdict(cfg),
    }
    rows: list[dict[str, float]] = []
    start, last_ckpt = 0, None
    if cfg.resume and ckpt_dir is not None and (found := find_checkpoint(ckpt_dir)) is not None:
        saved = read_checkpoint(found, model=model, optimizer=optimizer)
        start, rows, last_ckpt = saved["step"], saved["history"], found

    eval_x, eval_labels = scene_tensors(
        paradigm.batch(cfg.eval_images, seeded_rng(cfg.seed, 1)), device
    )
    metrics: dict[str, float] = {}
    if rows:
        evaluated = [r for r in rows if math.isfinite(r.get("eval_mse", float("nan")))]
        skip = ("step", "loss", "mse", "contrastive", "elapsed_s")
        metrics = {k: v for k, v in (evaluated[-1] if evaluated else {}).items() if k not in skip}
    good_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    t0 = time.perf_counter() - (rows[-1]["elapsed_s"] if rows else 0.0)
    model.train()
    bar = tqdm(
        total=cfg.n_steps,
        initial=start,
        desc=getattr(paradigm, "id", "objects"),
        disable=quiet_mode(cfg.quiet),
        leave=False,
    )
    try:
        for step in range(start + 1, cfg.n_steps + 1):
            lr = cfg.lr * min(1.0, step / cfg.warmup_steps) if cfg.warmup_steps else cfg.lr
            for group in optimizer.param_groups:
                group["lr"] = lr
            x, _ = scene_tensors(
                paradigm.batch(cfg.batch_size, seeded_rng(cfg.seed, 0, step)), device
            )
            out = model(x)
            row: dict[str, float] = {"step": step}
            if cfg.contrastive:
                loss, parts = contrastive_cae_loss(
                    out,
                    x,
                    weight=cfg.contrastive_weight,
                    temperature=cfg.temperature,
                    features=cfg.phase_features,
                    generator=seeded_torch(cfg.seed, 2, step),
                )
                row["mse"] = parts["mse"]
                row["contrastive"] = sum(v for k, v in parts.items() if k.startswith("contrastive"))
            else:
                loss = reconstruction_loss(out, x)
                row["mse"], row["contrastive"] = float(loss.detach()), float("nan")
            optimizer.zero_grad(set_to_none=True)
            if not torch.isfinite(loss):
                _diverged(model, good_state, f"the loss became {loss.item()} at step {step}")
            loss.backward()
            if cfg.grad_clip is not None:
                norm = torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
                if not torch.isfinite(norm):
                    _diverged(model, good_state, f"the gradient norm became {norm} at step {step}")
            optimizer.step()
            row["loss"] = float(loss.detach())
            if step % cfg.eval_every == 0 or step == cfg.n_steps:
                metrics = _evaluate(model, eval_x, eval_labels, scorer)
                row.update(metrics)
                good_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            row["elapsed_s"] = time.perf_counter() - t0
            rows.append(row)
            bar.update(1)
            bar.set_postfix(
                loss=f"{row['loss']:.4f}", **{k: f"{v:.3f}" for k, v in metrics.items()}
            )
            if ckpt_dir is not None and (step % ckpt_every == 0 or step == cfg.n_steps):
                keys = list(dict.fromkeys(k for r in rows for k in r))
                uniform = [{k: r.get(k, float("nan")) for k in keys} for r in rows]
                last_ckpt = write_checkpoint(
                    ckpt_dir,
                    model=model,
                    optimizer=optimizer,
                    step=step,
                    history=uniform,
                    meta=meta,
                )
    finally:
        bar.close()
    first = ["step", "loss", "mse", "contrastive", "eval_mse"]
    cols = first + sorted({k for r in rows for k in r} - {*first, "elapsed_s"}) + ["elapsed_s"]
    history = pd.DataFrame(rows, columns=cols).astype(float).astype({"step": int})
    return ObjectTrainResult(
        model=model,
        history=history,
        metrics=metrics,
        steps=int(history["step"].iloc[-1]) if len(history) else start,
        checkpoint=last_ckpt,
    )


def _diverged(model: torch.nn.Module, good_state: dict[str, torch.Tensor], what: str) -> None:
    model.load_state_dict(good_state)
    raise TrainingDivergedError(
        f"training diverged: {what}. The model was restored to its last evaluated weights. "
        "Try a lower learning rate (object_train.lr) or gradient clipping (object_train.grad_clip)."
    )
