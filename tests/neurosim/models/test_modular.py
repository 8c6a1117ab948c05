"""ModularRNN: block connectivity, per-module dynamics, perturbations, training, config."""

import json
import math

import numpy as np
import pytest
import torch

import neurosim
import paradigms
from neurosim import Perturbation
from neurosim._checkpoint import read_checkpoint, write_checkpoint
from neurosim.models import ModularRNN, RateRNN, build_model
from neurosim.models._modular import ModuleSpec

A = {"name": "A", "size": 6, "tau": 100.0, "activation": "tanh", "sigma_rec": 0.1}
B = {"name": "B", "size": 4, "tau": 40.0, "activation": "relu", "sigma_rec": 0.02}


def _net(connectivity="dense", modules=(A, B), **kw):
    return ModularRNN(3, list(modules), 2, connectivity=connectivity, seed=0, **kw)


@pytest.fixture(scope="module")
def pdm():
    return paradigms.make("neurogym/PerceptualDecisionMaking-v0")


def _pdm_net(task, connectivity, **kw):
    mods = [
        {"name": "A", "size": 12, "tau": 200.0, "activation": "tanh"},
        {"name": "B", "size": 8, "tau": 100.0},
    ]
    return ModularRNN(
        task.n_inputs, mods, task.n_outputs, connectivity=connectivity, dt=task.dt, seed=1, **kw
    )


class TestDynamics:
    def test_forward_equals_looped_step(self):
        net = _net({"A->B": 0.5, "B->A": "dense"}, module_gains=True)
        with torch.no_grad():
            net.gains.copy_(torch.tensor([0.7, 1.3]))
        x = torch.randn(5, 20, 3, generator=torch.Generator().manual_seed(1))
        eps = net.sample_noise((5, 20, 10), generator=torch.Generator().manual_seed(2))
        y, hs = net(x, noise=eps)
        h = net.initial_state(5)
        for t in range(20):
            h = net.step(h, x[:, t], eps[:, t])
            torch.testing.assert_close(hs[:, t], h, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(y, net.readout(hs))

    def test_euler_step_per_module_matches_hand_computation(self):
        net = _net({"A->B": "dense"}, module_gains=True)
        with torch.no_grad():
            net.gains.copy_(torch.tensor([0.5, 2.0]))
            net.b.normal_()
        h, x = torch.randn(3, 10), torch.randn(3, 3)
        with torch.no_grad():
            w = net.w_rec.clone()
            w[:6, 6:] = 0.0  # nothing B -> A
            r = torch.cat([0.5 * torch.tanh(h[:, :6]), 2.0 * torch.relu(h[:, 6:])], 1)
            u = r @ w.T + x @ net.w_in.T + net.b
            alpha = torch.tensor([20.0 / 100.0] * 6 + [20.0 / 40.0] * 4)
            torch.testing.assert_close(net.step(h, x), h + alpha * (u - h))
            y = r @ net.w_out.T + net.b_out
            torch.testing.assert_close(net.readout(h), y)

    def test_noise_variance_per_module_is_2_alpha_sigma_squared(self):
        net = _net()
        eps = net.sample_noise((200, 50, 10), generator=torch.Generator().manual_seed(0))
        for sl, tau, sigma in ((slice(0, 6), 100.0, 0.1), (slice(6, 10), 40.0, 0.02)):
            expected = 2 * (20.0 / tau) * sigma**2
            assert abs(eps[..., sl].var().item() / expected - 1) < 0.02
        quiet = [dict(m, sigma_rec=0.0) for m in (A, B)]
        assert _net(modules=quiet).sample_noise((2, 3, 10)) is None

    def test_one_module_equals_rate_rnn_with_the_same_weights(self):
        torch.manual_seed(0)
        rate = RateRNN(3, 10, 2, activation="tanh", tau=100.0, dt=20.0, sigma_rec=0.1)
        net = ModularRNN(3, [dict(A, size=10)], 2, connectivity="none", seed=3)
        with torch.no_grad():
            for name in ("w_in", "w_rec", "b", "w_out", "b_out"):
                getattr(net, name).copy_(getattr(rate, name))
        x = torch.randn(4, 15, 3)
        eps = rate.sample_noise((4, 15, 10), generator=torch.Generator().manual_seed(4))
        torch.testing.assert_close(
            net.sample_noise((4, 15, 10), generator=torch.Generator().manual_seed(4)), eps
        )
        y_rate, h_rate = rate(x, noise=eps)
        y_mod, h_mod = net(x, noise=eps)
        torch.testing.assert_close(h_mod, h_rate, rtol=0, atol=0)
        torch.testing.assert_close(y_mod, y_rate, rtol=0, atol=0)

    def test_shared_fixed_activation_is_one_call_and_distinct_ones_per_module(self):
        same = _net(modules=[dict(A, activation="relu"), B, dict(B, name="C")])
        assert [(a, b) for a, b, _ in same._segments] == [(0, 14)]
        mixed = _net(modules=[A, B, dict(B, name="C"), dict(A, name="D")])
        assert [(a, b) for a, b, _ in mixed._segments] == [(0, 6), (6, 14), (14, 20)]

    def test_input_to_and_readout_from_restrict_weights(self):
        net = _net(input_to=["B"], readout_from="A")
        assert torch.count_nonzero(net.w_in[:6]) == 0 and torch.count_nonzero(net.w_in[6:]) > 0
        assert torch.count_nonzero(net.w_out[:, 6:]) == 0
        h = torch.zeros(2, 10)
        with torch.no_grad():
            h_next = net.step(h, torch.ones(2, 3))
        assert torch.count_nonzero(h_next[:, :6]) == 0 and torch.count_nonzero(h_next[:, 6:]) > 0


class TestConnectivity:
    def test_specs_build_the_expected_masks(self):
        none = _net("none").mask
        assert none[:6, :6].all() and none[6:, 6:].all()
        assert not none[:6, 6:].any() and not none[6:, :6].any()
        assert _net("dense").mask.all()
        sparse = _net({"A->B": 0.5, "default": "dense"}).mask
        assert sparse[6:, :6].sum() == 12 and sparse[:6, 6:].all()  # round(0.5 · 4 · 6)
        explicit = np.zeros((6, 4), bool)
        explicit[0, 1] = True
        m = _net({("B", "A"): explicit}).mask
        assert m[:6, 6:].sum() == 1 and m[0, 7] == 1
        blocks = _net([["dense", "none"], [0.25, "dense"]]).mask
        assert blocks[6:, :6].sum() == 6 and not blocks[:6, 6:].any()
        full = np.ones((10, 10), bool)
        full[3, 8] = False
        assert _net(full).mask.sum() == 99

    def test_sparse_mask_is_seeded(self):
        a = ModularRNN(3, [A, B], 2, connectivity={"A->B": 0.3}, seed=5).mask
        b = ModularRNN(3, [A, B], 2, connectivity={"A->B": 0.3}, seed=5).mask
        c = ModularRNN(3, [A, B], 2, connectivity={"A->B": 0.3}, seed=6).mask
        assert torch.equal(a, b) and not torch.equal(a, c)

    def test_masked_weights_get_zero_gradient_and_stay_zero(self):
        net = _net({"A->B": 0.5}, input_to=["A"], readout_from=["B"])
        opt = torch.optim.Adam(net.parameters(), lr=0.05)
        x, target = torch.randn(8, 10, 3), torch.randn(8, 10, 2)
        off = net.mask == 0
        for _ in range(5):
            y, _ = net(x, noise=True)
            loss = (y - target).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            assert net.w_rec.grad[off].abs().max() == 0
            assert net.w_in.grad[6:].abs().max() == 0 and net.w_out.grad[:, :6].abs().max() == 0
            opt.step()
        assert net.w_rec[off].abs().max() == 0
        assert net.w_rec.grad[~off].abs().max() > 0

    def test_parameter_counts_match_hand_counts(self):
        mods = [
            {"name": "A", "size": 3, "activation": "adaptive_per_neuron"},
            {"name": "B", "size": 2, "activation": "adaptive"},
            {"name": "C", "size": 4},
        ]
        cm = np.zeros((2, 3), bool)
        cm[:, 0] = True
        conn = {"A->B": cm, "C->A": 0.5, "B->C": "dense", "C->C": "none"}
        net = ModularRNN(2, mods, 5, connectivity=conn, input_to=["A"], readout_from=["A", "C"])
        counts = net.parameter_counts()
        expect = {
            #     within, incoming, input, bias, readout, activation, gain, h0
            "A": [9, 6, 6, 3, 15, 6, 0, 0],  # round(0.5·3·4) = 6 from C; (n, s) per unit
            "B": [4, 2, 0, 2, 0, 2, 0, 0],
            "C": [0, 8, 0, 4, 20, 0, 0, 0],
        }
        for name, row in expect.items():
            assert counts.loc[name].tolist() == [*row, sum(row)]
        assert counts.loc["total", "readout"] == 15 + 20 + 5
        n_params = sum(p.numel() for p in net.parameters() if p.requires_grad)
        masked = (net.mask == 0).sum() + (net.w_in == 0).sum() + (net.w_out == 0).sum()
        assert counts.loc["total", "total"] == n_params - masked.item()
        gained = ModularRNN(2, mods, 5, module_gains=True, learn_h0=True).parameter_counts()
        assert gained["gain"].tolist() == [1, 1, 1, 3] and gained.loc["C", "h0"] == 4

    def test_freeze_recurrent_trains_only_inputs_readouts_and_gains(self):
        net = _net({"A->B": "dense"}, module_gains=True)
        net.freeze_recurrent()
        counts = net.parameter_counts(trainable_only=True)
        assert counts[["recurrent_within", "recurrent_incoming", "bias"]].to_numpy().sum() == 0
        assert counts.loc["total", "gain"] == 2
        net.unfreeze_recurrent()
        net.freeze_recurrent("A")
        before = net.w_rec.detach().clone()
        opt = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=0.05)
        for _ in range(3):
            loss = net(torch.randn(4, 8, 3))[0].pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        assert torch.equal(net.w_rec[:6], before[:6])  # A's incoming weights never moved
        assert not torch.equal(net.w_rec[6:], before[6:])
        assert net.frozen_modules == ("A",)


class TestPerturbation:
    def test_lesioning_a_module_leaves_a_module_without_input_from_it_unchanged(self, pdm):
        for conn, a_hears_b in (({"A->B": "dense"}, False), ({"B->A": "dense"}, True)):
            net = _pdm_net(pdm, conn)
            lesion = Perturbation("module", "lesion", module="B")
            kw = {"n_trials": 6, "seed": 0, "quiet": True}
            base = neurosim.simulate(net, pdm, **kw)
            hit = neurosim.simulate(net, pdm, perturbation=lesion, **kw)
            a = base.state.sel(unit=base.module == "A").values
            a_hit = hit.state.sel(unit=hit.module == "A").values
            assert (hit.state.sel(unit=hit.module == "B") == 0).all()
            assert np.array_equal(a, a_hit) != a_hears_b

    def test_trajectories_carry_the_module_coordinate(self, pdm):
        ds = neurosim.simulate(_pdm_net(pdm, "none"), pdm, 3, seed=0, quiet=True)
        assert ds["module"].values.tolist() == ["A"] * 12 + ["B"] * 8
        assert ds["index_in_module"].values.tolist() == [*range(12), *range(8)]

    def test_weight_lesion_of_a_module_goes_through_functional_call(self, pdm):
        net = _pdm_net(pdm, {"B->A": "dense", "A->B": "dense"})
        conds = [None, Perturbation("weights", "lesion", module="A")]
        trials = pdm.batch(4, np.random.default_rng(0))
        ds = neurosim.simulate(net, pdm, batch=trials, perturbation=conds, noise=False, quiet=True)
        with torch.no_grad():
            net.w_rec[:12] = 0.0  # what the lesion does to A's incoming recurrent weights
            _, h = net.eval()(torch.from_numpy(trials.inputs).float(), noise=False)
        np.testing.assert_allclose(ds.state.isel(condition=1).values, h.numpy(), atol=1e-5)
        assert not np.allclose(ds.state.isel(condition=0), ds.state.isel(condition=1))


class TestTrainingAndConfig:
    def test_trains_on_perceptual_decision_making(self, pdm):
        net = _pdm_net(pdm, {"A->B": "dense", "B->A": 0.5}, input_to=["A"], readout_from=["B"])
        torch.manual_seed(0)
        res = neurosim.train(net, pdm, n_steps=50, eval_every=50, eval_trials=64, quiet=True)
        loss = res.history["loss"].to_numpy()
        assert loss[-10:].mean() < 0.7 * loss[:5].mean()
        assert res.performance > 0.6  # two choices: chance is 0.5

    def test_config_is_json_safe_and_rebuilds_the_same_model(self):
        mask = np.eye(4, 6, dtype=bool)
        net = _net({"A->B": mask, "B->A": 0.3}, input_to=["A"], module_gains=True)
        cfg = net.config()
        assert json.loads(json.dumps(cfg)) == cfg
        clone = build_model(cfg)
        assert clone.config() == cfg
        assert torch.equal(clone.mask, net.mask)
        for (name, p), (_, q) in zip(net.named_parameters(), clone.named_parameters(), strict=True):
            assert torch.equal(p, q), name  # the same seed gives the same initial weights

    def test_checkpoint_round_trip(self, tmp_path):
        net = ModularRNN(
            3,
            [dict(A, activation="adaptive_per_neuron"), dict(B, activation="adaptive")],
            2,
            connectivity={"A->B": 0.5},
        )
        with torch.no_grad():
            net.phi_A.n_raw.add_(0.3)
            net.w_out.mul_(2.0)
        path = write_checkpoint(
            tmp_path, model=net, optimizer=None, step=1, history=[], meta={"model": net.config()}
        )
        loaded = read_checkpoint(path)["model"]
        x = torch.randn(2, 6, 3)
        torch.testing.assert_close(loaded(x, noise=False)[0], net(x, noise=False)[0])

    def test_adaptive_activation_per_module_is_applied_and_learned(self):
        mods = [
            dict(A, activation={"name": "adaptive", "n": 3.0, "s": 0.5}),
            dict(B, activation="adaptive_per_neuron"),
        ]
        net = ModularRNN(3, mods, 2, connectivity="none", seed=0)
        assert net.activation_names == ("adaptive", "adaptive_per_neuron")
        h = torch.randn(2, 10)
        expected = torch.cat([net.phi_A(h[:, :6]), net.phi_B(h[:, 6:])], 1)
        torch.testing.assert_close(net.rates(h), expected)
        assert tuple(net.phi_B.n.shape) == (4,)
        net(torch.randn(2, 5, 3))[0].sum().backward()
        assert net.phi_A.s_raw.grad.abs() > 0 and net.phi_B.n_raw.grad.abs().max() > 0
        assert "phi_A.n_raw" in dict(net.named_parameters())

    def test_module_spec_objects_are_accepted(self):
        net = ModularRNN(2, [ModuleSpec("x", 3), ModuleSpec("y", 2, tau=50.0)], 1, seed=0)
        assert net.config()["modules"][1]["tau"] == 50.0
        assert math.isclose(net.alpha[-1].item(), 20.0 / 50.0, rel_tol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"modules": []}, "non-empty list"),
        ({"modules": [dict(A, size=0)]}, "module 'A': size must be a positive integer"),
        ({"modules": [A, dict(B, name="A")]}, "unique"),
        ({"modules": [dict(A, tau=10.0)]}, "tau of module 'A'"),
        ({"modules": [dict(A, colour=1)]}, r"unknown field\(s\) \['colour'\]"),
        ({"modules": [dict(A, activation="swish")]}, "activation must be one of"),
        ({"modules": [dict(A, name="a.b")]}, "without '.'"),
        ({"connectivity": "sparse"}, "'dense', 'none'"),
        ({"connectivity": {"A->C": "dense"}}, "unknown module 'C'"),
        ({"connectivity": {"A->B": 1.5}}, "density 1.5"),
        ({"connectivity": {"A->B": np.ones((6, 4), bool)}}, r"block's shape \(4, 6\)"),
        ({"connectivity": np.ones((3, 3))}, r"got shape \(3, 3\)"),
        ({"input_to": ["Z"]}, r"input_to names unknown module\(s\) \['Z'\]"),
        ({"readout_from": []}, "readout_from must be 'all'"),
        ({"w_rec_init": "xavier"}, "w_rec_init must be one of"),
        ({"seed": -1}, "seed must be"),
    ],
)
def test_bad_specs_raise_clear_errors(kwargs, match):
    args = {"modules": [A, B], **kwargs}
    with pytest.raises(ValueError, match=match):
        ModularRNN(3, args.pop("modules"), 2, **args)
