"""neurosim.sweep: grids on Dask, the resumable zarr store, failures, the CLI."""

import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import _sweep_cells as cells
import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner

from neurosim._sweep import SweepError, SweepStoreError, load_sweep, sweep, to_dataset
from neurosim._sweep_store import SweepStore
from neurosim.cli import main
from neurosim.sweeps import learning_curve, train_and_evaluate

HERE = Path(__file__).parent
REPO = HERE.parent.parent


@pytest.fixture(scope="module")
def client():
    """A shared in-process cluster (two one-thread workers) for speed."""
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            processes=False, n_workers=2, threads_per_worker=1, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as c,
    ):
        yield c


def _files(path: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()
    }


def _log_lines(log: Path) -> list[int]:
    return [int(line) for line in log.read_text().split()] if log.exists() else []


class TestResults:
    def test_product_grid_equals_direct_calls(self, client):
        grid = {"seed": [0, 1, 2], "scale": [0.5, 2.0], "kind": ["a", "b"]}
        ds = sweep(cells.mixed, grid, client=client, quiet=True)
        assert ds["vec"].dims == ("seed", "scale", "kind", "vec_dim_0")
        assert ds["y"].dims == ("seed", "scale", "kind")
        for name, values in grid.items():
            assert ds[name].values.tolist() == values
        assert ds["complete"].all() and ds["n"].dtype.kind == "i" and ds["ok"].dtype == bool
        for s in grid["seed"]:
            for c in grid["scale"]:
                for k in grid["kind"]:
                    direct = cells.mixed(s, c, k)
                    cell = ds.sel(seed=s, scale=c, kind=k)
                    for var, expected in direct.items():
                        np.testing.assert_array_equal(cell[var].values, expected)
        assert ds.attrs["function"] == "_sweep_cells:mixed"
        assert json.loads(ds.attrs["grid"]) == {"kind": "product", "axes": grid}

    def test_explicit_cells_and_datasets_through_the_store(self, client, tmp_path):
        grid = [{"seed": 0, "scale": 1.0}, {"seed": 5, "scale": 2.5}, {"seed": 0, "scale": 4.0}]
        ds = sweep(cells.curve, grid, client=client, store=tmp_path / "s.zarr", quiet=True)
        assert ds["value"].dims == ("cell", "t") and ds["peak"].dims == ("cell",)
        assert ds["cell"].values.tolist() == [0, 1, 2]
        assert ds["seed"].dims == ("cell",) and ds["seed"].values.tolist() == [0, 5, 0]
        assert ds["t"].values.tolist() == [0.0, 0.5, 1.0, 1.5] and ds.attrs["units"] == "a.u."
        for k, params in enumerate(grid):
            cell = ds.isel(cell=k).drop_vars(["cell", "complete", "seed", "scale"])
            xr.testing.assert_equal(cell[["value", "peak"]], cells.curve(**params))
        xr.testing.assert_identical(ds, load_sweep(tmp_path / "s.zarr"))
        memory = sweep(cells.curve, grid, client=client, quiet=True)
        xr.testing.assert_identical(memory.drop_attrs(), ds.drop_attrs())

    def test_ragged_results_are_padded(self, client):
        ds = sweep(cells.ragged, {"x": [1, 2, 3]}, client=client, quiet=True)
        assert ds["v"].dims == ("x", "v_dim_0") and ds.sizes["v_dim_0"] == 3
        np.testing.assert_array_equal(ds["v"].sel(x=2), [0.0, 1.0, np.nan])
        assert ds["tag"].values.tolist() == ["odd1", "", "odd3"]

    def test_ready_made_train_and_evaluate(self, client):
        fn = functools.partial(train_and_evaluate, n_hidden=4, steps=3, eval_trials=20)
        ds = sweep(fn, {"seed": [0, 1]}, client=client, quiet=True)
        assert json.loads(ds.attrs["fixed"]) == {"n_hidden": 4, "steps": 3, "eval_trials": 20}
        for seed in (0, 1):
            direct = fn(seed=seed)
            assert {k: ds[k].sel(seed=seed).item() for k in direct} == direct
        assert 0 <= direct["accuracy"] <= 1 and direct["steps"] == 3
        curve = learning_curve(seed=1, n_hidden=4, steps=4, eval_every=2)
        assert curve["loss"].dims == ("step",) and curve["eval_step"].values.tolist() == [2, 4]


class TestResume:
    def test_kill_mid_sweep_then_resume(self, client, tmp_path):
        """A sweep killed part-way loses no finished cell and never recomputes one.

        The first run is ``python -m neurosim sweep`` with its default LocalCluster of
        worker processes; the resume goes through the CLI to the shared cluster.
        """
        n, store, log = 8, tmp_path / "kill.zarr", tmp_path / "calls.log"
        output = tmp_path / "first_run.txt"
        cfg = tmp_path / "kill.toml"
        cfg.write_text(
            'function = "_sweep_cells:slow_square"\n'
            f"[grid]\nx = {list(range(n))}\n"
            f'[fixed]\ndelay = 0.6\nlog = "{log}"\n'
        )
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(REPO)])}
        cmd = [sys.executable, "-m", "neurosim", "sweep", str(cfg), "--store", str(store)]
        out_file = output.open("w")
        proc = subprocess.Popen(
            [*cmd, "--workers", "1", "--quiet"],
            cwd=tmp_path,
            env=env,
            stdout=out_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 120
            done = 0
            while done < 2:
                assert proc.poll() is None, output.read_text()
                assert time.monotonic() < deadline, "the sweep did not start"
                time.sleep(0.05)
                if (store / "zarr.json").exists():
                    done = int(SweepStore(store).completed().sum())
            proc.terminate()  # SIGTERM: the CLI closes its cluster and frees the store
            assert proc.wait(timeout=60) == 128 + signal.SIGTERM, output.read_text()
        finally:
            try:  # the LocalCluster's workers are in the same process group
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            out_file.close()
        first_done = set(np.flatnonzero(SweepStore(store).completed()).tolist())
        first_calls = _log_lines(log)
        assert 2 <= len(first_done) < n
        assert first_done <= set(first_calls)
        # leave a half-written cell (data without its marker), a temporary folder, a stale lock
        j = min(set(range(n)) - first_done)
        shutil.copytree(store / "cells" / f"c{min(first_done)}", store / "cells" / f"c{j}")
        (store / "tmp" / "c3-dead").mkdir(parents=True)
        (store / "sweep.lock").write_text(
            json.dumps({"host": os.uname().nodename, "pid": proc.pid})
        )

        res = CliRunner().invoke(
            main,
            ["sweep", str(cfg), "--store", str(store), "--scheduler", client.scheduler.address],
        )
        assert res.exit_code == 0, res.output
        assert f"{store} ({n} of {n} cells complete)" in res.output
        second_calls = _log_lines(log)[len(first_calls) :]
        assert sorted(second_calls) == sorted(set(range(n)) - first_done)  # each once, j too
        ds = load_sweep(store)
        assert ds["complete"].all()
        assert ds["y"].values.tolist() == [x**2 for x in range(n)]
        cell_dirs = sorted(p.name for p in (store / "cells").iterdir() if p.is_dir())
        assert cell_dirs == sorted(f"c{i}" for i in range(n))
        assert (ds["threads"] == 1).all()  # torch in the LocalCluster's workers, and here
        assert not (store / "tmp").exists() or not any((store / "tmp").iterdir())
        assert not (store / "sweep.lock").exists()

    def test_mismatched_grid_or_function_is_refused_and_store_unchanged(self, client, tmp_path):
        store = tmp_path / "s.zarr"
        sweep(cells.square, {"x": [0, 1, 2]}, client=client, store=store, quiet=True)
        before = _files(store)
        cases = [
            (cells.square, {"x": [0, 1, 2, 3]}, ["grid axis 'x'", "[0, 1, 2]", "[0, 1, 2, 3]"]),
            (cells.square, {"z": [0, 1, 2]}, ["axes ['x']", "axes ['z']"]),
            (cells.square, [{"x": 0}], ["explicit list of 1 cells"]),
            (cells.cube, {"x": [0, 1, 2]}, ["'_sweep_cells:square'", "'_sweep_cells:cube'"]),
            (functools.partial(cells.square, offset=1), {"x": [0, 1, 2]}, ['{"offset": 1}']),
        ]
        for fn, grid, words in cases:
            with pytest.raises(SweepStoreError, match="different sweep") as err:
                sweep(fn, grid, client=client, store=store, quiet=True)
            for w in words:
                assert w in str(err.value)
            assert _files(store) == before
        ds = sweep(
            cells.cube, {"x": [1, 2]}, client=client, store=store, overwrite=True, quiet=True
        )
        assert ds["y"].values.tolist() == [1, 8] and load_sweep(store)["y"].values.tolist() == [
            1,
            8,
        ]

    def test_not_a_store_and_live_lock_are_refused(self, client, tmp_path):
        other = tmp_path / "data"
        other.mkdir()
        (other / "keep.txt").write_text("mine")
        for overwrite in (False, True):
            with pytest.raises(SweepStoreError, match="not a neurosim sweep store"):
                sweep(cells.square, {"x": [1]}, client=client, store=other, overwrite=overwrite)
        assert (other / "keep.txt").read_text() == "mine"
        store = tmp_path / "s.zarr"
        sweep(cells.square, {"x": [1]}, client=client, store=store, quiet=True)
        (store / "sweep.lock").write_text(
            json.dumps({"host": os.uname().nodename, "pid": os.getpid()})
        )
        with pytest.raises(SweepStoreError, match=f"being written by process {os.getpid()}"):
            sweep(cells.square, {"x": [1]}, client=client, store=store, quiet=True)


class TestFailuresAndPartialStores:
    def test_failing_cell_keeps_the_others_and_is_retried(self, client, tmp_path):
        store, log = tmp_path / "f.zarr", tmp_path / "calls.log"
        fn = functools.partial(cells.fail_on, bad=2, log=str(log))
        with pytest.raises(SweepError) as err:
            sweep(fn, {"x": [0, 1, 2, 3]}, client=client, store=store, quiet=True)
        msg = str(err.value)
        assert "1 of 4 cells failed; 3 are complete" in msg
        assert "cell 2 (x=2): ValueError: boom at 2" in msg and "Traceback" in msg
        assert [(f.index, f.params) for f in err.value.failures] == [(2, {"x": 2})]
        assert "raise ValueError" in err.value.failures[0].traceback
        res = err.value.results
        assert res["complete"].values.tolist() == [True, True, False, True]
        assert np.isnan(res["y"].sel(x=2)) and res["y"].sel(x=3) == 3.0
        assert SweepStore(store).completed().tolist() == [True, True, False, True]
        n_calls = len(_log_lines(log))
        with pytest.raises(SweepError):
            sweep(fn, {"x": [0, 1, 2, 3]}, client=client, store=store, quiet=True)
        assert _log_lines(log)[n_calls:] == [2]  # only the failed cell ran again

    def test_store_none_failure_and_bad_results(self, client):
        with pytest.raises(SweepError) as err:
            sweep(cells.fail_on, {"x": [1, 2]}, client=client, quiet=True)
        assert "in SweepError.results" in str(err.value)
        assert err.value.results["y"].values[0] == 1.0
        with pytest.raises(SweepError, match="grid parameters"):
            sweep(lambda x: {"x": x}, {"x": [1]}, client=client, quiet=True)
        with pytest.raises(SweepError, match="got list"):
            sweep(lambda x: [x], {"x": [1]}, client=client, quiet=True)

    def test_load_sweep_on_a_partial_store(self, client, tmp_path):
        store = tmp_path / "p.zarr"
        fn = functools.partial(cells.fail_on, bad=1)
        with pytest.raises(SweepError):
            sweep(fn, {"x": [0, 1, 2], "k": ["a", "b"]}, client=client, store=store, quiet=True)
        shutil.rmtree(store / "cells" / "c5")  # marker without data: counts as unfinished
        ds = load_sweep(store)
        assert ds["y"].dims == ("x", "k") and ds["complete"].dims == ("x", "k")
        expected = [[True, True], [False, False], [True, False]]
        assert ds["complete"].values.tolist() == expected
        assert np.isnan(ds["y"].values[~ds["complete"].values]).all()
        assert ds["y"].values[0].tolist() == [0.0, 0.0] and ds["y"].sel(x=2, k="a") == 2.0
        with pytest.raises(FileNotFoundError):
            load_sweep(tmp_path / "missing.zarr")


class TestValidation:
    @pytest.mark.parametrize(
        ("grid", "error", "words"),
        [
            ({}, ValueError, "the grid is empty"),
            ({"x": 3}, TypeError, "must be a list of values"),
            ({"x": []}, ValueError, "is empty"),
            ({"x": [1, "a"]}, TypeError, "mixes number and str"),
            ({"x": [1, 1]}, ValueError, "repeated values"),
            ({"x": [[1]]}, TypeError, "must be int, float, str or bool"),
            ({"cell": [1]}, ValueError, "cannot be a grid parameter"),
            ({"not valid": [1]}, ValueError, "identifiers"),
            ([{"x": 1}, {"y": 2}], ValueError, "same parameters"),
            ([], ValueError, "empty list"),
        ],
    )
    def test_bad_grids(self, grid, error, words):
        with pytest.raises(error, match=words):
            sweep(cells.square, grid)

    def test_bad_arguments(self):
        with pytest.raises(ValueError, match="both grid axes and fixed"):
            sweep(functools.partial(cells.square, x=1), {"x": [1]})
        with pytest.raises(ValueError, match="n_workers"):
            sweep(cells.square, {"x": [1]}, client="tcp://127.0.0.1:1", n_workers=2)
        with pytest.raises(TypeError, match="client must be"):
            sweep(cells.square, {"x": [1]}, client=3)
        with pytest.raises(TypeError, match="numeric array"):
            to_dataset({"a": object()})


class TestCLI:
    def test_sweep_command_end_to_end(self, client, tmp_path, monkeypatch):
        monkeypatch.chdir(tmp_path)
        (tmp_path / "tiny.toml").write_text(
            'function = "_sweep_cells:square"\nstore = "res.zarr"\n'
            "[grid]\nx = [1, 2, 3]\n[fixed]\noffset = 10\n"
        )
        res = CliRunner().invoke(
            main, ["sweep", "tiny.toml", "--scheduler", client.scheduler.address, "--quiet"]
        )
        assert res.exit_code == 0, res.output
        assert "results: res.zarr (3 of 3 cells complete)" in res.output
        assert "_sweep_cells:square" in res.output and '{"offset": 10}' in res.output
        assert load_sweep(tmp_path / "res.zarr")["y"].values.tolist() == [11, 14, 19]
        assert "19" in res.output.splitlines()[-1]
        res = CliRunner().invoke(main, ["sweep", "--help"])
        assert res.exit_code == 0 and "--scheduler" in res.output

    @pytest.mark.parametrize(
        ("toml", "words"),
        [
            ('function = "no_such_module_xyz:f"\n[grid]\nx = [1]\n', "cannot import module"),
            ('function = "_sweep_cells:nope"\n[grid]\nx = [1]\n', "has no attribute 'nope'"),
            ('function = "square"\n[grid]\nx = [1]\n', "must look like 'package.module:callable'"),
            ('function = "_sweep_cells:square"\n[grid]\nx = 1\n', "grid.x must be a list"),
            ('function = "_sweep_cells:square"\n', "either a [grid] table or [[cells]]"),
            ('function = "_sweep_cells:square"\ngird = 1\n', "unknown field(s) ['gird']"),
        ],
    )
    def test_config_errors(self, tmp_path, toml, words):
        (tmp_path / "bad.toml").write_text(toml)
        res = CliRunner().invoke(main, ["sweep", str(tmp_path / "bad.toml")])
        assert res.exit_code != 0 and words in res.output, res.output
