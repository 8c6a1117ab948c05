"""Module specs and inter-module connectivity of :class:`~neurosim.models.ModularRNN`.

A connectivity spec is resolved into one *entry* per ``(target, source)`` block of
the recurrent matrix: ``"dense"``, ``"none"``, a density in [0, 1] (that fraction of
the block's entries, drawn with a seed) or an explicit boolean mask of the block's
shape. :func:`build_mask` turns the entries into the full ``[N, N]`` mask and
:func:`connectivity_config` into a JSON-safe form that resolves to the same mask.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch

Entry = str | float | np.ndarray
_KINDS = ("dense", "none")
_RESERVED = ("total",)


def _positive(owner: str, field: str, value: Any) -> float:
    ok = isinstance(value, int | float | np.number) and not isinstance(value, bool)
    if not (ok and math.isfinite(value) and value > 0):
        raise ValueError(f"{owner} {field} must be a positive finite number, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class ModuleSpec:
    """One module of a :class:`~neurosim.models.ModularRNN`.

    Parameters
    ----------
    name : str
        Label of the module's units (``unit_coords()["module"]``); non-empty, without
        ``"."`` or ``"->"``, and not ``"total"``.
    size : int
        Number of units.
    tau : float, default 100.0
        Time constant in ms.
    activation : str, dict, nn.Module or callable, default "relu"
        Anything :func:`neurosim.models.resolve_activation` accepts: a fixed name
        (``relu, tanh, softplus, sigmoid, retanh, identity``), ``"adaptive"`` (one
        learned ``(n, s)`` for the module), ``"adaptive_per_neuron"`` (one per unit) or
        a dict such as ``{"name": "adaptive", "n": 5.0, "per_neuron": True}``.
    sigma_rec : float, default 0.05
        Recurrent noise amplitude of the module's units.
    gain : float, default 0.5
        Scale of the within-module recurrent initialisation.

    Examples
    --------
    >>> ModuleSpec("pfc", 32, tau=200.0).to_dict()["tau"]
    200.0
    """

    name: str
    size: int
    tau: float = 100.0
    activation: Any = "relu"
    sigma_rec: float = 0.05
    gain: float = 0.5

    def __post_init__(self) -> None:
        name = self.name
        if not isinstance(name, str) or not name or "." in name or "->" in name:
            raise ValueError(
                f"ModuleSpec name must be a non-empty string without '.' or '->', got {name!r}"
            )
        if name in _RESERVED:
            raise ValueError(f"ModuleSpec name {name!r} is reserved (parameter_counts' total row)")
        size = self.size
        if isinstance(size, bool) or not isinstance(size, int | np.integer) or size < 1:
            raise ValueError(f"module {name!r}: size must be a positive integer, got {size!r}")
        object.__setattr__(self, "size", int(size))
        object.__setattr__(self, "tau", _positive(f"module {name!r}:", "tau", self.tau))
        object.__setattr__(self, "gain", _positive(f"module {name!r}:", "gain", self.gain))
        s = self.sigma_rec
        ok = isinstance(s, int | float | np.number) and not isinstance(s, bool)
        if not (ok and math.isfinite(s) and s >= 0):
            raise ValueError(f"module {name!r}: sigma_rec must be a number >= 0, got {s!r}")
        object.__setattr__(self, "sigma_rec", float(s))

    @classmethod
    def coerce(cls, spec: Any, index: int) -> ModuleSpec:
        """A :class:`ModuleSpec` from itself or a mapping of its fields."""
        if isinstance(spec, cls):
            return spec
        if isinstance(spec, Mapping):
            names = [f.name for f in fields(cls)]
            if unknown := sorted(set(spec) - set(names)):
                raise ValueError(
                    f"modules[{index}] has unknown field(s) {unknown}; accepted: {names}"
                )
            if missing := [k for k in ("name", "size") if k not in spec]:
                raise ValueError(f"modules[{index}] needs field(s) {missing}; got {sorted(spec)}")
            return cls(**dict(spec))
        raise TypeError(
            f"modules[{index}] must be a ModuleSpec or a dict of its fields, "
            f"got {type(spec).__name__}"
        )

    def to_dict(self, activation: Any = None) -> dict[str, Any]:
        """Plain fields; ``activation`` replaces the spec's (e.g. by its JSON-safe config)."""
        act = self.activation if activation is None else activation
        if callable(act) and not isinstance(act, str):
            act = type(act).__name__
        return {
            "name": self.name,
            "size": self.size,
            "tau": self.tau,
            "activation": act,
            "sigma_rec": self.sigma_rec,
            "gain": self.gain,
        }


# -- entries -------------------------------------------------------------------------------
def _accepted(shape: tuple[int, int]) -> str:
    return (
        f'"dense", "none", a density in [0, 1], a boolean mask of shape {shape} or '
        '{"mask": <base64>, "shape": [rows, cols]}'
    )


def _entry(value: Any, where: str, shape: tuple[int, int]) -> Entry:
    """One block's entry, validated against the block ``shape`` (target, source)."""
    if isinstance(value, str):
        if value not in _KINDS:
            raise ValueError(f"{where} must be {_accepted(shape)}; got {value!r}")
        return value
    if isinstance(value, bool | np.bool_):
        return "dense" if value else "none"
    if isinstance(value, int | float | np.number):
        if not (math.isfinite(value) and 0 <= value <= 1):
            raise ValueError(f"{where} must be {_accepted(shape)}; got density {value!r}")
        return float(value)
    if isinstance(value, Mapping):
        if set(value) != {"mask", "shape"}:
            raise ValueError(f"{where} must be {_accepted(shape)}; got keys {sorted(value)}")
        rows, cols = (int(v) for v in value["shape"])
        bits = np.frombuffer(base64.b64decode(value["mask"]), dtype=np.uint8)
        value = np.unpackbits(bits, count=rows * cols).reshape(rows, cols).astype(bool)
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray | list | tuple):
        arr = np.asarray(value)
        if arr.shape != shape:
            raise ValueError(
                f"{where}: a mask must have the block's shape {shape} (target size, source "
                f"size), got {arr.shape}"
            )
        if arr.dtype != bool and not np.isin(arr, (0, 1)).all():
            raise ValueError(f"{where}: a mask must hold booleans or 0/1, got dtype {arr.dtype}")
        return arr.astype(bool)
    raise TypeError(f"{where} must be {_accepted(shape)}; got a {type(value).__name__}")


def _entry_config(entry: Entry) -> str | float | dict[str, Any]:
    if not isinstance(entry, np.ndarray):
        return entry
    if entry.all():
        return "dense"
    if not entry.any():
        return "none"
    packed = base64.b64encode(np.packbits(entry.ravel()).tobytes()).decode("ascii")
    return {"mask": packed, "shape": list(entry.shape)}


# -- whole specs ---------------------------------------------------------------------------
def _pair_key(key: Any, names: Sequence[str]) -> tuple[str, str]:
    if isinstance(key, str) and key.count("->") == 1:
        src, tgt = (part.strip() for part in key.split("->"))
    elif isinstance(key, tuple) and len(key) == 2:
        src, tgt = key
    else:
        raise ValueError(
            f"connectivity key {key!r} must be 'source->target', a (source, target) tuple or "
            "'default'"
        )
    for who in (src, tgt):
        if who not in names:
            raise ValueError(
                f"connectivity key {key!r} names unknown module {who!r}; modules are {list(names)}"
            )
    return src, tgt


def resolve_connectivity(
    spec: Any, names: Sequence[str], sizes: Sequence[int]
) -> dict[tuple[int, int], Entry]:
    """One entry per ``(target, source)`` module pair from a connectivity spec.

    Accepted specs: ``"dense"`` (all blocks), ``"none"`` (within-module blocks only);
    a dict ``{"source->target": entry}`` (or ``(source, target)`` keys; within-module
    blocks not listed are dense, pairs of different modules not listed take the
    ``"default"`` key's entry, ``"none"`` without it); a K×K nested list / array of
    entries indexed ``[target][source]``; or a full ``[N, N]`` boolean mask.
    """
    k, n = len(names), int(sum(sizes))
    idx = {name: i for i, name in enumerate(names)}
    pairs = [(t, s) for t in range(k) for s in range(k)]

    def shape(t: int, s: int) -> tuple[int, int]:
        return (sizes[t], sizes[s])

    def where(t: int, s: int) -> str:
        return f"connectivity[{names[s]!r}->{names[t]!r}]"

    if isinstance(spec, str):
        if spec not in _KINDS:
            raise ValueError(
                f"connectivity must be 'dense', 'none', a dict, a KxK block spec or an NxN mask; "
                f"got {spec!r}"
            )
        return {(t, s): "dense" if spec == "dense" or t == s else "none" for t, s in pairs}
    if isinstance(spec, Mapping):
        default = _entry(spec.get("default", "none"), "connectivity['default']", (0, 0))
        if isinstance(default, np.ndarray):
            raise ValueError("connectivity['default'] cannot be a mask (blocks differ in shape)")
        out: dict[tuple[int, int], Entry] = {}
        for key, value in spec.items():
            if key == "default":
                continue
            src, tgt = _pair_key(key, names)
            t, s = idx[tgt], idx[src]
            if (t, s) in out:
                raise ValueError(f"connectivity lists the pair {src}->{tgt} twice ({key!r})")
            out[(t, s)] = _entry(value, where(t, s), shape(t, s))
        return {(t, s): out.get((t, s), "dense" if t == s else default) for t, s in pairs}
    if isinstance(spec, torch.Tensor):
        spec = spec.detach().cpu().numpy()
    if isinstance(spec, list | tuple) and len(spec) == k:
        rows = [r for r in spec if isinstance(r, list | tuple | np.ndarray) and len(r) == k]
        bool_matrix = k == n and all(isinstance(v, bool | np.bool_) for r in rows for v in r)
        if len(rows) == k and not bool_matrix:
            return {(t, s): _entry(rows[t][s], where(t, s), shape(t, s)) for t, s in pairs}
    if isinstance(spec, np.ndarray | list | tuple):
        arr = np.asarray(spec)
        if arr.shape == (k, k) and arr.dtype != bool and k != n:
            return {(t, s): _entry(arr[t, s].item(), where(t, s), shape(t, s)) for t, s in pairs}
        if arr.shape == (n, n):
            full = _entry(arr, "connectivity", (n, n))
            edges = np.concatenate([[0], np.cumsum(sizes)])
            return {
                (t, s): full[edges[t] : edges[t + 1], edges[s] : edges[s + 1]] for t, s in pairs
            }
        raise ValueError(
            f"connectivity as an array must be a KxK block spec {(k, k)} or an NxN mask "
            f"{(n, n)}; got shape {arr.shape}"
        )
    raise TypeError(
        "connectivity must be 'dense', 'none', a dict, a KxK block spec or an NxN mask; "
        f"got a {type(spec).__name__}"
    )


def build_mask(
    entries: Mapping[tuple[int, int], Entry], sizes: Sequence[int], seed: int
) -> np.ndarray:
    """The ``[N, N]`` boolean mask (rows: targets, columns: sources) of resolved entries.

    A density ``p`` keeps exactly ``round(p · rows · cols)`` entries of its block, drawn
    from ``numpy.random.default_rng([seed, target, source])``.
    """
    n = int(sum(sizes))
    edges = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    mask = np.zeros((n, n), dtype=bool)
    for (t, s), entry in entries.items():
        block = mask[edges[t] : edges[t + 1], edges[s] : edges[s + 1]]
        if isinstance(entry, np.ndarray):
            block[:] = entry
        elif entry == "dense":
            block[:] = True
        elif isinstance(entry, float):
            count = int(round(entry * block.size))
            keep = np.random.default_rng([seed, t, s]).permutation(block.size)[:count]
            flat = np.zeros(block.size, dtype=bool)
            flat[keep] = True
            block[:] = flat.reshape(block.shape)
    return mask


def connectivity_config(
    spec: Any, entries: Mapping[tuple[int, int], Entry], names: Sequence[str]
) -> str | dict[str, Any]:
    """A JSON-safe spec that resolves to ``entries`` again (strings kept as they are)."""
    if isinstance(spec, str):
        return spec
    return {f"{names[s]}->{names[t]}": _entry_config(e) for (t, s), e in sorted(entries.items())}


def module_list(modules: Any) -> list[ModuleSpec]:
    """Validated module specs (unique names, at least one)."""
    if isinstance(modules, str | Mapping) or not isinstance(modules, Sequence) or not modules:
        raise ValueError(
            "modules must be a non-empty list of ModuleSpec or dicts with name, size, ...; "
            f"got {modules!r}"
        )
    specs = [ModuleSpec.coerce(m, i) for i, m in enumerate(modules)]
    names = [m.name for m in specs]
    if dupes := sorted({x for x in names if names.count(x) > 1}):
        raise ValueError(f"module names must be unique; repeated: {dupes}")
    return specs


def module_selection(value: Any, field: str, names: Sequence[str]) -> list[str] | None:
    """``None`` for "all", else the listed names (validated)."""
    if isinstance(value, str) and value == "all":
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, Sequence) or not value:
        raise ValueError(
            f"{field} must be 'all' or a non-empty list of module names; got {value!r}"
        )
    chosen = list(value)
    if unknown := [v for v in chosen if v not in names]:
        raise ValueError(f"{field} names unknown module(s) {unknown}; modules are {list(names)}")
    return [m for m in names if m in chosen]
