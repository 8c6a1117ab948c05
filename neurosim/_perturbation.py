"""The declarative perturbation spec: what to perturb, how, when and how strongly."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

TARGETS = ("units", "module", "state", "inputs", "weights")
OPERATIONS = ("lesion", "clamp", "scale", "noise", "kick")
_FRACTION_OPS = ("lesion", "clamp")


def _fail(field: str, value: Any, accepted: str) -> None:
    raise ValueError(f"Perturbation.{field} must be {accepted}, got {value!r}")


@dataclass(frozen=True)
class Perturbation:
    """One perturbation condition, applied inside :func:`neurosim.simulate`.

    Strength 0 always leaves the run unchanged; what it means otherwise depends on
    the operation:

    ============  ===============================================================
    ``lesion``    a fraction ``strength`` ∈ [0, 1] of the targeted elements is held
                  at 0 (the subset is nested: a larger strength lesions a superset)
    ``clamp``     as ``lesion`` but held at ``value``
    ``scale``     targeted elements multiplied by ``1 − strength`` (1 silences,
                  −1 doubles)
    ``noise``     additive Gaussian noise of SD ``strength`` every step (states,
                  inputs); for weights a static draw of SD ``strength`` × the RMS of
                  the targeted weights
    ``kick``      a displacement of norm ``strength`` along a random (seeded) unit
                  direction over the targeted elements, at the first step of the
                  window (not defined for weights)
    ============  ===============================================================

    Parameters
    ----------
    target : {"units", "module", "state", "inputs", "weights"}
        ``units``: the state units listed in ``units``; ``module``: every unit whose
        ``module`` label (``model.unit_coords()``) equals ``module``; ``state``: all
        units; ``inputs``: input channels (``units`` lists them; all by default);
        ``weights``: the entries of the parameter ``weights`` (default: the model's
        recurrent weights), restricted to the rows of ``units``/``module`` if given.
    operation : {"lesion", "clamp", "scale", "noise", "kick"}
    strength : float, default 1.0
    units : sequence of int, optional
    module : str, optional
    weights : str, optional
        Parameter name, e.g. ``"w_rec"`` or ``"w_in"``.
    window : (float, float), optional
        ``[start, stop)`` in ms on the trajectory's ``time`` axis (state ``k`` is at
        ``k·dt``); the whole trial when omitted.
    value : float, default 0.0
        The clamp value.
    seed : int, default 0
        Chooses lesioned subsets, noise and kick directions (with the run's seed).
    label : str, optional
        Name of the condition; made from the fields when omitted.

    Examples
    --------
    >>> from neurosim import Perturbation
    >>> p = Perturbation("module", "lesion", strength=0.5, module="rnn", window=(500, 1000))
    >>> p.name
    'lesion module rnn 0.5 @500-1000ms'
    >>> Perturbation.from_dict(p.to_dict()) == p
    True
    """

    target: str
    operation: str
    strength: float = 1.0
    units: tuple[int, ...] | None = None
    module: str | None = None
    weights: str | None = None
    window: tuple[float, float] | None = None
    value: float = 0.0
    seed: int = 0
    label: str | None = None

    def __post_init__(self) -> None:
        if self.target not in TARGETS:
            _fail("target", self.target, f"one of {TARGETS}")
        if self.operation not in OPERATIONS:
            _fail("operation", self.operation, f"one of {OPERATIONS}")
        s = self.strength
        if (
            isinstance(s, bool)
            or not isinstance(s, int | float | np.number)
            or not math.isfinite(s)
        ):
            _fail("strength", s, "a finite number")
        object.__setattr__(self, "strength", float(s))
        if self.operation in _FRACTION_OPS and not 0.0 <= s <= 1.0:
            _fail("strength", s, f"a fraction in [0, 1] for operation {self.operation!r}")
        if self.operation == "noise" and s < 0:
            _fail("strength", s, "a standard deviation >= 0 for operation 'noise'")
        if self.units is not None:
            units = tuple(self.units) if not isinstance(self.units, int | np.integer) else None
            if not units or not all(isinstance(u, int | np.integer) and u >= 0 for u in units):
                _fail("units", self.units, "a non-empty sequence of unit indices >= 0")
            if len(set(units)) != len(units):
                _fail("units", self.units, "indices without repeats")
            object.__setattr__(self, "units", tuple(int(u) for u in units))
        if self.target == "units" and self.units is None:
            _fail("units", None, "the unit indices to perturb when target is 'units'")
        if self.target == "module" and not (isinstance(self.module, str) and self.module):
            _fail("module", self.module, "a module name (see model.unit_coords()['module'])")
        if self.target == "weights" and self.operation == "kick":
            _fail("operation", "kick", "lesion, clamp, scale or noise for target 'weights'")
        if self.weights is not None and self.target != "weights":
            _fail("weights", self.weights, "None unless target is 'weights'")
        if self.window is not None:
            w = tuple(self.window)
            ok = len(w) == 2 and all(isinstance(v, int | float | np.number) for v in w)
            if not (ok and math.isfinite(w[0]) and 0 <= w[0] < w[1]):
                _fail("window", self.window, "(start, stop) in ms with 0 <= start < stop")
            object.__setattr__(self, "window", (float(w[0]), float(w[1])))
        if not (isinstance(self.value, int | float | np.number) and math.isfinite(self.value)):
            _fail("value", self.value, "a finite number")
        object.__setattr__(self, "value", float(self.value))
        if isinstance(self.seed, bool) or not (
            isinstance(self.seed, int | np.integer) and self.seed >= 0
        ):
            _fail("seed", self.seed, "an integer >= 0")
        object.__setattr__(self, "seed", int(self.seed))

    @property
    def name(self) -> str:
        """``label`` if given, else a readable summary of the fields."""
        if self.label:
            return self.label
        where = {"module": f" {self.module}", "weights": f" {self.weights or 'recurrent'}"}
        text = f"{self.operation} {self.target}{where.get(self.target, '')} {self.strength:g}"
        if self.window is not None:
            text += f" @{self.window[0]:g}-{self.window[1]:g}ms"
        return text

    @property
    def is_identity(self) -> bool:
        """True when the perturbation cannot change the run (strength 0)."""
        return self.strength == 0.0

    def to_dict(self) -> dict[str, Any]:
        """Plain fields (JSON-serialisable; ``None`` fields left out)."""
        out = {k: v for k, v in dataclasses.asdict(self).items() if v is not None}
        for key in ("units", "window"):
            if key in out:
                out[key] = list(out[key])
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Perturbation:
        """Build from a mapping (a TOML table), naming unknown fields in the error."""
        fields = [f.name for f in dataclasses.fields(cls)]
        if unknown := sorted(set(data) - set(fields)):
            raise ValueError(f"unknown Perturbation field(s) {unknown}; accepted: {fields}")
        if missing := [k for k in ("target", "operation") if k not in data]:
            raise ValueError(f"Perturbation needs field(s) {missing}; got {sorted(data)}")
        return cls(**dict(data))


Condition = Perturbation | None


def as_conditions(perturbation: Any) -> tuple[list[Condition], bool]:
    """``(conditions, batched)``: a list of specs (``None`` = unperturbed) and whether a
    ``condition`` dim is wanted (a list was given) rather than one spec."""
    if isinstance(perturbation, Perturbation):
        return [perturbation], False
    if isinstance(perturbation, Mapping):
        return [Perturbation.from_dict(perturbation)], False
    if isinstance(perturbation, Sequence) and not isinstance(perturbation, str):
        out: list[Condition] = []
        for i, p in enumerate(perturbation):
            if p is None or isinstance(p, Perturbation):
                out.append(p)
            elif isinstance(p, Mapping):
                out.append(Perturbation.from_dict(p))
            else:
                raise TypeError(
                    f"perturbation[{i}] must be a Perturbation, a mapping of its fields or None, "
                    f"got {type(p).__name__}"
                )
        if not out:
            raise ValueError("perturbation list is empty; give at least one condition")
        return out, True
    raise TypeError(
        "perturbation must be None, a Perturbation, a mapping of its fields or a list of them, "
        f"got {type(perturbation).__name__}"
    )


def condition_name(p: Condition) -> str:
    """The label of a condition (``"none"`` for the unperturbed one)."""
    return "none" if p is None else p.name
