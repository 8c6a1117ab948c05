"""Checkpoints: weights as safetensors, optimiser state via ``torch.load(weights_only=True)``.

A checkpoint is a folder ``<dir>/last`` holding ``model.safetensors``,
``state.pt`` (optimiser state, step, history) and ``meta.json`` (model,
paradigm and training configuration). It is written to a temporary folder
and swapped in, so a crash never leaves a half-written checkpoint.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from .models import RecurrentModel, build_model

_FILES = ("model.safetensors", "state.pt", "meta.json")


def write_checkpoint(
    directory: str | Path,
    *,
    model: RecurrentModel,
    optimizer: torch.optim.Optimizer | None,
    step: int,
    history: list[dict[str, float]],
    meta: dict[str, Any],
) -> Path:
    """Write ``<directory>/last`` atomically and return its path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / "last"
    tmp = directory / f".last.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        save_file(weights, str(tmp / "model.safetensors"))
        state = {
            "step": int(step),
            "history": {k: [r[k] for r in history] for k in (history[0] if history else {})},
        }
        if optimizer is not None:
            state["optimizer"] = optimizer.state_dict()
        torch.save(state, tmp / "state.pt")
        (tmp / "meta.json").write_text(
            json.dumps({**meta, "step": int(step)}, indent=2, default=str)
        )
        old = directory / f".last.old-{uuid.uuid4().hex[:8]}"
        if final.exists():
            os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def find_checkpoint(directory: str | Path) -> Path | None:
    """The complete checkpoint in ``directory`` (``last``, or one left mid-swap), or ``None``."""
    directory = Path(directory)
    candidates = [directory / "last", *sorted(directory.glob(".last.old-*"))]
    for c in candidates:
        if all((c / f).is_file() for f in _FILES):
            return c
    return None


def read_checkpoint(
    path: str | Path,
    *,
    model: RecurrentModel | None = None,
    optimizer: torch.optim.Optimizer | None = None,
) -> dict[str, Any]:
    """Load a checkpoint folder; fill ``model`` and ``optimizer`` in place when given.

    Returns a dict with ``step``, ``history`` (list of row dicts), ``meta`` and ``model``.
    """
    path = Path(path)
    if path.is_dir() and not (path / "meta.json").exists() and (found := find_checkpoint(path)):
        path = found
    missing = [f for f in _FILES if not (path / f).is_file()]
    if missing:
        raise FileNotFoundError(f"{path} is not a neurosim checkpoint: missing {missing}")
    meta = json.loads((path / "meta.json").read_text())
    if model is None:
        model = build_model(meta["model"])
    elif model.config() != meta["model"]:
        raise ValueError(
            f"checkpoint {path} holds a different model: saved {meta['model']}, given {model.config()}"
        )
    device = next(model.parameters()).device
    model.load_state_dict(load_file(str(path / "model.safetensors"), device=str(device)))
    state = torch.load(path / "state.pt", weights_only=True, map_location=device)
    if optimizer is not None and "optimizer" in state:
        optimizer.load_state_dict(state["optimizer"])
    cols = state.get("history", {})
    n = len(next(iter(cols.values()))) if cols else 0
    history = [{k: cols[k][i] for k in cols} for i in range(n)]
    return {"step": int(state["step"]), "history": history, "meta": meta, "model": model}


def load_checkpoint(path: str | Path) -> tuple[RecurrentModel, dict[str, Any]]:
    """Rebuild a trained model from a checkpoint folder.

    Parameters
    ----------
    path : str or Path
        The checkpoint directory given to training (or its ``last`` folder).

    Returns
    -------
    model, meta
        The model with its weights, and the metadata (model, paradigm and train configs).

    Examples
    --------
    >>> model, meta = load_checkpoint("out/demo/checkpoint")  # doctest: +SKIP
    >>> meta["paradigm"]["id"]  # doctest: +SKIP
    'neurogym/PerceptualDecisionMaking-v0'
    """
    saved = read_checkpoint(path)
    saved["model"].eval()
    return saved["model"], saved["meta"]
