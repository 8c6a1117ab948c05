"""Named run configurations (``neurosim train --preset NAME``), per paradigm namespace.

``PRESETS[name][namespace]`` is a :class:`~neurosim._config.RunConfig` dict; the paradigm's
namespace is the part of its id before ``/`` (``navigation`` for ``navigation/square``).
A preset is merged *under* a run's config file and command-line flags: they override it.
"""

from __future__ import annotations

import copy
from typing import Any

from ._config import ConfigError

_NAV_TASK: dict[str, Any] = {
    "n_place_cells": 512,
    "place_cell_width": 0.12,
    "place_cell_tuning": "dog",
    "n_steps": 20,
    "init_input": True,
    # the start code sums to 1 over 512 cells: scaled up so that it drives the network
    # (unscaled, 400 steps of the quick preset left the place outputs flat)
    "init_input_scale": 50.0,
    # place-cell targets only, as in Sorscher et al.: with the 12 head-direction outputs
    # too, 400 steps learned the heading (read off the velocity) and left the place
    # outputs flat
    "n_hd_cells": 0,
}


def _navigation(*, n_hidden: int, n_steps: int, lr: float, eval_every: int) -> dict[str, Any]:
    """A path-integration run: a vanilla ReLU RNN (tau = dt) as in Sorscher et al."""
    return {
        "paradigm_kwargs": dict(_NAV_TASK),
        "model": {
            "n_hidden": n_hidden,
            "activation": "relu",
            "tau": 20.0,
            "sigma_rec": 0.0,
            "w_rec_init": "orthogonal",
            "gain": 1.0,
            "seed": 0,
        },
        "train": {
            "n_steps": n_steps,
            "batch_size": 200,
            "lr": lr,
            "l2_recurrent": 1e-4,
            "loss": "soft_cross_entropy",
            "noise": False,
            "eval_every": eval_every,
            "eval_trials": 500,
            "seed": 0,
        },
        "simulate": {"n_trials": 500, "seed": 1, "noise": False},
    }


#: ``{preset: {namespace: RunConfig dict}}``.
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    # CPU, 2 cores, about 10-15 min
    "quick": {"navigation": _navigation(n_hidden=256, n_steps=6000, lr=1e-3, eval_every=250)},
    # GPU scale: Sorscher et al.'s 4096-unit RNN, Adam 1e-4, 1e5 steps
    "full": {"navigation": _navigation(n_hidden=4096, n_steps=100_000, lr=1e-4, eval_every=1000)},
}


def preset_config(name: str, paradigm: str) -> dict[str, Any]:
    """A deep copy of preset ``name`` for ``paradigm``'s namespace; ConfigError if none."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; accepted: {sorted(PRESETS)}")
    namespace = paradigm.split("/", 1)[0]
    by_namespace = PRESETS[name]
    if namespace not in by_namespace:
        raise ConfigError(
            f"preset {name!r} is not defined for paradigm {paradigm!r} (namespace "
            f"{namespace!r}); it is defined for: {sorted(by_namespace)}"
        )
    return copy.deepcopy(by_namespace[namespace])


def merge_preset(preset: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """``data`` over ``preset``: tables merge key by key, ``data`` winning."""
    out = copy.deepcopy(preset)
    for key, value in data.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}
        else:
            out[key] = copy.deepcopy(value)
    return out
