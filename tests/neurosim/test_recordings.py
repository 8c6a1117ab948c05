"""load_recording from numpy arrays, xarray data, trajectories and netCDF/zarr files."""

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import neurosim
from neurosim._recording_sources import load_recording
from neurosim._recordings import RecordingError, make_recording
from neurosim._trajectories import build_trajectories


def counts(shape=(4, 30, 5), seed=0):
    return np.random.default_rng(seed).poisson(2.0, size=shape)


class TestArrays:
    def test_any_dim_order(self):
        data = counts()  # trial, time, unit
        for order in [(0, 1, 2), (1, 2, 0), (2, 0, 1), (1, 0, 2)]:
            dims = tuple(np.array(["trial", "time", "unit"])[list(order)])
            rec = load_recording(data.transpose(order), dims=dims, dt=5.0)
            np.testing.assert_array_equal(rec.activity.values, data)
        assert rec.attrs["kind"] == "counts" and rec.time.values[:3].tolist() == [0.0, 5.0, 10.0]

    def test_two_dims_is_one_trial_and_floats_are_rates(self):
        data = np.random.default_rng(1).normal(size=(5, 40)).astype(np.float32)  # unit, time
        rec = load_recording(data, dims=("unit", "time"), dt=2.0, time_offset=-10.0)
        assert rec.activity.shape == (1, 40, 5) and rec.attrs["kind"] == "rates"
        np.testing.assert_array_equal(rec.activity.values[0], data.T)
        assert rec.time.values[0] == -10.0

    def test_dims_must_name_each_axis(self):
        with pytest.raises(ValueError, match=r"dims=\('trial', 'time'\) names 2 axes .* 3"):
            load_recording(counts(), dims=("trial", "time"), dt=1.0)
        with pytest.raises(ValueError, match="dims is required"):
            load_recording(counts(), dt=1.0)
        with pytest.raises(ValueError, match="name each axis once"):
            load_recording(counts(), dims=("trial", "time", "neuron"), dt=1.0)
        with pytest.raises(ValueError, match="dt .* is required"):
            load_recording(counts(), dims=("trial", "time", "unit"))
        with pytest.raises(ValueError, match="align_to does not apply"):
            load_recording(counts(), dims=("trial", "time", "unit"), dt=1.0, align_to="x")

    def test_bad_values_name_where(self):
        rates = np.ones((3, 4, 2))
        rates[2, 1, 1] = np.nan
        with pytest.raises(RecordingError, match=r"NaN or inf at 1 entries: \(trial 2, .*unit 1\)"):
            load_recording(rates, dims=("trial", "time", "unit"), dt=1.0)
        rates[2, 1, 1] = np.inf
        with pytest.raises(RecordingError, match="NaN or inf"):
            load_recording(rates, dims=("trial", "time", "unit"), dt=1.0)
        negative = counts()
        negative[1, 3, 0] = -1
        with pytest.raises(RecordingError, match=r"counts must be >= 0.*\(trial 1, time bin 3"):
            load_recording(negative, dims=("trial", "time", "unit"), dt=1.0)

    def test_tables_add_coordinates_and_must_match(self):
        trials = pd.DataFrame({"coherence": [0.1, 0.2, 0.3, 0.4], "side": list("lrlr")})
        units = {"area": list("aabbc")}
        rec = load_recording(
            counts(), dims=("trial", "time", "unit"), dt=1.0, trials=trials, units=units
        )
        assert rec.side.values.tolist() == list("lrlr") and rec.area.dims == ("unit",)
        with pytest.raises(RecordingError, match="trials has 3 rows but the data has 4 trials"):
            load_recording(counts(), dims=("trial", "time", "unit"), dt=1.0, trials=trials[:3])
        with pytest.raises(RecordingError, match="units has 2 rows but the data has 5 units"):
            load_recording(counts(), dims=("trial", "time", "unit"), dt=1.0, units={"a": [1, 2]})

    def test_selection_and_window(self):
        data = counts()
        rec = load_recording(
            data,
            dims=("trial", "time", "unit"),
            dt=5.0,
            time_offset=-50.0,
            trials=[3, 1],
            units=np.array([True, False, True, False, False]),
            window=(-20, 30),
        )
        np.testing.assert_array_equal(rec.activity.values, data[[3, 1]][:, 6:16][:, :, [0, 2]])
        assert rec.time.values[0] == -20.0 and rec.trial_label.values.tolist() == [3, 1]
        assert rec.unit_label.values.tolist() == [0, 2]
        with pytest.raises(RecordingError, match=r"lie within the data's time axis \[-50, 100\)"):
            load_recording(
                data, dims=("trial", "time", "unit"), dt=5.0, time_offset=-50.0, window=(0, 200)
            )
        with pytest.raises(ValueError, match="integers 0..3"):
            load_recording(data, dims=("trial", "time", "unit"), dt=5.0, trials=[4])


class TestXarray:
    def test_dataarray_with_mapped_dims_and_time_coordinate(self):
        data = counts((5, 30, 4)).astype(np.float64) / 7  # unit, time, trial
        da = xr.DataArray(
            data,
            dims=("neuron", "bin", "rep"),
            coords={"bin": -100.0 + 10.0 * np.arange(30), "depth": ("neuron", np.arange(5.0))},
        )
        da = da.assign_coords(stim=("rep", ["a", "b", "a", "b"]))
        rec = load_recording(da, dims={"neuron": "unit", "bin": "time", "rep": "trial"})
        assert rec.attrs["dt"] == 10.0 and rec.time.values[0] == -100.0
        np.testing.assert_allclose(rec.activity.values, data.transpose(2, 1, 0), rtol=1e-6)
        assert rec.stim.values.tolist() == ["a", "b", "a", "b"] and rec.depth.dims == ("unit",)
        with pytest.raises(ValueError, match="dt=5.0 ms but the 'time' coordinate steps by 10"):
            load_recording(da, dims={"neuron": "unit", "bin": "time", "rep": "trial"}, dt=5.0)
        with pytest.raises(ValueError, match=r"dims \('neuron', 'bin', 'rep'\)"):
            load_recording(da)

    def test_dataset_variable_and_named_inputs(self):
        ds = xr.Dataset(
            {
                "spikes": (("trial", "time", "unit"), counts((2, 6, 3))),
                "stimulus": (("trial", "time"), np.ones((2, 6))),
            }
        )
        rec = load_recording(ds, variable="spikes", dt=1.0, inputs="stimulus")
        assert rec.input.shape == (2, 6, 1) and rec.attrs["kind"] == "counts"
        with pytest.raises(
            ValueError, match=r"variable=; the dataset holds \['spikes', 'stimulus'\]"
        ):
            load_recording(ds, dt=1.0)
        with pytest.raises(ValueError, match=r"no variable \['speed'\]"):
            load_recording(ds, variable="spikes", dt=1.0, behaviour="speed")

    def test_a_recording_passes_through_and_round_trips_netcdf(self, tmp_path):
        rec = make_recording(
            counts(),
            dt=5.0,
            trials=pd.DataFrame({"coherence": np.arange(4.0), "label": list("abcd")}),
            unit_coords={"unit_id": np.arange(5) + 10},
            inputs=np.ones((4, 30, 2)),
            time_offset=-25.0,
            excluded=[{"what": "trial 9", "why": "test"}],
        )
        xr.testing.assert_identical(load_recording(rec), rec)
        rec.to_netcdf(tmp_path / "rec.nc", engine="h5netcdf")
        back = load_recording(tmp_path / "rec.nc")
        xr.testing.assert_identical(back, rec)
        assert json.loads(back.attrs["excluded"]) == [{"what": "trial 9", "why": "test"}]
        as_objects = rec.assign_coords(label=rec.label.astype(object))  # vlen strings in zarr 3
        as_objects.to_zarr(tmp_path / "rec.zarr", consolidated=False)
        np.testing.assert_array_equal(
            load_recording(tmp_path / "rec.zarr").label.values, list("abcd")
        )
        with pytest.raises(ValueError, match="dt=1.0 ms but the source was recorded at dt=5.0"):
            load_recording(rec, dt=1.0)

    def test_damaged_and_unknown_sources(self, tmp_path):
        (tmp_path / "bad.nc").write_bytes(b"not a netcdf file")
        with pytest.raises(RecordingError, match="damaged or is not a netCDF"):
            load_recording(tmp_path / "bad.nc")
        (tmp_path / "x.csv").write_text("1,2")
        with pytest.raises(ValueError, match="use .nwb"):
            load_recording(tmp_path / "x.csv")
        with pytest.raises(FileNotFoundError):
            load_recording(tmp_path / "missing.nc")
        with pytest.raises(TypeError, match="got object"):
            load_recording(object())


def trajectories(b=3, t=8, n=4):
    rng = np.random.default_rng(0)
    z = rng.normal(size=(b, t, n)).astype(np.float32)
    return build_trajectories(
        state=z,
        inputs=rng.normal(size=(b, t, 2)).astype(np.float32),
        outputs=np.zeros((b, t, 2), np.float32),
        targets=rng.integers(0, 2, size=(b, t)),
        mask=np.ones((b, t), np.float32),
        valid=np.ones((b, t), bool),
        dt=20.0,
        trials=pd.DataFrame({"ground_truth": [0, 1, 1][:b]}),
        unit_coords={"module": ["a", "a", "b", "b"][:n]},
        attrs={"paradigm": "neurogym/PerceptualDecisionMaking-v0"},
    )


class TestTrajectories:
    def test_state_becomes_rates_and_input_comes_along(self, tmp_path):
        ds = trajectories()
        rec = load_recording(ds, behaviour="target")
        np.testing.assert_array_equal(rec.activity.values, ds.state.values)
        np.testing.assert_array_equal(rec.input.values, ds.input.values)
        np.testing.assert_array_equal(rec.behaviour.values[..., 0], ds.target.values)
        assert rec.attrs["kind"] == "rates" and rec.attrs["dt"] == 20.0
        assert rec.ground_truth.values.tolist() == [0, 1, 1] and rec.module.dims == ("unit",)
        assert rec.attrs["paradigm"] == "neurogym/PerceptualDecisionMaking-v0"
        neurosim.save(ds, tmp_path / "traj.nc")
        xr.testing.assert_identical(load_recording(tmp_path / "traj.nc", behaviour="target"), rec)

    def test_perturbation_conditions_must_be_picked(self):
        ds = trajectories()
        ds = xr.concat([ds, ds], dim="condition").assign_coords(condition=["none", "lesion"])
        with pytest.raises(ValueError, match=r"pick one first.*\['none', 'lesion'\]"):
            load_recording(ds)
