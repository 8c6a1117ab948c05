"""Cell functions for tests/neurosim/test_sweep.py (importable by Dask workers by name)."""

from __future__ import annotations

import os
import time

import numpy as np
import xarray as xr


def _log(log: str | None, line: str) -> None:
    if log:
        fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            os.write(fd, f"{line}\n".encode())
        finally:
            os.close(fd)


def square(x: int, offset: int = 0, delay: float = 0.0, log: str | None = None) -> dict:
    """``{"y": x**2 + offset}``; logs one line (``x``) per call when ``log`` is given."""
    _log(log, str(x))
    time.sleep(delay)
    return {"y": x**2 + offset}


def cube(x: int) -> dict:
    return {"y": x**3}


def mixed(seed: int, scale: float, kind: str) -> dict:
    """Scalars of every kind and an array."""
    return {
        "y": seed * scale,
        "n": seed + 1,
        "ok": seed > 0,
        "label": f"{kind}{seed}",
        "vec": np.arange(3) * scale + seed,
    }


def curve(seed: int, scale: float) -> xr.Dataset:
    """A Dataset with its own dim and coordinate."""
    t = np.array([0.0, 0.5, 1.0, 1.5])
    return xr.Dataset(
        {"value": ("t", seed + scale * t), "peak": seed + scale * t[-1]},
        coords={"t": t},
        attrs={"units": "a.u."},
    )


def fail_on(x: int, bad: int = 2, log: str | None = None, **labels: str) -> dict:
    """``{"y": float(x)}``, or ValueError when ``x == bad``; other parameters are ignored."""
    _log(log, str(x))
    if x == bad:
        raise ValueError(f"boom at {x}")
    return {"y": float(x)}


def torch_threads(x: int) -> dict:
    import torch

    return {"threads": torch.get_num_threads(), "pid": os.getpid()}


def slow_square(x: int, delay: float, log: str) -> dict:
    """Logs the call, sleeps, returns ``x**2`` and the worker's torch thread count."""
    import torch

    _log(log, str(x))
    time.sleep(delay)
    return {"y": x**2, "threads": torch.get_num_threads()}


def ragged(x: int) -> dict:
    """Arrays whose length depends on ``x``; a string only for odd ``x``."""
    out: dict = {"v": np.arange(x, dtype=float)}
    if x % 2:
        out["tag"] = f"odd{x}"
    return out
