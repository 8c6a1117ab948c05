"""``sweep``: map a function over a parameter grid on Dask, writing each cell as it finishes."""

from __future__ import annotations

import contextlib
import functools
import importlib
import logging
import os
import re
import secrets
import signal
import threading
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from ._config import ConfigError, read_toml
from ._sweep_store import (
    RESERVED,
    Grid,
    SweepStore,
    SweepStoreError,
    assemble,
    describe_function,
    fixed_json,
    load_sweep,
)
from ._train import quiet_mode

if TYPE_CHECKING:
    from distributed import Client

__all__ = [
    "CellFailure",
    "SweepError",
    "SweepStoreError",
    "load_sweep",
    "load_sweep_config",
    "sweep",
]

GridSpec = Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]]


@dataclass(frozen=True)
class CellFailure:
    """A cell whose function raised: its index, its parameters and the traceback text."""

    index: int
    params: dict[str, Any]
    traceback: str

    @property
    def label(self) -> str:
        return (
            f"cell {self.index} (" + ", ".join(f"{k}={v!r}" for k, v in self.params.items()) + ")"
        )

    def describe(self) -> str:
        last = self.traceback.strip().splitlines()[-1] if self.traceback.strip() else "?"
        return f"{self.label}: {last}"


class SweepError(RuntimeError):
    """Some cells of a sweep raised; every other cell finished (and was written).

    Attributes
    ----------
    failures : list of CellFailure
        Index, parameters and traceback text of each failed cell.
    results : xarray.Dataset
        The sweep's results, with the failed cells NaN and ``complete`` False there.
    """

    def __init__(self, message: str, failures: list[CellFailure], results: xr.Dataset) -> None:
        super().__init__(message)
        self.failures = failures
        self.results = results


def to_dataset(result: Any, reserved: frozenset[str] = frozenset(RESERVED)) -> xr.Dataset:
    """A cell's result as a Dataset: dict values become variables, arrays get ``<name>_dim_<k>``.

    Examples
    --------
    >>> to_dataset({"accuracy": 0.9, "curve": np.zeros(3)})["curve"].dims
    ('curve_dim_0',)
    """
    if isinstance(result, xr.Dataset):
        ds = result.load()
    elif isinstance(result, Mapping):
        data_vars: dict[str, Any] = {}
        for name, value in result.items():
            if not isinstance(name, str):
                raise TypeError(f"result keys must be strings, got {name!r}")
            if isinstance(value, xr.DataArray):
                data_vars[name] = value.load()
                continue
            if hasattr(value, "detach"):  # a torch tensor
                value = value.detach().cpu().numpy()
            arr = np.asarray(value)
            if arr.dtype.kind not in "biufcU":
                raise TypeError(
                    f"result {name!r} = {value!r} is not a number, string, bool or numeric array"
                )
            data_vars[name] = ([f"{name}_dim_{k}" for k in range(arr.ndim)], arr)
        ds = xr.Dataset(data_vars)
    else:
        raise TypeError(
            "a sweep function must return a dict of scalars / numpy arrays or an "
            f"xarray.Dataset, got {type(result).__name__}"
        )
    clashes = sorted((set(ds.variables) | set(ds.dims)) & reserved)
    if clashes:
        raise ValueError(
            f"the result names {clashes}, which are grid parameters or the dims 'cell' / "
            "'complete' of the sweep's result; rename them"
        )
    return ds


def _run_cell(
    fn: Callable[..., Any], reserved: frozenset[str], params: dict[str, Any]
) -> tuple[bool, Any]:
    """On a worker: one torch thread, call ``fn``, return (True, Dataset) or (False, traceback)."""
    import torch

    if torch.get_num_threads() != 1:
        torch.set_num_threads(1)
    try:
        return True, to_dataset(fn(**params), reserved)
    except Exception:
        return False, traceback.format_exc()


@contextlib.contextmanager
def _dask_client(client: Client | str | None, n_workers: int | None) -> Iterator[Client]:
    from distributed import Client, LocalCluster

    if isinstance(client, Client):
        yield client
    elif isinstance(client, str):
        with Client(client) as own:
            yield own
    else:
        n = n_workers or min(2, os.cpu_count() or 1)
        with _workers_ignore_ctrl_c():
            cluster = LocalCluster(
                n_workers=n,
                threads_per_worker=1,
                processes=True,
                dashboard_address=":0",
                silence_logs=logging.ERROR,
            )
        with cluster, Client(cluster) as own:
            yield own


@contextlib.contextmanager
def _workers_ignore_ctrl_c() -> Iterator[None]:
    """Start worker processes with SIGINT ignored (inherited), so Ctrl-C reaches only this
    process, which stops the sweep and closes the cluster, instead of every worker dumping
    a traceback."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def sweep(
    fn: Callable[..., Any],
    grid: GridSpec,
    client: Client | str | None = None,
    store: str | os.PathLike[str] | None = None,
    *,
    quiet: bool = False,
    n_workers: int | None = None,
    overwrite: bool = False,
) -> xr.Dataset:
    """Run ``fn(**params)`` for every cell of ``grid`` on Dask and gather the results.

    Each cell is written to the zarr ``store`` as soon as it finishes (the calling
    process is the single writer: cell data first, its completion marker last), so an
    interrupted sweep loses nothing: run it again with the same store and only the
    unfinished cells are computed.

    Parameters
    ----------
    fn : callable
        Called as ``fn(**params)`` on a worker; returns a dict of scalars / numpy
        arrays (arrays get dims ``<name>_dim_<k>``) or an ``xarray.Dataset``. It must be
        importable or picklable (cloudpickle). Bind constant arguments with
        ``functools.partial`` (they are recorded in the store). To vary seeds, make
        ``seed`` a grid axis: each cell gets only its own parameters.
    grid : dict or list of dict
        ``{name: [values, ...]}``: the cartesian product of the axes, in the order given
        (e.g. seeds × strengths × model variants); or ``[{name: value, ...}, ...]``: an
        explicit list of cells (all with the same names). Values: int, float, str, bool.
    client : distributed.Client, str or None
        ``None`` starts a ``distributed.LocalCluster`` (worker processes, one thread
        each) and closes it at the end; a scheduler address ``"tcp://host:port"``
        connects to it; a ``Client`` (e.g. on a dask-jobqueue ``SLURMCluster``) is used
        as is and left open.
    store : str or path-like, optional
        A zarr directory (e.g. ``"out/sweep.zarr"``) recording the function's
        qualified name, its fixed arguments, the grid and every finished cell. An
        existing store resumes: finished cells are read back, never recomputed. ``None``:
        results only in memory.
    quiet : bool
        No progress bar (also off when the ``CI`` variable is set).
    n_workers : int, optional
        Workers of the LocalCluster started when ``client`` is None (default
        ``min(2, cpu count)``).
    overwrite : bool
        Discard an existing store written by another function or grid instead of
        raising.

    Returns
    -------
    xarray.Dataset
        One dim per grid axis (``cell`` for an explicit list, with each parameter as a
        coordinate on it) plus each result variable's own dims; the bool coordinate
        ``complete``; attrs ``function``, ``fixed``, ``grid`` (JSON) and ``store``.

    Raises
    ------
    SweepError
        At the end, when some cells raised: it lists their parameters and tracebacks,
        holds the partial ``results``, and every other cell is written. Failed cells are
        not marked complete, so re-running the sweep retries just them.
    SweepStoreError
        When ``store`` was written by a different function or grid (nothing changes on
        disk), is not a sweep store, or is being written by another live process.

    Examples
    --------
    >>> from distributed import Client
    >>> def power(x, p):
    ...     return {"y": x**p}
    >>> with Client(processes=False, n_workers=1, dashboard_address=":0") as client:
    ...     ds = sweep(power, {"x": [1, 2, 3], "p": [1, 2]}, client=client, quiet=True)
    >>> ds["y"].sel(p=2).values
    array([1, 4, 9])
    >>> ds = sweep(power, {"x": [1, 2], "p": [3]}, store="out/sweep.zarr")  # doctest: +SKIP
    """
    spec = Grid.from_user(grid)
    name, fixed = describe_function(fn)
    if clash := sorted(set(fixed) & set(spec.axes)):
        raise ValueError(f"{clash} are both grid axes and fixed arguments of fn")
    if n_workers is not None and (client is not None or n_workers < 1):
        raise ValueError(
            "n_workers (a positive integer) sizes the LocalCluster that sweep starts when "
            f"client is None; got n_workers={n_workers!r} with client={client!r}"
        )
    from distributed import Client

    if client is not None and not isinstance(client, str | Client):
        raise TypeError(
            f"client must be None, a scheduler address or a distributed.Client, got {client!r}"
        )
    st = (
        SweepStore.open_for(store, spec, name, fixed_json(fixed), overwrite)
        if store is not None
        else None
    )
    results: dict[int, xr.Dataset] = {}
    failures: list[CellFailure] = []
    with st.writing() if st is not None else contextlib.nullcontext():
        done = st.repair() if st is not None else np.zeros(len(spec), dtype=bool)
        todo = [int(i) for i in np.flatnonzero(~done)]
        if todo:
            with _dask_client(client, n_workers) as cl:
                task = functools.partial(_run_cell, fn, frozenset(RESERVED) | set(spec.axes))
                short = re.sub(r"[^A-Za-z0-9_.]", "_", name.rsplit(":", 1)[-1])
                token = secrets.token_hex(4)
                futures = [
                    cl.submit(task, spec.cells[i], key=f"sweep-{short}-{token}-{i}") for i in todo
                ]
                _gather(futures, todo, spec, st, results, failures, quiet, short)
    if st is not None:
        ds = load_sweep(st.path)
    else:
        attrs = {"function": name, "fixed": fixed_json(fixed), "grid": spec.to_json(), "store": ""}
        ds = assemble(spec, results, attrs)
    if failures:
        raise SweepError(_failure_message(failures, ds, st), failures, ds)
    return ds


def _gather(
    futures: list[Any],
    todo: list[int],
    spec: Grid,
    st: SweepStore | None,
    results: dict[int, xr.Dataset],
    failures: list[CellFailure],
    quiet: bool,
    label: str,
) -> None:
    """Write each cell as it completes (this process is the only writer)."""
    from distributed import as_completed

    index = {f.key: i for f, i in zip(futures, todo, strict=True)}
    n = len(spec)
    bar = tqdm(
        total=n,
        initial=n - len(todo),
        desc=f"sweep {label}",
        unit="cell",
        disable=quiet_mode(quiet),
    )
    try:
        for fut in as_completed(futures):
            i = index[fut.key]
            try:
                ok, payload = fut.result()
            except Exception as err:  # the worker died, or the result could not be sent back
                ok, payload = False, "".join(traceback.format_exception(err))
            fut.release()
            if ok and st is not None:
                try:
                    st.write_cell(i, payload)
                except Exception:
                    ok, payload = False, f"writing to {st.path} failed:\n{traceback.format_exc()}"
            elif ok:
                results[i] = payload
            if not ok:
                failures.append(CellFailure(i, dict(spec.cells[i]), payload))
            bar.update(1)
    finally:
        bar.close()
        with contextlib.suppress(Exception):
            pending = [f for f in futures if not f.done()]
            if pending:
                pending[0].client.cancel(pending)


def _failure_message(failures: list[CellFailure], ds: xr.Dataset, st: SweepStore | None) -> str:
    n_done = int(ds["complete"].sum())
    where = (
        f"written to {st.path}; running the sweep again retries only the unfinished cells"
        if st is not None
        else "in SweepError.results"
    )
    lines = [
        f"{len(failures)} of {ds['complete'].size} cells failed; {n_done} are complete ({where}).",
        *(f"  - {f.describe()}" for f in failures),
    ]
    for f in failures[:3]:
        lines += ["", f"{f.label} traceback:", f.traceback.rstrip()]
    if len(failures) > 3:
        lines.append(f"\n(tracebacks of the other {len(failures) - 3} in SweepError.failures)")
    return "\n".join(lines)


# -- TOML configs (the CLI) ----------------------------------------------------------------


def import_function(target: str) -> Callable[..., Any]:
    """The callable named ``"package.module:callable"`` (``callable`` may be dotted)."""
    module_name, sep, attr = target.partition(":")
    if not (sep and module_name and attr):
        raise ConfigError(f"function = {target!r} must look like 'package.module:callable'")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as err:
        raise ImportError(
            f"function = {target!r}: cannot import module {module_name!r} "
            f"({type(err).__name__}: {err}); is it installed or in the current directory?"
        ) from err
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ImportError(f"function = {target!r}: {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise TypeError(f"function = {target!r} is not callable")
    return obj


def load_sweep_config(
    path: str | os.PathLike[str],
) -> tuple[Callable[..., Any], GridSpec, Path | None]:
    """Read a sweep TOML file: ``(fn, grid, store or None)``; ``[fixed]`` is bound to ``fn``.

    The file has ``function = "package.module:callable"``, an optional ``store``, either a
    ``[grid]`` table of lists (cartesian product) or ``[[cells]]`` tables (explicit cells),
    and an optional ``[fixed]`` table of arguments passed to every cell.
    """
    data = read_toml(path)
    accepted = ["function", "store", "grid", "cells", "fixed"]
    if unknown := sorted(set(data) - set(accepted)):
        raise ConfigError(f"unknown field(s) {unknown} in {path}; accepted fields: {accepted}")
    target = data.get("function")
    if not isinstance(target, str):
        raise ConfigError(f'{path}: function = "package.module:callable" is required')
    fn = import_function(target)
    if ("grid" in data) == ("cells" in data):
        raise ConfigError(f"{path}: give either a [grid] table or [[cells]] tables, not both")
    grid = data.get("grid", data.get("cells"))
    if "grid" in data and not isinstance(grid, dict):
        raise ConfigError(f"{path}: grid must be a table of lists, e.g. [grid] seed = [0, 1]")
    for name, values in grid.items() if isinstance(grid, dict) else []:
        if not isinstance(values, list):
            raise ConfigError(f"grid.{name} must be a list of values, got {values!r}")
    fixed = data.get("fixed", {})
    if not isinstance(fixed, dict):
        raise ConfigError(f"{path}: fixed must be a table of arguments, e.g. [fixed] steps = 200")
    store = data.get("store")
    if store is not None and not isinstance(store, str):
        raise ConfigError(f"{path}: store must be a path string, got {store!r}")
    return (
        functools.partial(fn, **fixed) if fixed else fn,
        grid,
        Path(store) if store else None,
    )


def summary_table(ds: xr.Dataset, max_rows: int = 40) -> str:
    """Where the results are, how many cells are complete, and a table of the scalars."""
    dims = ds["complete"].dims
    n, done = ds["complete"].size, int(ds["complete"].sum())
    where = ds.attrs.get("store") or "memory"
    lines = [f"results: {where} ({done} of {n} cells complete)"]
    lines.append(f"function: {ds.attrs.get('function')}  fixed: {ds.attrs.get('fixed', '{}')}")
    scalars = [k for k, v in ds.data_vars.items() if v.dims == dims]
    others = [f"{k} {v.dims}" for k, v in ds.data_vars.items() if v.dims != dims]
    if scalars:
        table = ds[scalars].to_dataframe()
        text = table.head(max_rows).to_string(float_format=lambda x: f"{x:.4g}")
        lines.append(text)
        if len(table) > max_rows:
            lines.append(f"... {len(table) - max_rows} more rows (xarray: neurosim.load_sweep)")
    if others:
        lines.append("array variables: " + ", ".join(others))
    return "\n".join(lines)
