"""The Brian2 backend: analytic f–I curve, Poisson rates, binning, seeds, batching, silencing."""

import json

import numpy as np
import pandas as pd
import pytest

import neurosim
import paradigms
from neurosim.spiking import (
    LIFPopulation,
    PoissonPopulation,
    lif_rate,
    poisson_trains,
    run_spiking,
)
from paradigms import TrialBatch


def const_batch(values, n_steps=10, dt=100.0):
    """Trials of constant inputs ``values [B, I]`` for ``n_steps`` steps of ``dt`` ms."""
    values = np.atleast_2d(np.asarray(values, dtype=np.float32))
    b = values.shape[0]
    inputs = np.repeat(values[:, None, :], n_steps, axis=1)
    return TrialBatch(
        inputs=inputs,
        targets=np.zeros((b, n_steps), np.int64),
        mask=np.ones((b, n_steps), np.float32),
        trials=pd.DataFrame({"level": values[:, 0].astype(np.float64)}),
        dt=dt,
        valid=np.ones((b, n_steps), bool),
    )


def spikes_of(ds, trial, unit):
    sel = (ds.spike_trial.values == trial) & (ds.spike_unit.values == unit)
    return ds.spike_time.values[sel]


class TestLIFAnalytic:
    DRIVES = np.array([10.0, 19.9, 22.0, 30.0, 50.0, 100.0])  # mV; threshold 20 mV

    def test_interspike_interval_matches_analytic_f_i_curve(self):
        pop = LIFPopulation(len(self.DRIVES), w_in=self.DRIVES[:, None])
        ds = run_spiking(pop, const_batch([[1.0]], n_steps=10), seed=0)
        rate = lif_rate(self.DRIVES)
        for k, r in enumerate(rate):
            times = spikes_of(ds, 0, k)
            if r == 0:
                assert times.size == 0, f"drive {self.DRIVES[k]} mV is below rheobase"
                continue
            isi = np.diff(times).mean()
            # exact (exponential-Euler) integration: threshold crossings land on the grid
            assert abs(isi - 1000.0 / r) <= 0.1 + 1e-9, (self.DRIVES[k], isi, 1000.0 / r)

    def test_binned_rate_matches_analytic_rate(self):
        pop = LIFPopulation(len(self.DRIVES), w_in=self.DRIVES[:, None], t_ref=5.0)
        ds = run_spiking(pop, const_batch([[1.0]], n_steps=10), seed=0)
        want = lif_rate(self.DRIVES, t_ref=5.0)
        got = ds.state.isel(trial=0).mean("time").values
        # 1 s of spikes: +-1 spike for the first latency, +-1 step of 0.1 ms per interval
        assert np.all(np.abs(got - want) <= 2.0 + want * want * 1e-4), (got, want)
        assert got[0] == got[1] == 0 and np.all(got[2:] > 0)

    def test_lif_rate_is_zero_at_and_below_rheobase_and_increasing_above(self):
        r = lif_rate(np.array([0.0, 20.0, 20.5, 25.0, 40.0]))
        assert r[0] == 0 and r[1] == 0
        assert np.all(np.diff(r[1:]) > 0)
        assert lif_rate(1e9, t_ref=2.0) == pytest.approx(500.0, rel=1e-3)


class TestPoisson:
    def test_population_delivers_nominal_rate(self):
        rate, n, sim_dt = 40.0, 50, 0.1
        pop = PoissonPopulation(n, w_in=rate)
        ds = run_spiking(pop, const_batch([[1.0], [0.5]], n_steps=10), seed=3, sim_dt=sim_dt)
        n_bins = 10 * 100.0 / sim_dt
        for trial, nominal in enumerate([rate, rate / 2]):
            p = nominal * sim_dt * 1e-3
            total = int(ds.spike_count.isel(trial=trial).sum())
            mean, sd = n * n_bins * p, np.sqrt(n * n_bins * p * (1 - p))
            assert abs(total - mean) < 4 * sd, (trial, total, mean, sd)
        pop_rate = ds.population_rate.mean("time").values[:, 0]
        np.testing.assert_allclose(pop_rate, [rate, rate / 2], rtol=0.1)

    def test_nominal_rates_follow_inputs_and_clip_at_zero(self):
        pop = PoissonPopulation(2, w_in=[[10.0], [-10.0]], bias=5.0)
        r = pop.rates(np.ones((1, 3, 1)))
        np.testing.assert_array_equal(r[0, :, 0], 15.0)
        np.testing.assert_array_equal(r[0, :, 1], 0.0)


class TestSpikeRecord:
    @pytest.fixture(scope="class")
    def ds(self):
        task = paradigms.make("neurogym/PerceptualDecisionMaking-v0")
        pop = PoissonPopulation(6, w_in=30.0, bias=2.0, w_out=np.ones((task.n_outputs, 6)))
        return run_spiking(pop, task, n_trials=3, seed=1)

    def test_counts_sum_to_spike_total(self, ds):
        assert ds.sizes["spike"] > 100
        assert int(ds.spike_count.sum()) == ds.sizes["spike"]

    def test_counts_rebinned_from_exact_times(self, ds):
        step = np.rint(ds.spike_time.values / 0.1).astype(int)
        k = step // int(round(ds.attrs["dt"] / 0.1))
        counts = np.zeros(ds.spike_count.shape, int)
        np.add.at(counts, (ds.spike_trial.values, k, ds.spike_unit.values), 1)
        np.testing.assert_array_equal(counts, ds.spike_count.values)
        np.testing.assert_allclose(ds.state.values, counts * 1000.0 / ds.attrs["dt"], rtol=1e-6)

    def test_spikes_sorted_and_in_range(self, ds):
        key = np.stack([ds.spike_trial, ds.spike_time, ds.spike_unit]).T
        assert np.all(np.diff(np.lexsort(key.T[::-1])) == 1)
        assert ds.spike_time.min() >= 0 and ds.spike_time.max() < ds.sizes["time"] * ds.attrs["dt"]
        assert set(np.unique(ds.spike_unit)) <= set(range(6))

    def test_population_rate_is_mean_of_unit_rates(self, ds):
        np.testing.assert_allclose(
            ds.population_rate.sel(population="poisson"), ds.state.mean("unit"), rtol=1e-6
        )

    def test_readout_output(self, ds):
        np.testing.assert_allclose(
            ds.output.values, np.repeat(ds.state.sum("unit").values[..., None], 3, -1), rtol=1e-5
        )

    def test_validates_and_round_trips(self, ds, tmp_path):
        neurosim.validate_trajectories(ds)
        back = neurosim.load(neurosim.save(ds, tmp_path / "spikes.nc"))
        assert back.identical(ds)
        assert json.loads(back.attrs["spiking"])["target"] == "numpy"

    def test_no_spikes_round_trips(self, tmp_path):
        ds = run_spiking(LIFPopulation(2), const_batch([[1.0]], n_steps=3), seed=0)
        assert ds.sizes["spike"] == 0 and int(ds.spike_count.sum()) == 0
        back = neurosim.load(neurosim.save(ds, tmp_path / "silent.nc"))
        assert back.identical(ds)


class TestSeeds:
    def run(self, seed):
        return run_spiking(PoissonPopulation(5, w_in=50.0), const_batch([[1.0]] * 2, 5), seed=seed)

    def test_same_seed_identical_spikes(self):
        a, b = self.run(7), self.run(7)
        for name in ("spike_time", "spike_trial", "spike_unit"):
            np.testing.assert_array_equal(a[name].values, b[name].values)

    def test_different_seed_different_spikes(self):
        a, b = self.run(7), self.run(8)
        assert a.sizes["spike"] != b.sizes["spike"] or not np.array_equal(
            a.spike_time.values, b.spike_time.values
        )

    def test_global_numpy_random_state_is_left_alone(self):
        np.random.seed(123)  # noqa: NPY002 - the legacy global state is what is checked
        want = np.random.random(3)  # noqa: NPY002
        np.random.seed(123)  # noqa: NPY002
        self.run(7)
        np.testing.assert_array_equal(np.random.random(3), want)  # noqa: NPY002

    def test_trials_are_independent_draws(self):
        a = self.run(7)
        t0, t1 = (a.spike_time.values[a.spike_trial.values == k] for k in (0, 1))
        assert not np.array_equal(t0, t1)


class TestBatched:
    def test_deterministic_network_batched_equals_one_at_a_time(self):
        task = paradigms.make("neurogym/PerceptualDecisionMaking-v0")
        rng = np.random.default_rng(0)
        w_rec = rng.normal(0, 2.0, (8, 8)) * (rng.random((8, 8)) < 0.5)
        pop = LIFPopulation(8, w_in=rng.uniform(0, 40, (8, 3)), w_rec=w_rec, delay=1.0)
        kw = dict(n_trials=3, seed=2, state_monitors=("v",))
        a = run_spiking(pop, task, batched=True, **kw)
        b = run_spiking(pop, task, batched=False, **kw)
        assert a.sizes["spike"] > 50
        for name in ("spike_time", "spike_trial", "spike_unit", "spike_count", "v"):
            np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)
        assert np.any(a.spike_count.sum(("time", "unit")).values != a.spike_count[0].sum().values)

    def test_poisson_batched_matches_one_at_a_time_statistically(self):
        pop = LIFPopulation(10, w_in=6.0, input_mode="poisson", n_poisson=10, rate_scale=100.0)
        batch = const_batch([[1.0]] * 4, n_steps=5)
        a = run_spiking(pop, batch, seed=0, batched=True)
        b = run_spiking(pop, batch, seed=0, batched=False)
        ca, cb = (int(x.spike_count.sum()) for x in (a, b))
        assert ca > 200 and cb > 200
        # counts of a renewal-like process: allow 5 Poisson SDs of the difference
        assert abs(ca - cb) < 5 * np.sqrt(ca + cb), (ca, cb)


class TestPredrawnPoisson:
    """``source="numpy"``: trains drawn per trial from ``(seed, 30, b)`` — exact batching."""

    def test_poisson_population_batched_equals_one_at_a_time(self):
        pop = PoissonPopulation(6, w_in=[[40.0]] * 3 + [[80.0]] * 3, source="numpy")
        batch = const_batch([[1.0], [0.5], [0.2]], n_steps=4)
        a = run_spiking(pop, batch, seed=4, batched=True)
        b = run_spiking(pop, batch, seed=4, batched=False)
        assert a.sizes["spike"] > 100
        for name in ("spike_time", "spike_trial", "spike_unit"):
            np.testing.assert_array_equal(a[name].values, b[name].values)

    def test_trial_does_not_depend_on_its_neighbours(self):
        pop = PoissonPopulation(4, w_in=60.0, source="numpy")
        three = run_spiking(pop, const_batch([[1.0], [0.5], [0.9]], n_steps=3), seed=1)
        two = run_spiking(pop, const_batch([[1.0], [0.5]], n_steps=3), seed=1)
        np.testing.assert_array_equal(three.spike_count[:2].values, two.spike_count.values)

    def test_poisson_driven_lif_batched_equals_one_at_a_time(self):
        pop = LIFPopulation(
            5, w_in=6.0, input_mode="poisson", n_poisson=10, poisson_source="numpy", t_ref=1.0
        )
        batch = const_batch([[1.0], [0.6]], n_steps=4)
        a = run_spiking(pop, batch, seed=0, state_monitors=("v",))
        b = run_spiking(pop, batch, seed=0, batched=False, state_monitors=("v",))
        assert a.sizes["spike"] > 20
        np.testing.assert_array_equal(a.spike_time.values, b.spike_time.values)
        np.testing.assert_array_equal(a.v.values, b.v.values)

    def test_predrawn_trains_have_the_nominal_rate(self):
        rates = np.full((3, 5, 4), 30.0)
        idx, step = poisson_trains(rates, 100.0, 0.1, [0, 1, 2])
        n, p = 3 * 4 * 5000, 30.0 * 1e-4
        assert abs(idx.size - n * p) < 4 * np.sqrt(n * p * (1 - p))
        assert idx.max() < 12 and step.max() < 5000
        again = poisson_trains(rates, 100.0, 0.1, [0, 1, 2])
        np.testing.assert_array_equal(idx, again[0])


class TestSilence:
    def drive(self, **kw):
        pop = LIFPopulation(4, w_in=40.0, modules=["a", "a", "b", "b"])
        return run_spiking(pop, const_batch([[1.0], [0.8]], n_steps=10), seed=0, **kw)

    def test_silenced_units_emit_no_spikes_in_window(self):
        ds = self.drive(silence=([0, 2], (300.0, 700.0)))
        counts = ds.spike_count.values
        assert counts[:, 3:7, [0, 2]].sum() == 0
        assert np.all(counts[:, 3:7, [1, 3]] > 0)
        assert np.all(counts[:, 7:, [0, 2]].sum(1) > 0) and np.all(counts[:, :3, [0, 2]] > 0)
        t = ds.spike_time.values
        silenced = np.isin(ds.spike_unit.values, [0, 2]) & (t >= 300) & (t < 700)
        assert not silenced.any()

    def test_perturbation_lesion_of_a_module(self):
        p = neurosim.Perturbation("module", "lesion", module="a", window=(200.0, 500.0))
        ds = self.drive(perturbation=p)
        assert ds.spike_count.values[:, 2:5, :2].sum() == 0
        assert ds.spike_count.values[:, 2:5, 2:].min() > 0
        assert json.loads(ds.attrs["perturbation"])["module"] == "a"
        assert json.loads(ds.attrs["spiking"])["silenced"][0]["units"] == [0, 1]

    def test_silenced_poisson_population(self):
        ds = run_spiking(
            PoissonPopulation(3, bias=200.0), const_batch([[0.0]], 4), seed=0, silence=([1], None)
        )
        assert (
            ds.spike_count.values[0, :, 1].sum() == 0 and ds.spike_count.values[0, :, 0].sum() > 0
        )

    def test_input_lesion_equals_zero_input_in_window(self):
        pop = LIFPopulation(3, w_in=[[30.0, 0.0], [0.0, 40.0], [20.0, 20.0]])
        batch = const_batch([[1.0, 1.0]], n_steps=6)
        p = neurosim.Perturbation("inputs", "lesion", window=(200.0, 400.0))
        ds = run_spiking(pop, batch, seed=0, perturbation=p)
        zeroed = batch.inputs.copy()
        zeroed[:, 2:4] = 0.0
        ref = run_spiking(pop, const_batch([[1.0, 1.0]], 6), seed=0)
        want = run_spiking(pop, TrialBatch(**{**batch.__dict__, "inputs": zeroed}), seed=0)
        np.testing.assert_array_equal(ds.input.values, zeroed)
        np.testing.assert_array_equal(ds.spike_time.values, want.spike_time.values)
        assert ds.spike_count[:, 2:4].sum() < ref.spike_count[:, 2:4].sum()

    def test_input_noise_and_scale(self):
        pop = LIFPopulation(2, w_in=[[30.0], [60.0]])
        batch = const_batch([[1.0]], n_steps=4)
        noisy = neurosim.Perturbation("inputs", "noise", strength=0.5, units=(0,))
        a, b = (run_spiking(pop, batch, seed=s, perturbation=noisy) for s in (0, 0))
        c = run_spiking(pop, batch, seed=1, perturbation=noisy)
        np.testing.assert_array_equal(a.input.values, b.input.values)
        assert not np.array_equal(a.input.values, c.input.values)
        assert 0.2 < float(np.std(a.input.values - 1.0)) < 0.9
        off = neurosim.Perturbation("inputs", "scale", strength=1.0)
        assert run_spiking(pop, batch, seed=0, perturbation=off).sizes["spike"] == 0
        with pytest.raises(ValueError, match=r"input channels in \[0, 1\)"):
            run_spiking(
                pop, batch, perturbation=neurosim.Perturbation("inputs", "noise", units=(3,))
            )

    def test_unsupported_perturbation_is_refused(self):
        with pytest.raises(ValueError, match="operation='lesion'"):
            self.drive(perturbation=neurosim.Perturbation("units", "noise", units=(0,)))
        with pytest.raises(ValueError, match="accepted: \\['a', 'b'\\]"):
            self.drive(perturbation=neurosim.Perturbation("module", "lesion", module="c"))


class TestErrors:
    def test_bad_arguments_name_field_and_allowed(self):
        batch = const_batch([[1.0]], 2)
        pop = LIFPopulation(2)
        with pytest.raises(ValueError, match="target must be one of"):
            run_spiking(pop, batch, target="gpu")
        with pytest.raises(ValueError, match="sim_dt must be > 0 and divide dt=100.0"):
            run_spiking(pop, batch, sim_dt=0.3)
        with pytest.raises(ValueError, match=r"silence units must lie in \[0, 2\)"):
            run_spiking(pop, batch, silence=([5], None))
        with pytest.raises(ValueError, match="n_trials=3 but the batch has 1"):
            run_spiking(pop, batch, n_trials=3)
        with pytest.raises(ValueError, match="input_mode must be one of"):
            LIFPopulation(2, input_mode="rate")
        with pytest.raises(ValueError, match=r"w_in must be finite with shape \(2, 1\)"):
            run_spiking(LIFPopulation(2, w_in=np.ones((3, 1))), batch)
        with pytest.raises(ValueError, match=r"state_monitors \['mask'\] clash"):
            run_spiking(pop, batch, state_monitors=("mask",))
        with pytest.raises(TypeError, match="SpikingNetwork"):
            run_spiking(object(), batch)


@pytest.mark.slow
@pytest.mark.parametrize("target", ["cython", "cpp_standalone"])
def test_compiled_targets_match_numpy(target, tmp_path):
    pop = LIFPopulation(3, w_in=[[25.0], [30.0], [60.0]], w_rec=np.full((3, 3), 0.5))
    batch = const_batch([[1.0], [0.7]], n_steps=3)
    ref = run_spiking(pop, batch, seed=0)
    got = run_spiking(pop, batch, seed=0, target=target, cache_dir=tmp_path)
    np.testing.assert_array_equal(ref.spike_count.values, got.spike_count.values)
    np.testing.assert_allclose(ref.spike_time.values, got.spike_time.values)
