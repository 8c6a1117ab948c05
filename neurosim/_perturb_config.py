"""The ``neurosim perturb`` configuration: which model, which perturbations, how strong."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._config import ConfigError, _check_type, read_toml
from ._perturbation import Perturbation


@dataclass(frozen=True)
class PerturbConfig:
    """A robustness experiment on a trained model (the TOML file of ``neurosim perturb``).

    Example TOML::

        checkpoint = "out/demo/checkpoint"   # from `make demo` or `neurosim train`
        out = "out/perturb"
        n_trials = 200
        seeds = [0, 1, 2]
        strengths = [0.0, 0.25, 0.5, 0.75, 1.0]

        [[perturbation]]
        target = "state"
        operation = "lesion"

        [[perturbation]]
        target = "inputs"
        operation = "noise"
        label = "input noise"

    Relative paths are taken from the working directory.
    """

    checkpoint: str
    perturbations: tuple[Perturbation, ...]
    strengths: tuple[float, ...]
    out: str = "out/perturb"
    n_trials: int = 200
    seeds: tuple[int, ...] = (0, 1, 2)
    noise: bool = True
    batch_size: int | None = None
    device: str = "auto"


_SCALARS = {"checkpoint": str, "out": str, "n_trials": int, "noise": bool, "device": str}


def load_perturb_config(source: str | Path | dict[str, Any]) -> PerturbConfig:
    """Load and validate a :class:`PerturbConfig`; errors name the field and what is accepted.

    Examples
    --------
    >>> cfg = load_perturb_config({"checkpoint": "ckpt", "strengths": [0, 0.5],
    ...     "perturbation": [{"target": "state", "operation": "lesion"}]})
    >>> cfg.perturbations[0].name, cfg.strengths, cfg.seeds
    ('lesion state 1', (0.0, 0.5), (0, 1, 2))
    """
    data = dict(source) if isinstance(source, dict) else read_toml(source)
    accepted = sorted([*_SCALARS, "perturbation", "strengths", "seeds", "batch_size"])
    if unknown := sorted(set(data) - set(accepted)):
        raise ConfigError(f"unknown top-level field(s) {unknown}; accepted: {accepted}")
    for key in ("checkpoint", "strengths", "perturbation"):
        if key not in data:
            raise ConfigError(f"field {key!r} is required; accepted fields: {accepted}")
    kw: dict[str, Any] = {
        k: _check_type("", k, data[k], t) for k, t in _SCALARS.items() if k in data
    }
    if kw.get("n_trials", 1) < 1:
        raise ConfigError(f"n_trials must be >= 1, got {kw['n_trials']}")
    for key, kind in (("strengths", float), ("seeds", int)):
        if key in data:
            values = data[key]
            if not isinstance(values, list) or not values:
                raise ConfigError(f"{key} must be a non-empty list, got {values!r}")
            kw[key] = tuple(_check_type("", f"{key}[{i}]", v, kind) for i, v in enumerate(values))
    if data.get("batch_size") is not None:
        kw["batch_size"] = _check_type("", "batch_size", data["batch_size"], int)
    tables = data["perturbation"]
    if not isinstance(tables, list) or not tables:
        raise ConfigError("perturbation must be one or more [[perturbation]] tables")
    specs = []
    for i, table in enumerate(tables):
        try:
            specs.append(Perturbation.from_dict(table))
        except (ValueError, TypeError) as err:
            raise ConfigError(f"[[perturbation]] #{i + 1}: {err}") from None
    for p in specs:
        for s in kw["strengths"]:
            try:
                dataclasses.replace(p, strength=s)
            except ValueError as err:
                raise ConfigError(f"strengths: {s!r} does not suit {p.name!r}: {err}") from None
    names = [p.name for p in specs]
    if len(set(names)) != len(names):
        raise ConfigError(f"perturbation names must be distinct (set label = ...), got {names}")
    return PerturbConfig(perturbations=tuple(specs), **kw)
