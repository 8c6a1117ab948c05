"""Plumbing for user-supplied ``step(h, x) -> h_next`` maps, shared by the dynamics analyses.

Argument checks whose messages name the field, the value and what is accepted; arrays to
checked tensors (states and inputs, for a run over time or at fixed inputs); casting a
module's step to a deep copy at the requested ``dtype`` and ``device``; the checked first
call that turns a failing step into a clear error; progress bars.
"""

from __future__ import annotations

import copy
import math
import types
from collections.abc import Callable, Collection
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from neurosim._train import quiet_mode

Step = Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor]

FLOAT32_64 = (torch.float32, torch.float64)


class StepTypeError(TypeError, ValueError):
    """``step`` is not callable: a ``TypeError``, and a ``ValueError`` for older callers."""


# --------------------------------------------------------------------------- checks


def check(name: str, value: Any, ok: bool, accepted: str) -> None:
    """Raise ``ValueError("<name> must be <accepted>; got <value>")`` unless ``ok``."""
    if not ok:
        raise ValueError(f"{name} must be {accepted}; got {value!r}")


def int_arg(name: str, value: Any, low: int, high: int | None = None) -> int:
    """An integer (not a bool) in ``low..high`` (no upper bound when ``high`` is None)."""
    ok = isinstance(value, int | np.integer) and not isinstance(value, bool)
    ok = ok and value >= low and (high is None or value <= high)
    if high is not None:
        accepted = f"an integer in {low}..{high}"
    else:
        accepted = "a positive integer" if low == 1 else f"an integer >= {low}"
    check(name, value, ok, accepted)
    return int(value)


def positive(name: str, value: Any, *, zero: bool = False) -> float:
    """A finite real number ``> 0`` (``>= 0`` with ``zero``), as a float."""
    real = isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)
    ok = real and math.isfinite(value) and (value >= 0 if zero else value > 0)
    check(name, value, ok, "a finite number >= 0" if zero else "a finite number > 0")
    return float(value)


def check_dtype(dtype: Any, allowed: Collection[torch.dtype] | None = None) -> torch.dtype:
    """A real floating torch dtype (one of ``allowed`` when given)."""
    if allowed is None:
        ok = isinstance(dtype, torch.dtype) and dtype.is_floating_point
        accepted = "a real floating torch dtype (torch.float64, torch.float32, ...)"
    else:
        ok = isinstance(dtype, torch.dtype) and dtype in allowed
        accepted = " or ".join(str(d) for d in allowed)
    check("dtype", dtype, ok, accepted)
    return dtype


def dtype_name(dtype: torch.dtype) -> str:
    """``"float64"`` for ``torch.float64``."""
    return str(dtype).removeprefix("torch.")


def check_finite(name: str, t: torch.Tensor, finite: str = "be finite") -> None:
    """``ValueError("<name> must <finite>; got NaN or inf entries")`` unless all are finite."""
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} must {finite}; got NaN or inf entries")


def as_tensor(
    name: str,
    value: Any,
    dtype: torch.dtype,
    device: torch.device,
    *,
    finite: str | None = "be finite",
) -> torch.Tensor:
    """``value`` (array-like or tensor of real numbers) as a detached tensor.

    Finite entries are required unless ``finite`` is None (it words the requirement).
    """
    if torch.is_tensor(value):
        t = value.detach()
    else:
        try:
            arr = np.asarray(value)
            arr = arr if arr.dtype.kind == "c" else arr.astype(np.float64, copy=False)
        except (TypeError, ValueError):
            raise ValueError(
                f"{name} must be an array of real numbers; got {type(value).__name__}"
            ) from None
        t = torch.as_tensor(arr)
    if t.is_complex():
        raise ValueError(f"{name} must be an array of real numbers; got {t.dtype} entries")
    t = t.to(device=device, dtype=dtype)
    if finite is not None:
        check_finite(name, t, finite)
    return t


# ------------------------------------------------------------------ states and inputs


def prepare_run(
    h0: Any, inputs: Any, n_needed: int, dtype: torch.dtype, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``h0`` as ``[B, N]`` and ``inputs`` as ``[B, n_needed, I]`` (or None), checked.

    For a run of ``n_needed = warmup + n_steps`` steps from ``h0`` (``[B, N]`` or ``[N]``)
    driven by ``inputs`` (``[B, T, I]`` or ``[T, I]``); a batch of 1 broadcasts.
    """
    h = as_tensor("h0", h0, dtype, device, finite=None)
    if h.ndim not in (1, 2) or h.shape[-1] == 0 or h.numel() == 0:
        raise ValueError(
            f"h0 must be a real [B, N] (B trajectories) or [N] array; got shape {tuple(h.shape)}"
        )
    h = h.reshape(-1, h.shape[-1])
    check_finite("h0", h)
    if inputs is None:
        return h.contiguous(), None
    x = as_tensor("inputs", inputs, dtype, device, finite=None)
    if x.ndim not in (2, 3):
        raise ValueError(
            f"inputs must be None or a real [B, T, I] or [T, I] array; got shape {tuple(x.shape)}"
        )
    if x.ndim == 2:
        x = x.unsqueeze(0)
    if x.shape[1] < n_needed:
        raise ValueError(
            f"inputs has T = {x.shape[1]} steps; it needs T >= warmup + n_steps = {n_needed}"
        )
    b = max(h.shape[0], x.shape[0])
    if h.shape[0] not in (1, b) or x.shape[0] not in (1, b):
        raise ValueError(
            f"inputs has {x.shape[0]} trajectories but h0 has {h.shape[0]}: they must match "
            "(or one of them be 1, or inputs be [T, I], to broadcast)"
        )
    x = x[:, :n_needed]
    check_finite("inputs", x)
    return h.expand(b, -1).contiguous(), x.expand(b, -1, -1)


def constant_inputs(
    inputs: Any, b: int, dtype: torch.dtype, device: torch.device, *, finite: str = "be finite"
) -> torch.Tensor | None:
    """One constant input per state, ``[b, I]``, from None, one input ``[I]`` or ``[b, I]``."""
    if inputs is None:
        return None
    x = as_tensor("inputs", inputs, dtype, device, finite=finite)
    if x.ndim == 1:
        return x.expand(b, -1).contiguous()
    if x.ndim == 2 and x.shape[0] == b:
        return x.contiguous()
    raise ValueError(
        f"inputs must be None, one input [I] or one per initial state [{b}, I]; "
        f"got shape {tuple(x.shape)}"
    )


# ------------------------------------------------------------------------ the step


def prepare_step(step: Any, dtype: torch.dtype, device: torch.device) -> tuple[Step, str]:
    """The step to run and a description of it.

    A bound method of a ``torch.nn.Module`` (``net.step``), or a module itself (its
    ``forward`` is the step), runs on a deep copy of the module cast to ``dtype``, moved
    to ``device``, in eval mode and with gradients off, so the caller's model is
    untouched and a float32 model gives float64 results.
    """
    if not callable(step):
        raise StepTypeError(
            f"step must be a callable step(h, x) -> h_next; got {type(step).__name__}"
        )

    def cast(module: torch.nn.Module) -> torch.nn.Module:
        return copy.deepcopy(module).to(device=device, dtype=dtype).eval().requires_grad_(False)

    owner = getattr(step, "__self__", None)
    if isinstance(step, torch.nn.Module):
        return cast(step), type(step).__name__
    if isinstance(owner, torch.nn.Module):
        name, module = step.__name__, cast(owner)
        if isinstance(step, types.MethodType):
            bound = types.MethodType(step.__func__, module)
        else:
            bound = getattr(module, name)
        return bound, f"{type(owner).__name__}.{name}"
    return step, getattr(step, "__qualname__", type(step).__name__)


def check_output(out: Any, h: torch.Tensor, *, same_dtype: bool = False) -> torch.Tensor:
    """``out`` if it is a tensor shaped like ``h`` (and of its dtype with ``same_dtype``)."""
    ok = torch.is_tensor(out) and out.shape == h.shape and (not same_dtype or out.dtype == h.dtype)
    if not ok:
        like = f"shape {tuple(h.shape)}" + (f" and dtype {h.dtype}" if same_dtype else "")
        got = (
            f"{type(out).__name__} {tuple(out.shape)} {out.dtype}"
            if torch.is_tensor(out)
            else type(out).__name__
        )
        raise ValueError(
            f"step must return the next states, a tensor shaped like h ({like}); got {got}"
        )
    return out


def call_step(step: Step, h: torch.Tensor, x: torch.Tensor | None) -> torch.Tensor:
    """``step(h, x)``, checked to be shaped like ``h``."""
    return check_output(step(h, x), h)


def first_call(step: Step, h: torch.Tensor, x: torch.Tensor | None, *, strict: bool) -> None:
    """Evaluate ``step`` once; a failure is re-raised (same type) with what it was called on.

    The result must be shaped like ``h``; with ``strict`` also of its dtype and finite.
    """
    try:
        with torch.no_grad():
            out = step(h, x)
    except (AttributeError, RuntimeError, TypeError, ValueError) as exc:
        hint = (
            " (inputs=None calls step(h, None): pass inputs, e.g. zeros of the input size, "
            "for a model that needs one)"
            if x is None
            else ""
        )
        message = (
            f"step(h, x) failed on h of shape {tuple(h.shape)}, dtype {h.dtype}, device "
            f"{h.device}{hint}: {exc}. A plain function must accept states (and inputs) in "
            "the requested dtype and device; a module's bound method is cast for you."
        )
        try:
            wrapped = type(exc)(message)
        except Exception:  # noqa: BLE001 - a subclass that takes other arguments: as it is
            wrapped = None
        if wrapped is None:
            raise
        raise wrapped from exc
    check_output(out, h, same_dtype=strict)
    if strict and not bool(torch.isfinite(out).all()):
        raise ValueError("step returned non-finite states on the first step from h0")


def module_dt(step: Any) -> float | None:
    """The positive ``dt`` of the module that ``step`` is (or is a bound method of), if any."""
    owner = getattr(step, "__self__", step)
    dt = getattr(owner, "dt", None) if isinstance(owner, torch.nn.Module) else None
    return float(dt) if isinstance(dt, int | float) and dt > 0 else None


# ------------------------------------------------------------------------ progress


def progress(total: int, quiet: bool, desc: str) -> tuple[Any, int]:
    """A transient progress bar (off when ``quiet`` or on CI) and an update interval."""
    bar = tqdm(total=total, desc=desc, disable=quiet_mode(quiet), leave=False)
    return bar, max(1, total // 100)
