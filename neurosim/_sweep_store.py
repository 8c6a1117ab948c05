"""Sweep grids, the resumable zarr store and the assembly of cells into one Dataset.

A store is one zarr (format 3) group::

    sweep.zarr/
      zarr.json        root attrs: format, function, fixed, grid (JSON strings), n_cells
      complete/        bool array [n_cells], one chunk per cell: the completion markers
      cells/c<i>/      cell i's result, a Dataset written by xarray
      tmp/             cells being written (not part of the zarr hierarchy)
      sweep.lock       host and pid of the process writing the store

A cell is written to ``tmp/``, renamed into ``cells/`` and only then marked in
``complete`` (zarr writes each chunk atomically), so whatever a crash leaves
behind, a cell without its marker is never read and is redone by the next run.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import secrets
import shutil
import socket
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
import zarr

_FORMAT = "neurosim-sweep/1"
RESERVED = ("cell", "complete")
_CELL = "__cell__"


class SweepStoreError(ValueError):
    """A sweep store does not match the sweep, is not a sweep store, or is in use."""


def _scalar(where: str, value: Any) -> int | float | str | bool:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool | int | float | str):
        return value
    raise TypeError(
        f"{where} = {value!r} ({type(value).__name__}): grid values must be int, float, str or bool"
    )


def _kind(value: Any) -> str:
    return "bool" if isinstance(value, bool) else "str" if isinstance(value, str) else "number"


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"grid parameter names must be Python identifiers, got {name!r}")
    if name in RESERVED:
        raise ValueError(f"{name!r} cannot be a grid parameter: it names a dimension of the result")
    return name


def _check_kinds(where: str, values: Sequence[Any]) -> None:
    kinds = {_kind(v) for v in values}
    if len(kinds) > 1:
        raise TypeError(
            f"{where} mixes {' and '.join(sorted(kinds))} values {list(values)!r}; use one type"
        )


@dataclass(frozen=True)
class Grid:
    """The cells of a sweep: a cartesian product of axes or an explicit list of cells."""

    kind: str  # "product" or "cells"
    axes: dict[str, list[Any]]  # product: axis values; cells: each parameter's column
    cells: list[dict[str, Any]]

    @classmethod
    def from_user(cls, grid: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]]) -> Grid:
        """Validate ``{name: [values]}`` (product) or ``[{name: value}, ...]`` (cells)."""
        if isinstance(grid, Mapping):
            if not grid:
                raise ValueError("the grid is empty: give at least one axis, e.g. {'seed': [0, 1]}")
            axes: dict[str, list[Any]] = {}
            for name, values in grid.items():
                _check_name(name)
                if isinstance(values, str | bytes) or not isinstance(
                    values, Sequence | np.ndarray | range
                ):
                    raise TypeError(
                        f"grid[{name!r}] must be a list of values, got {values!r}; "
                        "pass constants with functools.partial (or [fixed] in a TOML config)"
                    )
                vals = [_scalar(f"grid[{name!r}]", v) for v in values]
                if not vals:
                    raise ValueError(f"grid[{name!r}] is empty")
                _check_kinds(f"grid[{name!r}]", vals)
                if len({(type(v), v) for v in vals}) < len(vals):
                    raise ValueError(f"grid[{name!r}] has repeated values {vals!r}")
                axes[name] = vals
            names = list(axes)
            index = np.indices([len(v) for v in axes.values()]).reshape(len(axes), -1).T
            cells = [{n: axes[n][k] for n, k in zip(names, row, strict=True)} for row in index]
            return cls("product", axes, cells)
        if isinstance(grid, str | bytes) or not isinstance(grid, Sequence):
            raise TypeError(
                f"grid must be a dict of name -> list of values or a list of dicts, got {grid!r}"
            )
        if not grid:
            raise ValueError("the grid is an empty list of cells")
        keys = None
        cells = []
        for k, cell in enumerate(grid):
            if not isinstance(cell, Mapping):
                raise TypeError(f"cell {k} of the grid must be a dict of parameters, got {cell!r}")
            names = [_check_name(n) for n in cell]
            if keys is None:
                keys = names
            elif set(names) != set(keys):
                raise ValueError(
                    f"cell {k} has parameters {sorted(names)} but cell 0 has {sorted(keys)}; "
                    "every cell of an explicit list needs the same parameters"
                )
            cells.append({n: _scalar(f"cell {k} {n!r}", cell[n]) for n in keys})
        columns = {n: [c[n] for c in cells] for n in keys or []}
        for n, col in columns.items():
            _check_kinds(f"parameter {n!r}", col)
        return cls("cells", columns, cells)

    @property
    def dims(self) -> tuple[str, ...]:
        return tuple(self.axes) if self.kind == "product" else ("cell",)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(v) for v in self.axes.values()) if self.kind == "product" else (len(self),)

    def __len__(self) -> int:
        return len(self.cells)

    def to_json(self) -> str:
        body = {"axes": self.axes} if self.kind == "product" else {"cells": self.cells}
        return json.dumps({"kind": self.kind, **body})

    @classmethod
    def from_json(cls, text: str) -> Grid:
        data = json.loads(text)
        return cls.from_user(data["axes"] if data["kind"] == "product" else data["cells"])

    def coords(self) -> dict[str, Any]:
        if self.kind == "product":
            return {n: np.asarray(v) for n, v in self.axes.items()}
        return {
            "cell": np.arange(len(self)),
            **{n: ("cell", np.asarray(v)) for n, v in self.axes.items()},
        }

    def differences(self, other: Grid) -> list[str]:
        """What differs between the grid of a store (``self``) and ``other``, in words."""

        def show(values: Any) -> str:
            text = json.dumps(values)
            return text if len(text) < 200 else text[:197] + "..."

        if self.kind != other.kind or (
            self.kind == "product" and list(self.axes) != list(other.axes)
        ):

            def what(g: Grid) -> str:
                if g.kind == "product":
                    return f"axes {list(g.axes)}"
                return f"an explicit list of {len(g)} cells"

            return [f"grid: the store has {what(self)}, this sweep {what(other)}"]
        if self.kind == "product":
            return [
                f"grid axis {n!r}: the store has {show(v)}, this sweep {show(other.axes[n])}"
                for n, v in self.axes.items()
                if json.dumps(v) != json.dumps(other.axes[n])
            ]
        if len(self) != len(other):
            return [f"grid: the store has {len(self)} cells, this sweep {len(other)}"]
        for k, (a, b) in enumerate(zip(self.cells, other.cells, strict=True)):
            if json.dumps(a, sort_keys=True) != json.dumps(b, sort_keys=True):
                return [f"grid cell {k}: the store has {show(a)}, this sweep {show(b)}"]
        return []


def describe_function(fn: Callable[..., Any]) -> tuple[str, dict[str, Any]]:
    """``("package.module:qualname", fixed keyword arguments)`` of ``fn`` (partials unwrapped)."""
    fixed: dict[str, Any] = {}
    while isinstance(fn, functools.partial):
        if fn.args:
            raise TypeError(
                "sweep functions take keyword parameters only; functools.partial with "
                f"positional arguments {fn.args!r} is not supported"
            )
        fixed = {**fn.keywords, **fixed}
        fn = fn.func
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {fn!r}")
    module = getattr(fn, "__module__", None) or type(fn).__module__
    qualname = getattr(fn, "__qualname__", None) or type(fn).__qualname__
    return f"{module}:{qualname}", fixed


def fixed_json(fixed: Mapping[str, Any]) -> str:
    return json.dumps(dict(fixed), sort_keys=True, default=repr)


# -- cells as Datasets -------------------------------------------------------------------


def for_zarr(ds: xr.Dataset) -> xr.Dataset:
    """A shallow copy without encodings and with fixed-width strings as vlen strings."""
    out = ds.copy(deep=False)
    for name, var in list(out.variables.items()):
        var.encoding = {}
        if var.dtype.kind == "U":
            if name in out.indexes:
                out = out.assign_coords({name: var.values.astype(object)})
            else:
                var.values = var.values.astype(object)
    return out


def normalise_strings(ds: xr.Dataset) -> xr.Dataset:
    """Strings read back from zarr (StringDType or objects) as fixed-width numpy strings."""
    for name, var in list(ds.variables.items()):
        if var.dtype.kind in "OT":
            values = var.values.astype(object)
            if all(isinstance(v, str) for v in values.flat):
                if name in ds.indexes:
                    ds = ds.assign_coords({name: values.astype(str)})
                else:
                    var.values = values.astype(str)
    return ds


def assemble(grid: Grid, cells: Mapping[int, xr.Dataset], attrs: dict[str, Any]) -> xr.Dataset:
    """One Dataset: grid dims (or ``cell``) + each variable's own dims; missing cells NaN."""
    n = len(grid)
    complete = np.zeros(n, dtype=bool)
    complete[list(cells)] = True
    if cells:
        order = sorted(cells)
        # what fills a cell without the variable: "" for strings, NaN for numbers
        fill = {
            name: "" if var.dtype.kind in "UOT" else np.nan
            for i in order
            for name, var in cells[i].data_vars.items()
        }
        # dims without coordinates get positions, so that lengths may differ between cells
        bare = [set(cells[i].dims) - set(cells[i].indexes) for i in order]
        stacked = xr.concat(
            [
                cells[i].assign_coords({d: np.arange(cells[i].sizes[d]) for d in b})
                for i, b in zip(order, bare, strict=True)
            ],
            dim=_CELL,
            data_vars="all",
            coords="different",
            compat="equals",
            join="outer",
            combine_attrs="drop_conflicts",
            fill_value=fill,
        )
        stacked = stacked.assign_coords({_CELL: order})
        if len(order) < n:
            for name, var in stacked.data_vars.items():
                if var.dtype.kind in "biu":
                    stacked[name] = var.astype(np.float64)
            stacked = stacked.reindex({_CELL: np.arange(n)}, fill_value=fill)
        stacked = stacked.drop_vars([_CELL, *set.intersection(*bare)])
    else:
        stacked = xr.Dataset()
    data_vars, coords = {}, {}
    for name, var in stacked.variables.items():
        if _CELL in var.dims:
            var = var.transpose(_CELL, ...)
            data = var.values.reshape(grid.shape + var.shape[1:])
            var = xr.Variable(grid.dims + var.dims[1:], data, var.attrs)
        (data_vars if name in stacked.data_vars else coords)[name] = var
    data_vars = dict(sorted(data_vars.items()))  # zarr does not keep the order
    out = xr.Dataset(data_vars, coords={**coords, **grid.coords()}, attrs=stacked.attrs)
    out = out.assign_coords(complete=(grid.dims, complete.reshape(grid.shape)))
    out.attrs.update(attrs)
    return out


# -- the store ---------------------------------------------------------------------------


def _is_store(path: Path) -> bool:
    try:
        return zarr.open_group(path, mode="r").attrs.get("format") == _FORMAT
    except Exception:
        return False


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class SweepStore:
    """A sweep's zarr store on the local file system (see the module docstring)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"no sweep store at {self.path}")
        if not _is_store(self.path):
            raise SweepStoreError(f"{self.path} exists but is not a neurosim sweep store")
        self.attrs = dict(zarr.open_group(self.path, mode="r").attrs)
        self.grid = Grid.from_json(self.attrs["grid"])
        self._complete: zarr.Array | None = None

    @classmethod
    def open_for(
        cls, path: str | os.PathLike[str], grid: Grid, function: str, fixed: str, overwrite: bool
    ) -> SweepStore:
        """Open the store at ``path`` for this sweep, creating it when there is none.

        An existing store must hold the same function, fixed arguments and grid, unless
        ``overwrite`` (then it is deleted first). Nothing on disk changes before the checks.
        """
        path = Path(path)
        empty_dir = path.is_dir() and not any(path.iterdir())
        if path.exists() and not empty_dir:
            if not path.is_dir() or not _is_store(path):
                raise SweepStoreError(
                    f"{path} exists and is not a neurosim sweep store; choose another store path"
                )
            store = cls(path)
            if overwrite:
                store._check_not_locked()
                shutil.rmtree(path)
            else:
                problems = []
                if store.attrs["function"] != function:
                    problems.append(
                        f"function: the store holds {store.attrs['function']!r}, "
                        f"this sweep runs {function!r}"
                    )
                if store.attrs["fixed"] != fixed:
                    problems.append(
                        f"fixed arguments: the store has {store.attrs['fixed']}, this sweep {fixed}"
                    )
                problems += store.grid.differences(grid)
                if problems:
                    raise SweepStoreError(
                        f"the sweep store {path} was written by a different sweep:\n  - "
                        + "\n  - ".join(problems)
                        + "\nNothing was changed. Use another store, or overwrite=True "
                        "(--overwrite) to discard it."
                    )
                return store
        if not path.parent.is_dir():
            path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
        try:
            from . import __version__

            attrs = {
                "format": _FORMAT,
                "function": function,
                "fixed": fixed,
                "grid": grid.to_json(),
                "n_cells": len(grid),
                "neurosim_version": __version__,
            }
            root = zarr.open_group(tmp, mode="w-", zarr_format=3, attributes=attrs)
            root.create_group("cells")
            root.create_array(
                "complete", shape=(len(grid),), chunks=(1,), dtype=bool, fill_value=False
            )
            os.replace(tmp, path)  # atomic; an empty directory is replaced too
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return cls(path)

    # completion markers
    def completed(self) -> np.ndarray:
        """A bool array over cells: which are finished (marker written)."""
        return np.asarray(zarr.open_array(self.path / "complete", mode="r")[:], dtype=bool)

    def _cell_path(self, i: int) -> Path:
        return self.path / "cells" / f"c{i}"

    def repair(self) -> np.ndarray:
        """Remove half-written cells and leftovers; return the completed mask.

        A marked cell whose data is missing loses its marker (it will be redone).
        """
        shutil.rmtree(self.path / "tmp", ignore_errors=True)
        for leftover in (self.path / "complete").rglob("*.partial"):
            leftover.unlink(missing_ok=True)
        done = self.completed()
        markers = zarr.open_array(self.path / "complete", mode="r+")
        for i in np.flatnonzero(done):
            if not (self._cell_path(i) / "zarr.json").is_file():
                markers[i] = False
                done[i] = False
        for child in (self.path / "cells").iterdir():
            if child.is_dir():
                k = child.name[1:]
                if not (child.name[:1] == "c" and k.isdigit() and int(k) < done.size):
                    shutil.rmtree(child)  # not a cell of this grid
                elif not done[int(k)]:
                    shutil.rmtree(child)  # half-written: no marker
        return done

    def write_cell(self, i: int, ds: xr.Dataset) -> None:
        """Write cell ``i`` (temporary folder, rename, then the completion marker)."""
        tmp = self.path / "tmp" / f"c{i}-{secrets.token_hex(4)}"
        tmp.parent.mkdir(exist_ok=True)
        try:
            for_zarr(ds).to_zarr(tmp, mode="w-", consolidated=False, zarr_format=3)
            target = self._cell_path(i)
            if target.exists():
                shutil.rmtree(target)
            os.replace(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        if self._complete is None:
            self._complete = zarr.open_array(self.path / "complete", mode="r+")
        self._complete[i] = True

    def read_cell(self, i: int) -> xr.Dataset:
        with xr.open_zarr(self.path, group=f"cells/c{i}", consolidated=False, chunks=None) as raw:
            return normalise_strings(raw.load())

    def result_attrs(self) -> dict[str, Any]:
        keys = ("function", "fixed", "grid")
        return {**{k: self.attrs[k] for k in keys}, "store": str(self.path)}

    # single writer
    def _lock_path(self) -> Path:
        return self.path / "sweep.lock"

    def _check_not_locked(self) -> None:
        lock = self._lock_path()
        try:
            owner = json.loads(lock.read_text())
        except FileNotFoundError:
            return
        except (OSError, ValueError):
            owner = {}
        if owner.get("host") == socket.gethostname() and not _pid_alive(int(owner.get("pid", -1))):
            lock.unlink(missing_ok=True)  # left by a process that is gone
            return
        raise SweepStoreError(
            f"the sweep store {self.path} is being written by process {owner.get('pid')} on "
            f"{owner.get('host')!r}; if no sweep is running there, delete {lock}"
        )

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Hold the store's lock file while this process is its single writer."""
        for attempt in range(2):
            self._check_not_locked()  # removes a lock left by a dead process
            try:
                fd = os.open(self._lock_path(), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
                break
            except FileExistsError:
                if attempt:  # pragma: no cover - another writer won the race
                    raise SweepStoreError(f"the sweep store {self.path} is in use") from None
        with os.fdopen(fd, "w") as f:
            json.dump({"host": socket.gethostname(), "pid": os.getpid()}, f)
        try:
            yield
        finally:
            self._lock_path().unlink(missing_ok=True)


def load_sweep(store: str | os.PathLike[str]) -> xr.Dataset:
    """Read a sweep store, finished or not, into one Dataset.

    Parameters
    ----------
    store : str or path-like
        A store written by :func:`neurosim.sweep` (possibly interrupted).

    Returns
    -------
    xarray.Dataset
        As :func:`neurosim.sweep` returns it: one dim per grid axis (``cell`` for an
        explicit list) plus each result's own dims. Cells not finished are NaN (``""``
        for strings; integers and booleans become floats then) and the bool coordinate
        ``complete`` says which cells are real.

    Raises
    ------
    FileNotFoundError
        If there is no store at ``store``.
    SweepStoreError
        If ``store`` is not a sweep store.

    Examples
    --------
    >>> ds = load_sweep("out/sweep.zarr")  # doctest: +SKIP
    >>> ds["accuracy"].where(ds.complete).mean("seed")  # doctest: +SKIP
    """
    st = SweepStore(store)
    done = st.completed()
    cells = {}
    for i in np.flatnonzero(done):
        if (st.path / "cells" / f"c{i}" / "zarr.json").is_file():  # else: not finished
            cells[int(i)] = st.read_cell(int(i))
    return assemble(st.grid, cells, st.result_attrs())
