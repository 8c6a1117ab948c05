"""NWB in and out: binning Units spike times into aligned trials, validation, export round trip."""

import sys

import numpy as np
import pandas as pd
import pytest

pynwb = pytest.importorskip("pynwb")
from pynwb.testing.mock.ecephys import mock_ElectrodeGroup  # noqa: E402
from pynwb.testing.mock.file import mock_NWBFile  # noqa: E402
from pynwb.testing.mock.ophys import mock_RoiResponseSeries  # noqa: E402

from neurosim._binning import bin_spike_times  # noqa: E402
from neurosim._nwb import RecordingWarning  # noqa: E402
from neurosim._nwb_export import export_nwb  # noqa: E402
from neurosim._recording_sources import load_recording  # noqa: E402
from neurosim._recordings import RecordingError, make_recording  # noqa: E402


def session(spikes, trials=None, unit_columns=None, **columns):
    """An in-memory NWBFile: one unit per spike list, one trial per row of ``trials``."""
    nwb = mock_NWBFile()
    for name in unit_columns or {}:
        nwb.add_unit_column(name, name)
    for i, times in enumerate(spikes):
        extra = {k: v[i] for k, v in (unit_columns or {}).items()}
        nwb.add_unit(spike_times=list(times), id=100 + i, **extra)
    if trials is not None:
        for name in trials.columns.drop(["start_time", "stop_time"]):
            nwb.add_trial_column(name, name)
        for _, row in trials.iterrows():
            nwb.add_trial(**row.to_dict())
    return nwb


TWO_TRIALS = pd.DataFrame(
    {
        "start_time": [0.1, 1.1],
        "stop_time": [0.13, 1.13],
        "stim_on_time": [0.11, 1.12],
        "coherence": [0.5, -0.5],
    }
)
SPIKES = [[0.100, 0.105, 0.110, 0.125, 0.2999], [0.3, 1.1, 1.11, 1.12999]]


class TestBinning:
    def test_counts_by_hand_with_spikes_on_edges(self):
        rec = load_recording(session(SPIKES, TWO_TRIALS), dt=10.0)
        # trial 0 bins [0.10, 0.11) [0.11, 0.12) [0.12, 0.13): 0.110 starts bin 1
        assert rec.activity.values[:, :, 0].tolist() == [[2, 1, 1], [0, 0, 0]]
        # trial 1 from 1.10: 1.10 starts bin 0, 1.11 starts bin 1, 1.12999 is in bin 2
        assert rec.activity.values[:, :, 1].tolist() == [[0, 0, 0], [1, 1, 1]]
        assert rec.time.values.tolist() == [0.0, 10.0, 20.0]
        assert rec.attrs["kind"] == "counts" and rec.activity.dtype == np.int64

    def test_aligned_to_an_event_column_with_a_window(self):
        rec = load_recording(
            session(SPIKES, TWO_TRIALS), dt=10.0, align_to="stim_on_time", window=(-20, 10)
        )
        assert rec.time.values.tolist() == [-20.0, -10.0, 0.0]
        # trial 0, event 0.11: bins [0.09, 0.10) [0.10, 0.11) [0.11, 0.12)
        assert rec.activity.values[0, :, 0].tolist() == [0, 2, 1]
        # trial 1, event 1.12: 1.10, 1.11 and 1.12999 start or fall in one bin each
        assert rec.activity.values[1, :, 1].tolist() == [1, 1, 1]
        assert rec.coherence.values.tolist() == [0.5, -0.5]
        assert rec.trial_id.values.tolist() == [0, 1]

    def test_counts_sum_to_the_spikes_inside_each_window(self):
        rng = np.random.default_rng(3)
        spikes = [np.sort(rng.uniform(0, 20, size=rng.integers(50, 400))) for _ in range(6)]
        events = np.sort(rng.uniform(1, 19, size=25))  # windows overlap: a spike counts twice
        counts = bin_spike_times(spikes, events, start_ms=-250.0, dt=5.0, n_bins=140)
        for n, times in enumerate(spikes):
            inside = [((times >= e - 0.25) & (times < e + 0.45)).sum() for e in events]
            assert counts[:, :, n].sum(axis=1).tolist() == inside

    def test_unit_and_trial_metadata_become_coordinates(self):
        nwb = session(SPIKES, TWO_TRIALS, unit_columns={"quality": ["good", "mua"]})
        group = mock_ElectrodeGroup(nwbfile=nwb)
        nwb.units.add_column("electrode_group", "group", data=[group, group])
        rec = load_recording(nwb, dt=10.0, units=[1])
        assert rec.unit_id.values.tolist() == [101]
        assert rec.quality.values.tolist() == ["mua"]
        assert rec.electrode_group.values.tolist() == [group.name]
        assert rec.location.values.tolist() == [group.location]

    def test_trial_selection_and_a_file_without_trials(self):
        rec = load_recording(session(SPIKES, TWO_TRIALS), dt=10.0, trials=[1])
        assert rec.trial_id.values.tolist() == [1] and rec.activity.shape == (1, 3, 2)
        whole = load_recording(session(SPIKES), dt=100.0)  # one trial: 0 s to the last spike
        assert whole.activity.shape == (1, 12, 2)  # 1.12999 s is in the 12th bin
        assert whole.activity.values.sum() == 9 and whole.attrs["excluded"] == "[]"
        edge = load_recording(session([[0.0, 0.2]]), dt=100.0)  # a spike on the last edge
        assert edge.activity.values[0, :, 0].tolist() == [1, 0, 1]


class TestValidation:
    def test_unsorted_spike_times_name_the_unit(self):
        with pytest.raises(RecordingError, match=r"unit row 1 \(id 101\) are not sorted"):
            load_recording(session([[0.1, 0.2], [0.5, 0.3]], TWO_TRIALS), dt=10.0)

    def test_nan_spike_times_name_the_unit(self):
        with pytest.raises(RecordingError, match=r"unit row 0 \(id 100\) hold NaN"):
            load_recording(session([[0.1, np.nan]], TWO_TRIALS), dt=10.0)

    def test_inconsistent_ragged_index(self):
        nwb = session(SPIKES, TWO_TRIALS)
        nwb.units.spike_times_index.data[-1] = 99  # points past the end of spike_times
        with pytest.raises(RecordingError, match=r"spike_times_index.*len\(spike_times\)=9"):
            load_recording(nwb, dt=10.0)

    def test_missing_units_table_lists_the_time_series(self):
        nwb = mock_NWBFile()
        mock_RoiResponseSeries(nwbfile=nwb, name="dff")
        with pytest.raises(RecordingError, match=r"no Units table.*series=.*ophys/dff"):
            load_recording(nwb, dt=10.0)

    def test_missing_event_column_lists_the_columns(self):
        with pytest.raises(RecordingError, match=r"'go_cue_time'.*\['trial_id', 'start_time'"):
            load_recording(session(SPIKES, TWO_TRIALS), dt=10.0, align_to="go_cue_time")

    def test_options_that_do_not_fit(self):
        nwb = session(SPIKES, TWO_TRIALS)
        with pytest.raises(ValueError, match="dt .* is required"):
            load_recording(nwb)
        with pytest.raises(ValueError, match="whole number of dt=10 ms bins"):
            load_recording(nwb, dt=10.0, window=(0, 25))
        with pytest.raises(ValueError, match="kind='rates'"):
            load_recording(nwb, dt=10.0, kind="rates")
        with pytest.raises(ValueError, match="dims does not apply to NWB"):
            load_recording(nwb, dt=10.0, dims=("trial", "time", "unit"))
        with pytest.raises(RecordingError, match="no trials table"):
            load_recording(session(SPIKES), dt=10.0, align_to="start_time")
        uneven = TWO_TRIALS.assign(stop_time=[0.13, 1.15])
        with pytest.raises(ValueError, match="pass window="):
            load_recording(session(SPIKES, uneven), dt=10.0)


class TestExcludedTrials:
    def trials(self):  # trial 0's window starts before the recording; trial 2 has no event
        return pd.DataFrame(
            {
                "start_time": [0.0, 1.0, 2.0, 3.0],
                "stop_time": [0.5, 1.5, 2.5, 3.5],
                "stim_on_time": [0.05, 1.2, np.nan, 3.2],
            }
        )

    def test_reported_in_attrs_and_warned(self):
        nwb = session([[0.1, 1.25, 3.25, 3.9]], self.trials())
        with pytest.warns(RecordingWarning, match="excluded 2 of 4 trials"):
            rec = load_recording(nwb, dt=50.0, align_to="stim_on_time", window=(-100, 200))
        assert rec.trial_id.values.tolist() == [1, 3]
        assert rec.activity.values.sum(axis=(1, 2)).tolist() == [1, 1]
        excluded = pd.read_json(__import__("io").StringIO(rec.attrs["excluded"]))
        assert excluded["what"].tolist() == ["trial 0 (id 0)", "trial 2 (id 2)"]
        assert "reaches outside the recording" in excluded["why"][0]
        assert "'stim_on_time' is nan" in excluded["why"][1]

    def test_raise_instead(self):
        nwb = session([[0.1, 3.9]], self.trials())
        with pytest.raises(RecordingError, match=r"trial 0 \(id 0\): its window"):
            load_recording(
                nwb, dt=50.0, align_to="stim_on_time", window=(-100, 200), on_outside="raise"
            )

    def test_all_excluded_is_an_error(self):
        nwb = session([[0.1, 3.9]], self.trials())
        with pytest.raises(RecordingError, match="all trials were excluded"):
            load_recording(nwb, dt=50.0, align_to="stim_on_time", window=(-5000, 0))

    def test_units_not_observed_exclude_the_trial(self):
        nwb = mock_NWBFile()
        nwb.add_unit(spike_times=[0.1, 1.2], obs_intervals=[[0.0, 4.0]], id=1)
        nwb.add_unit(spike_times=[0.2], obs_intervals=[[0.0, 1.0]], id=2)
        for start in (0.0, 2.0):
            nwb.add_trial(start_time=start, stop_time=start + 0.5)
        with pytest.warns(RecordingWarning):
            rec = load_recording(nwb, dt=100.0)
        assert rec.trial_id.values.tolist() == [0]
        assert "units [2] were not observed" in rec.attrs["excluded"]


class TestContinuous:
    def test_roi_response_series_mean_within_bins(self):
        nwb = mock_NWBFile()
        data = np.arange(40.0).reshape(20, 2) ** 1.5  # 100 Hz: samples at 0, 10, ..., 190 ms
        mock_RoiResponseSeries(nwbfile=nwb, name="dff", data=data, rate=100.0, starting_time=0.0)
        nwb.add_trial(start_time=0.02, stop_time=0.08)
        nwb.add_trial(start_time=0.1, stop_time=0.16)
        rec = load_recording(nwb, series="dff", dt=20.0)
        assert rec.attrs["kind"] == "rates" and rec.activity.shape == (2, 3, 2)
        want = np.stack([data[s : s + 6].reshape(3, 2, 2).mean(axis=1) for s in (2, 10)])
        np.testing.assert_allclose(rec.activity.values, want.astype(np.float32))
        assert rec.unit_id.values.tolist() == [0, 1]

    def test_time_series_as_activity_or_behaviour(self):
        nwb = session([[0.01, 0.02]])
        t = np.array([0.0, 0.004, 0.011, 0.012, 0.019, 0.025])
        speed = pynwb.TimeSeries(name="speed", data=np.arange(6.0), unit="m/s", timestamps=t)
        nwb.add_acquisition(speed)
        rec = load_recording(nwb, series="speed", window=(0, 20), dt=10.0)
        np.testing.assert_allclose(rec.activity.values[0, :, 0], [0.5, 3.0])
        rec = load_recording(nwb, dt=10.0, window=(0, 20), behaviour="speed")
        np.testing.assert_allclose(rec.behaviour.values[0, :, 0], [0.5, 3.0])

    def test_bins_without_samples_and_unknown_series(self):
        nwb = mock_NWBFile()
        mock_RoiResponseSeries(nwbfile=nwb, name="dff", data=np.ones((20, 2)), rate=50.0)
        with pytest.raises(RecordingError, match=r"'dff' \(sampled every 20 ms\) has no sample"):
            load_recording(nwb, series="dff", dt=10.0)
        with pytest.raises(RecordingError, match=r"no TimeSeries called 'f'.*\['ophys/dff'\]"):
            load_recording(nwb, series="f")


def random_recording(seed=0, kind="counts"):
    rng = np.random.default_rng(seed)
    trials = pd.DataFrame(
        {
            "coherence": rng.choice([-0.5, 0.1, 0.5], 6).astype(np.float32),
            "choice": rng.integers(0, 2, 6),
            "condition": rng.choice(["left", "right"], 6),
            "correct": rng.random(6) > 0.3,
        }
    )
    activity = rng.poisson(rng.gamma(1.0, 2.0, size=(6, 25, 7)))  # up to ~20 spikes a bin
    if kind == "rates":
        activity = rng.gamma(1.0, 2.0, size=(6, 25, 7)).astype(np.float32)
    return make_recording(
        activity,
        dt=4.0,
        trials=trials,
        time_offset=-30.0,
        unit_coords={"unit_id": np.arange(7) * 3 + 1, "area": list("aabbbcc")},
        inputs=rng.normal(size=(6, 25, 2)),
        behaviour=rng.normal(size=(6, 25, 1)),
    )


class TestExport:
    def test_round_trip_is_exact(self, tmp_path):
        rec = random_recording()
        path = export_nwb(rec, tmp_path / "session.nwb", gap_ms=0.0)
        back = load_recording(
            path,
            dt=4.0,
            align_to="event_time",
            window=(-30, 70),
            inputs="input",
            behaviour="behaviour",
        )
        np.testing.assert_array_equal(back.activity.values, rec.activity.values)
        np.testing.assert_array_equal(back.time.values, rec.time.values)
        for name in ("coherence", "choice", "condition", "correct", "unit_id", "area"):
            assert back[name].dtype == rec[name].dtype
            np.testing.assert_array_equal(back[name].values, rec[name].values)
        np.testing.assert_array_equal(back.input.values, rec.input.values)
        np.testing.assert_array_equal(back.behaviour.values, rec.behaviour.values)
        default = load_recording(path, dt=4.0, align_to="event_time")  # window from the trials
        np.testing.assert_array_equal(default.activity.values, rec.activity.values)

    def test_spikes_lie_strictly_inside_their_bins(self, tmp_path):
        rec = make_recording(np.array([[[3], [0], [1]]]), dt=10.0)
        path = export_nwb(rec, tmp_path / "s.nwb", gap_ms=50.0)
        with pynwb.NWBHDF5IO(str(path), "r") as io:
            times = io.read().units["spike_times"][0]
        np.testing.assert_allclose(times, [0.05 + t for t in (1 / 600, 0.005, 5 / 600, 0.025)])

    def test_rates_become_seeded_poisson_spikes(self, tmp_path):
        rec = random_recording(kind="rates")
        first = export_nwb(rec, tmp_path / "a.nwb", rate_scale=50.0, seed=4)
        second = export_nwb(rec, tmp_path / "b.nwb", rate_scale=50.0, seed=4)
        a, b = (load_recording(p, dt=4.0, align_to="event_time") for p in (first, second))
        np.testing.assert_array_equal(a.activity.values, b.activity.values)
        expected = rec.activity.values.astype(float).sum() * 50.0 * 4.0 / 1000.0
        assert abs(a.activity.values.sum() - expected) < 4 * np.sqrt(expected)
        with pytest.raises(ValueError, match="pass rate_scale"):
            export_nwb(rec, tmp_path / "c.nwb")
        with pytest.raises(ValueError, match="rates must be >= 0"):
            export_nwb(rec.assign(activity=-rec.activity), tmp_path / "c.nwb", rate_scale=1.0)

    def test_a_failed_write_leaves_the_old_file(self, tmp_path, monkeypatch):
        path = tmp_path / "session.nwb"
        path.write_bytes(b"old")

        def fail(self, *args, **kwargs):
            raise OSError("disk full")

        monkeypatch.setattr(pynwb.NWBHDF5IO, "write", fail)
        with pytest.raises(OSError, match="disk full"):
            export_nwb(random_recording(), path)
        assert path.read_bytes() == b"old"
        assert [p.name for p in tmp_path.iterdir()] == ["session.nwb"]
        with pytest.raises(FileExistsError):
            export_nwb(random_recording(), path, overwrite=False)


def test_missing_pynwb_gives_the_install_hint(tmp_path, monkeypatch):
    path = tmp_path / "x.nwb"
    path.write_bytes(b"")
    monkeypatch.setitem(sys.modules, "pynwb", None)  # import pynwb now raises ImportError
    with pytest.raises(ImportError, match=r"pip install 'neurosim\[nwb\]'"):
        load_recording(path, dt=10.0)
    with pytest.raises(ImportError, match=r"pip install 'neurosim\[nwb\]'"):
        export_nwb(random_recording(), tmp_path / "y.nwb")
