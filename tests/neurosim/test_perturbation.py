"""Perturbation experiments inside simulate: identity, lesion, clamp, batching, errors."""

import copy

import numpy as np
import pytest
import torch

import neurosim
import paradigms
from neurosim import Perturbation as P
from neurosim._train import seeded_rng
from neurosim.models import RateRNN

PDM = "neurogym/PerceptualDecisionMaking-v0"


@pytest.fixture(scope="module")
def task():
    return paradigms.make(PDM)


@pytest.fixture(scope="module")
def net(task):
    torch.manual_seed(1)
    model = RateRNN(task.n_inputs, 24, task.n_outputs, dt=task.dt, tau=200.0, sigma_rec=0.1)
    with torch.no_grad():
        model.b_out.copy_(torch.tensor([0.0, 0.3, -0.2]))  # a readout with a preferred choice
    return model


@pytest.fixture(scope="module")
def trained(trained_pdm):
    return trained_pdm[0]


def _sim(net, task, perturbation=None, **kw):
    return neurosim.simulate(net, task, 12, seed=4, perturbation=perturbation, **kw)


EVERY_KIND = [
    P("units", "lesion", units=[0, 3]),
    P("module", "clamp", module="rnn", value=0.5),
    P("state", "scale"),
    P("state", "noise"),
    P("units", "kick", units=[1, 2, 5], window=(300, 500)),
    P("inputs", "lesion"),
    P("inputs", "noise", units=[1]),
    P("inputs", "kick"),
    P("weights", "lesion"),
    P("weights", "scale", weights="w_in"),
    P("weights", "noise", module="rnn", window=(200, 800)),
    P("weights", "clamp", value=0.1),
]


class TestIdentity:
    @pytest.mark.parametrize("spec", EVERY_KIND, ids=lambda p: p.name)
    def test_zero_strength_equals_unperturbed_exactly(self, net, task, spec):
        base = _sim(net, task)
        zero = _sim(net, task, P(**{**spec.to_dict(), "strength": 0.0}))
        for var in ("state", "output", "input"):
            np.testing.assert_array_equal(zero[var].values, base[var].values)

    @pytest.mark.parametrize("spec", EVERY_KIND, ids=lambda p: p.name)
    def test_full_strength_changes_the_run(self, net, task, spec):
        base, hit = _sim(net, task), _sim(net, task, spec)
        assert not np.array_equal(hit["state"].values, base["state"].values)


class TestBatched:
    @pytest.mark.parametrize("with_weights", [False, True])
    def test_batched_run_equals_each_condition_alone(self, net, task, with_weights):
        # State and input perturbations batch as rows: bit-identical. Weight perturbations
        # batch through vmap (a batched matmul), which may round differently in float32.
        specs = [p for p in EVERY_KIND if with_weights or p.target != "weights"]
        conditions = [None, *specs]
        both = _sim(net, task, conditions)
        assert both["state"].dims == ("condition", "trial", "time", "unit")
        assert list(both["perturbation"].values) == ["none", *[p.name for p in specs]]
        same = np.testing.assert_array_equal
        if with_weights:
            same = lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)  # noqa: E731
        for i, spec in enumerate(conditions):
            alone = _sim(net, task, spec)
            for var in ("state", "output", "input"):
                same(both[var].values[i], alone[var].values)

    def test_chunked_equals_whole_without_noise(self, net, task):
        # noise is drawn per chunk (as in simulate), so compare deterministic runs
        conditions = [P("state", "lesion", 0.3), P("weights", "scale", 0.5)]
        whole = _sim(net, task, conditions, noise=False)
        chunked = _sim(net, task, conditions, batch_size=5, noise=False)
        np.testing.assert_allclose(whole["state"].values, chunked["state"].values, atol=1e-6)

    def test_result_round_trips_through_a_file(self, net, task, tmp_path):
        ds = _sim(net, task, [None, P("state", "lesion", 0.5)])
        back = neurosim.load(neurosim.save(ds, tmp_path / "p.nc"))
        assert back.equals(ds)

    def test_same_seed_same_numbers(self, net, task):
        spec = [P("state", "noise", 0.2), P("units", "lesion", 0.5, units=list(range(10)))]
        a, b = _sim(net, task, spec), _sim(net, task, spec)
        np.testing.assert_array_equal(a["state"].values, b["state"].values)


class TestOperations:
    def test_lesion_of_every_unit_gives_a_constant_policy(self, trained, task):
        n = 400
        batch = task.batch(n, seeded_rng(7, 10))
        lesioned = neurosim.simulate(trained, task, n, seed=7, perturbation=P("state", "lesion"))
        intact = neurosim.simulate(trained, task, n, seed=7)
        assert float(np.abs(lesioned["state"]).max()) == 0.0
        out = lesioned["output"].values
        np.testing.assert_array_equal(out, np.broadcast_to(out[:1, :1], out.shape))
        perf = task.performance(out, batch).mean()
        choice = int(out[0, 0].argmax())
        masked = batch.targets[batch.mask > 0]
        assert perf == pytest.approx(np.mean(masked == choice))  # one fixed answer: chance
        assert perf <= 0.5 + 3 * np.sqrt(0.25 / n)  # two choices: at most chance
        assert task.performance(intact["output"].values, batch).mean() > 0.75

    def test_clamp_holds_the_value_inside_the_window_only(self, net, task):
        spec = P("units", "clamp", units=[2, 7], value=0.75, window=(300, 700))
        ds, base = _sim(net, task, spec), _sim(net, task)
        inside = (ds.time >= 300) & (ds.time < 700)
        held = ds["state"].isel(unit=[2, 7]).where(inside, drop=True)
        assert (held == 0.75).all()
        before = ds.time < 300
        np.testing.assert_array_equal(
            ds["state"].where(before, drop=True), base["state"].where(before, drop=True)
        )
        assert not (ds["state"].isel(unit=[2, 7]).sel(time=700.0) == 0.75).all()

    def test_lesion_subsets_are_nested_in_strength(self, net, task):
        units = list(range(20))
        small, large = (_sim(net, task, P("units", "lesion", s, units=units)) for s in (0.25, 0.5))
        silent = [
            set(np.flatnonzero((abs(d["state"]).max(("trial", "time")) == 0).values))
            for d in (small, large)
        ]
        assert len(silent[0]) == 5 and len(silent[1]) == 10 and silent[0] < silent[1]

    def test_scale_multiplies_the_state_at_the_first_window_step(self, net, task):
        base = _sim(net, task)
        ds = _sim(net, task, P("state", "scale", 0.4, window=(500, 600)))
        np.testing.assert_allclose(
            ds["state"].sel(time=500.0), 0.6 * base["state"].sel(time=500.0), rtol=1e-6
        )

    def test_kick_has_the_given_norm_and_comes_at_the_window_start(self, net, task):
        base = _sim(net, task)
        ds = _sim(net, task, P("module", "kick", 2.5, module="rnn", window=(400, 900)))
        diff = (ds["state"] - base["state"]).values
        t0 = int(np.flatnonzero(ds.time.values == 400)[0])
        assert np.all(diff[:, :t0] == 0)
        np.testing.assert_allclose(np.linalg.norm(diff[:, t0], axis=-1), 2.5, rtol=1e-5)
        same_kick = np.broadcast_to(diff[:1, t0], diff[:, t0].shape)
        np.testing.assert_allclose(diff[:, t0], same_kick, atol=1e-6)

    def test_state_noise_has_the_given_sd(self, net, task):
        base = _sim(net, task)
        ds = _sim(net, task, P("state", "noise", 0.5, window=(500, 600)))
        diff = (ds["state"] - base["state"]).sel(time=500.0).values
        assert np.all((ds["state"] - base["state"]).sel(time=slice(0, 400)).values == 0)
        assert diff.std() == pytest.approx(0.5, rel=0.1)

    def test_input_lesion_zeroes_the_channel(self, net, task):
        ds = _sim(net, task, [P("inputs", "lesion", units=[1])])
        assert float(abs(ds["input"].isel(condition=0, input_channel=1)).max()) == 0.0
        np.testing.assert_array_equal(
            ds["input"].isel(condition=0, input_channel=[0, 2]),
            _sim(net, task)["input"].isel(input_channel=[0, 2]),
        )

    def test_weight_lesion_equals_a_model_without_those_weights(self, net, task):
        cut = copy.deepcopy(net)
        with torch.no_grad():
            cut.w_rec.zero_()
        np.testing.assert_allclose(
            _sim(net, task, P("weights", "lesion"))["state"].values,
            _sim(cut, task)["state"].values,
            rtol=1e-6,
            atol=1e-7,
        )
        assert torch.count_nonzero(net.w_rec) == net.w_rec.numel()  # the model is untouched

    def test_module_target_equals_its_units(self, net, task):
        a = _sim(net, task, P("module", "scale", 0.5, module="rnn"))
        b = _sim(net, task, P("units", "scale", 0.5, units=list(range(net.n_units))))
        np.testing.assert_array_equal(a["state"].values, b["state"].values)


class TestErrors:
    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"target": "unit", "operation": "lesion"}, "target must be one of"),
            ({"target": "state", "operation": "cut"}, "operation must be one of"),
            ({"target": "state", "operation": "lesion", "strength": 1.5}, r"fraction in \[0, 1\]"),
            ({"target": "state", "operation": "noise", "strength": -1}, "standard deviation"),
            ({"target": "units", "operation": "lesion"}, "units must be the unit indices"),
            ({"target": "module", "operation": "lesion"}, "module must be a module name"),
            ({"target": "weights", "operation": "kick"}, "lesion, clamp, scale or noise"),
            ({"target": "state", "operation": "kick", "window": (5, 1)}, "start < stop"),
            ({"target": "state", "operation": "kick", "seed": -1}, "seed must be"),
        ],
    )
    def test_bad_spec_names_the_field(self, kwargs, match):
        with pytest.raises(ValueError, match=match):
            P(**kwargs)

    def test_unknown_field(self):
        with pytest.raises(ValueError, match=r"unknown Perturbation field\(s\) \['unit'\]"):
            P.from_dict({"target": "units", "operation": "lesion", "unit": [1]})

    def test_specs_checked_against_the_model(self, net, task):
        with pytest.raises(ValueError, match="modules are \\['rnn'\\]"):
            _sim(net, task, P("module", "lesion", module="pfc"))
        with pytest.raises(ValueError, match="the model has 24 units"):
            _sim(net, task, P("units", "lesion", units=[30]))
        with pytest.raises(ValueError, match="accepted: \\['b', 'b_out'"):
            _sim(net, task, P("weights", "scale", weights="W"))
        with pytest.raises(TypeError, match="perturbation\\[1\\] must be a Perturbation"):
            _sim(net, task, [None, "lesion"])
