"""Tests for neurosim._trajectories: building, validation, atomic save and load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from neurosim import _trajectories as trj
from neurosim._trajectories import (
    TrajectoryFormatError,
    build_trajectories,
    load,
    save,
    validate_trajectories,
)

B, T, N, N_IN, N_OUT = 4, 5, 6, 3, 2
DT = 20.0


def make_ds(target_kind: str = "class", seed: int = 0) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    if target_kind == "class":
        targets = rng.integers(0, N_OUT, size=(B, T)).astype(np.int64)
    else:
        targets = rng.standard_normal((B, T, N_OUT)).astype(np.float32)
    valid = np.ones((B, T), dtype=bool)
    valid[0, -2:] = False
    trials = pd.DataFrame(
        {
            "n": np.arange(B, dtype=np.int64),
            "coherence": rng.uniform(size=B),
            "rt": [1.5, np.nan, 2.0, 3.0],
            "correct": [True, False, True, True],
            "side": pd.Series(["left", "right", "", "left"], dtype=object),
            "choice": np.array(["a", "b", "c", "d"]),
            "pair": [(1, 2), (3, 4), (5, 6), (np.int64(7), 8.5)],
            "time": [0.0, 1.0, 2.0, 3.0],  # clashes with the time dim
            "state": ["x", "y", "z", "w"],  # clashes with a variable
        }
    )
    return build_trajectories(
        state=rng.standard_normal((B, T, N)).astype(np.float32),
        inputs=rng.standard_normal((B, T, N_IN)).astype(np.float32),
        outputs=rng.standard_normal((B, T, N_OUT)).astype(np.float32),
        targets=targets,
        mask=(rng.uniform(size=(B, T)) > 0.3).astype(np.float32),
        valid=valid,
        dt=DT,
        trials=trials,
        unit_coords={"module": ["sensory"] * 3 + ["motor"] * 3, "kind": ["exc"] * 5 + ["inh"]},
        attrs={
            "paradigm": "neurogym/PerceptualDecisionMaking-v0",
            "seed": 3,
            "noise": 0.05,
            "kwargs": {"timing": {"stim": 100}, "dim": 2},
            "quiet": True,
            "perturbation": None,
            "versions": ["1.0", "2.0"],
        },
    )


class TestBuild:
    def test_layout_and_coords(self):
        ds = make_ds()
        assert ds.state.dims == ("trial", "time", "unit")
        assert ds.input.dims == ("trial", "time", "input_channel")
        assert ds.target.dims == ("trial", "time")
        np.testing.assert_allclose(ds.time.values, np.arange(T) * DT)
        assert ds.time.attrs["units"] == "ms"
        assert ds.trial.dtype == np.int64
        assert list(ds.module.values[:3]) == ["sensory"] * 3 and ds.kind.dims == ("unit",)
        assert "trial_time" in ds.coords and "trial_state" in ds.coords
        assert ds.correct.dtype == bool and ds.side.dtype.kind == "U"
        assert ds.pair.values[3] == "[7, 8.5]"
        assert ds.attrs["schema"] == "neurosim.trajectories" and ds.attrs["schema_version"] == 1
        assert ds.attrs["target_kind"] == "class" and ds.attrs["dt"] == DT
        assert ds.attrs["kwargs"] == '{"dim": 2, "timing": {"stim": 100}}'
        assert ds.attrs["quiet"] == "true" and ds.attrs["perturbation"] == "null"
        assert ds.attrs["seed"] == 3
        validate_trajectories(ds)

    def test_continuous_targets(self):
        ds = make_ds("continuous")
        assert ds.target.dims == ("trial", "time", "output_channel")
        assert ds.attrs["target_kind"] == "continuous"

    def test_wraps_without_copy(self):
        state = np.zeros((B, T, N), np.float32)
        ds = build_trajectories(
            state=state,
            inputs=np.zeros((B, T, N_IN), np.float32),
            outputs=np.zeros((B, T, N_OUT), np.float32),
            targets=np.zeros((B, T), np.int64),
            mask=np.ones((B, T), np.float32),
            valid=np.ones((B, T), bool),
            dt=1.0,
            trials=pd.DataFrame(index=range(B)),
            unit_coords={"module": ["m"] * N},
        )
        assert np.shares_memory(ds.state.values, state)

    def test_rejects_bad_shapes(self):
        ds = make_ds()
        with pytest.raises(ValueError, match="targets"):
            build_trajectories(
                state=ds.state.values,
                inputs=ds.input.values,
                outputs=ds.output.values,
                targets=np.zeros((B, T), np.float32),
                mask=ds.mask.values,
                valid=ds.valid.values,
                dt=DT,
                trials=pd.DataFrame(index=range(B)),
                unit_coords={"module": ["m"] * N},
            )


@pytest.mark.filterwarnings("error")  # e.g. zarr's warning about fixed-width unicode arrays
@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
@pytest.mark.parametrize("target_kind", ["class", "continuous"])
def test_round_trip_identical(tmp_path, suffix, target_kind):
    ds = make_ds(target_kind)
    path = save(ds, tmp_path / f"run{suffix}")
    back = load(path)
    xr.testing.assert_identical(back, ds)
    for name in ds.variables:
        assert back[name].dtype == ds[name].dtype, name
    assert back.valid.dtype == bool
    assert type(back.attrs["seed"]) is int and type(back.attrs["dt"]) is float
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"run{suffix}"]


@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_overwrite_replaces_and_overwrite_false_refuses(tmp_path, suffix):
    path = tmp_path / f"run{suffix}"
    save(make_ds(seed=1), path)
    save(make_ds(seed=2), path)
    xr.testing.assert_identical(load(path), make_ds(seed=2))
    with pytest.raises(FileExistsError, match="run"):
        save(make_ds(seed=3), path, overwrite=False)
    xr.testing.assert_identical(load(path), make_ds(seed=2))
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_unusual_trial_columns_survive_netcdf(tmp_path):
    ds = make_ds()
    trials = pd.DataFrame(
        {
            "n_na": pd.array([1, None, 3, 4], dtype="Int64"),
            "n_int": pd.array([1, 2, 3, 4], dtype="Int64"),
            "cat": pd.Categorical(["a", "b", "a", "b"]),
            "spec": [{"b": 1, "a": [1, 2]}, {}, None, np.arange(2)],
            "maybe": ["x", None, "y", "z"],
        }
    )
    built = build_trajectories(
        state=ds.state.values,
        inputs=ds.input.values,
        outputs=ds.output.values,
        targets=ds.target.values,
        mask=ds.mask.values,
        valid=ds.valid.values,
        dt=DT,
        trials=trials,
        unit_coords={"module": ds.module.values},
    )
    assert built.n_na.dtype == np.float64 and np.isnan(built.n_na.values[1])
    assert built.n_int.dtype == np.int64
    assert built.cat.values.tolist() == ["a", "b", "a", "b"]
    assert built.spec.values.tolist() == ['{"a": [1, 2], "b": 1}', "{}", "null", "[0, 1]"]
    assert built.maybe.values.tolist() == ['"x"', "null", '"y"', '"z"']
    xr.testing.assert_identical(load(save(built, tmp_path / "t.nc")), built)


def test_loaded_dataset_saves_in_the_other_format(tmp_path):
    ds = make_ds("continuous")
    from_zarr = load(save(ds, tmp_path / "a.zarr"))
    from_nc = load(save(from_zarr, tmp_path / "b.nc"))
    xr.testing.assert_identical(load(save(from_nc, tmp_path / "c.zarr")), ds)
    assert from_zarr.state.encoding  # save works on a shallow copy: encodings untouched


def test_failed_rename_restores_existing_zarr(tmp_path, monkeypatch):
    path = tmp_path / "run.zarr"
    original = make_ds(seed=1)
    save(original, path)
    real_replace, calls = trj.os.replace, []

    def replace(src, dst):  # zarr also renames files inside the store: count ours only
        if Path(dst).parent == tmp_path:
            calls.append((src, dst))
            if len(calls) == 2:  # existing store already moved aside; the new one fails
                raise OSError("rename failed")
        real_replace(src, dst)

    monkeypatch.setattr(trj.os, "replace", replace)
    with pytest.raises(OSError, match="rename failed"):
        save(make_ds(seed=2), path)
    monkeypatch.undo()
    assert len(calls) == 3  # aside, failed swap, restore
    xr.testing.assert_identical(load(path), original)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="nodir"):
        save(make_ds(), tmp_path / "nodir" / "run.nc")


@pytest.mark.parametrize("suffix, fmt", [(".nc", "netcdf"), (".zarr", "zarr")])
def test_failed_write_leaves_original_and_no_temp(tmp_path, monkeypatch, suffix, fmt):
    path = tmp_path / f"run{suffix}"
    original = make_ds(seed=1)
    save(original, path)
    real = trj._WRITERS[fmt]

    def broken(ds, target):
        real(ds, target)  # write the whole temp, then fail before the rename
        assert target.exists() and target.name.startswith(f".{path.name}.tmp-")
        raise RuntimeError("disk full")

    monkeypatch.setitem(trj._WRITERS, fmt, broken)
    with pytest.raises(RuntimeError, match="disk full"):
        save(make_ds(seed=2), path)
    xr.testing.assert_identical(load(path), original)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_save_refuses_invalid_and_writes_nothing(tmp_path):
    ds = make_ds()
    ds["state"].values[0, 0, 0] = np.nan
    with pytest.raises(TrajectoryFormatError, match="'state'"):
        save(ds, tmp_path / "bad.nc")
    assert list(tmp_path.iterdir()) == []


def test_bad_suffix(tmp_path):
    with pytest.raises(ValueError, match=r"\.nc.*\.zarr"):
        save(make_ds(), tmp_path / "run.csv")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="format"):
        save(make_ds(), tmp_path / "run.nc", format="parquet")


def test_explicit_format_overrides_suffix(tmp_path):
    path = save(make_ds(), tmp_path / "run.dat", format="netcdf")
    xr.testing.assert_identical(load(path), make_ds())


class TestLoadErrors:
    def test_missing_path(self, tmp_path):
        with pytest.raises(FileNotFoundError, match="nope.nc"):
            load(tmp_path / "nope.nc")

    def test_foreign_netcdf(self, tmp_path):
        path = tmp_path / "foreign.nc"
        xr.Dataset({"x": ("a", np.arange(3.0))}, attrs={"title": "other"}).to_netcdf(
            path, engine="h5netcdf"
        )
        with pytest.raises(TrajectoryFormatError, match="schema") as info:
            load(path)
        assert "foreign.nc" in str(info.value) and "'title'" in str(info.value)
        assert any("variables missing: 'state'" in p for p in info.value.problems)

    def test_truncated_file(self, tmp_path):
        good = save(make_ds(), tmp_path / "good.nc")
        data = good.read_bytes()
        cut = tmp_path / "cut.nc"
        cut.write_bytes(data[: len(data) // 2])
        with pytest.raises(TrajectoryFormatError, match="damaged") as info:
            load(cut)
        assert "cut.nc" in str(info.value)

    @pytest.mark.parametrize("content", [b"hello, this is text\n", bytes(range(256)) * 8])
    def test_not_netcdf(self, tmp_path, content):
        path = tmp_path / "junk.nc"
        path.write_bytes(content)
        with pytest.raises(TrajectoryFormatError, match="damaged or is not a netCDF"):
            load(path)

    def test_directory_that_is_not_zarr(self, tmp_path):
        (tmp_path / "empty.zarr").mkdir()
        with pytest.raises(TrajectoryFormatError, match="zarr"):
            load(tmp_path / "empty.zarr")


class TestValidate:
    def problems(self, ds):
        with pytest.raises(TrajectoryFormatError) as info:
            validate_trajectories(ds)
        assert str(info.value).count("\n  - ") == len(info.value.problems)
        return info.value.problems

    def test_missing_variable_named(self):
        problems = self.problems(make_ds().drop_vars("mask"))
        assert len(problems) == 1 and problems[0].startswith("variables missing: 'mask'")

    def test_nan_in_state_named_with_count(self):
        ds = make_ds()
        ds["state"].values[1, 2, :2] = [np.nan, np.inf]
        assert self.problems(ds) == ["variable 'state' has 2 of 120 values NaN or inf"]

    def test_every_problem_listed(self):
        ds = make_ds()
        ds.attrs["schema_version"] = 99
        ds = ds.assign(valid=ds.valid.astype(np.float32), output=ds.output.transpose())
        ds = ds.assign_coords(time=ds.time * 2)
        problems = self.problems(ds)
        text = "\n".join(problems)
        assert "unsupported schema_version 99; expected 1" in text
        assert "'valid' has dtype float32; expected bool" in text
        assert "'output' has dims ('output_channel', 'time', 'trial')" in text
        assert "coordinate 'time'" in text
        assert len(problems) == 4

    def test_wrong_schema_value(self):
        ds = make_ds()
        ds.attrs["schema"] = "something.else"
        assert self.problems(ds) == [
            "attribute 'schema' is 'something.else'; expected 'neurosim.trajectories'"
        ]

    def test_target_dtype_must_match_kind(self):
        ds = make_ds()
        ds["target"] = ds.target.astype(np.float32)
        assert "expected integer for target_kind 'class'" in self.problems(ds)[0]


@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_covariates_round_trip_and_rebuild_the_batch(tmp_path, suffix):
    from neurosim import batch_from_trajectories

    rng = np.random.default_rng(0)
    b, t, n = 3, 5, 4
    z = np.zeros((b, t, n), np.float32)
    cov = {
        "position": rng.uniform(0, 2.2, size=(b, t, 2)).astype(np.float32),
        "head_direction": rng.uniform(-np.pi, np.pi, size=(b, t)),
        "init_code": rng.random((b, 7)).astype(np.float32),
    }
    ds = build_trajectories(
        state=z, inputs=z[..., :2], outputs=z[..., :3], targets=np.zeros((b, t), np.int64),
        mask=np.ones((b, t), np.float32), valid=np.ones((b, t), bool), dt=20.0,
        trials=pd.DataFrame({"k": np.arange(b)}), unit_coords={"module": ["m"] * n},
        covariates=cov,
    )  # fmt: skip
    assert ds["position"].dims == ("trial", "time", "space")
    assert list(ds["space"].values) == ["x", "y"]
    assert ds["head_direction"].dims == ("trial", "time")
    assert ds["init_code"].dims == ("trial", "init_code_dim1")
    back = load(save(ds, tmp_path / f"c{suffix}"))
    rebuilt = batch_from_trajectories(back)
    assert set(rebuilt.covariates) == set(cov)
    for name, arr in cov.items():
        np.testing.assert_array_equal(rebuilt.covariates[name], arr)
    with pytest.raises(ValueError, match=r"covariates\['state'\]"):
        build_trajectories(
            state=z, inputs=z, outputs=z, targets=np.zeros((b, t), np.int64),
            mask=np.ones((b, t), np.float32), valid=np.ones((b, t), bool), dt=20.0,
            trials=pd.DataFrame({"k": np.arange(b)}), unit_coords={"module": ["m"] * n},
            covariates={"state": z},
        )  # fmt: skip
