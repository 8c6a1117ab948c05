"""Task primitives: transplant, freezing, trained-parameter counts, seeding, the random control."""

import copy

import numpy as np
import pytest
import torch

import neurosim
import paradigms
from neurosim.models import ModularRNN, RateRNN
from neurosim.models._primitives import (
    _derived_seed,
    _standalone,
    adapt_to_task,
    assemble_modules,
    pretrain_primitives,
    primitive_name,
    random_modules,
)

TWO = ("neurogym/yang19.go-v0", "neurogym/yang19.dm1-v0")
NEW_TASK = "neurogym/yang19.rtgo-v0"
SMALL = {"module_size": 8, "n_steps": 4, "batch_size": 16, "eval_trials": 20, "quiet": True}


@pytest.fixture(scope="module", params=["relu", "adaptive"])
def pretrained(request):
    torch.set_num_threads(1)
    return pretrain_primitives(TWO, activation=request.param, seed=3, **SMALL)


def _recurrent(net):
    keep = ("b", "h0", "w_rec")
    return {k: v.detach().clone() for k, v in net.state_dict().items() if k in keep or "phi_" in k}


class TestPretrainPrimitives:
    def test_modules_are_named_after_the_tasks_and_frozen(self, pretrained):
        assert pretrained.module_names == ("go", "dm1")
        assert pretrained.frozen_modules == ("go", "dm1")
        assert not pretrained.w_rec.requires_grad and not pretrained.b.requires_grad
        info = pretrained.primitives
        assert list(info.index) == ["go", "dm1"] and list(info["task"]) == list(TWO)
        assert info["accuracy"].between(0, 1).all() and (info["n_steps"] == 4).all()

    def test_no_inter_module_connections(self, pretrained):
        sl = pretrained.module_slices
        assert (pretrained.effective_weights()[sl["go"], sl["dm1"]] == 0).all()
        assert (pretrained.effective_weights()[sl["dm1"], sl["go"]] == 0).all()

    def test_module_k_is_the_trained_standalone_network(self, pretrained):
        """Transplant: rebuilding primitive k with its seed and training it the same way
        gives exactly module k's block, and module k then runs exactly as that network."""
        k, task_id = 1, TWO[1]
        task = paradigms.make(task_id)
        s = _derived_seed(3, k)
        act = pretrained.module_specs[k].activation
        alone = _standalone(task, "dm1", module_size=8, tau=100.0, activation=act,
                            sigma_rec=0.05, seed=s)  # fmt: skip
        init = alone.w_rec.detach().clone()
        neurosim.train(alone, task, n_steps=4, batch_size=16, lr=1e-2, seed=s, eval_every=4,
                       eval_trials=20, quiet=True)  # fmt: skip
        assert not torch.equal(alone.w_rec, init)  # training moved it ...
        sl = pretrained.module_slices["dm1"]
        assert torch.equal(pretrained.w_rec[sl, sl], alone.w_rec)  # ... and it was transplanted
        assert torch.equal(pretrained.b[sl], alone.b)
        assert torch.equal(pretrained.w_in[sl], alone.w_in)
        x = torch.from_numpy(task.batch(6, rng=0).inputs).double()
        _, h_alone = alone.double()(x, noise=False)
        _, h_net = copy.deepcopy(pretrained).double()(x, noise=False)
        torch.testing.assert_close(h_net[..., sl], h_alone, rtol=0, atol=1e-12)


class TestTransplant:
    def _trained_like(self, name, size, seed, activation="relu"):
        net = ModularRNN(4, [{"name": name, "size": size, "activation": activation}], 3, seed=seed)
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():  # stand-in for training: move every recurrent parameter
            net.w_rec.add_(0.3 * torch.randn(net.w_rec.shape, generator=g))
            net.b.add_(torch.randn(net.b.shape, generator=g))
            for p in getattr(net, f"phi_{name}", torch.nn.Module()).parameters():
                p.add_(0.5)
        return net

    def test_module_k_driven_by_the_same_drive_reproduces_network_k(self):
        nets = [
            self._trained_like("a", 5, 1),
            self._trained_like("b", 7, 2, "adaptive_per_neuron"),
            self._trained_like("c", 6, 3, "tanh"),
        ]
        big = adapt_to_task(assemble_modules(nets), n_inputs=9, n_outputs=2, seed=4).double()
        x = torch.randn(3, 12, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        drives = [n.double().input_drive(x) for n in nets]
        h = big.initial_state(3)
        states = []
        for t in range(12):
            h = big.step_driven(h, torch.cat([d[:, t] for d in drives], -1))
            states.append(h)
        hs = torch.stack(states, 1)
        for net, name in zip(nets, "abc", strict=True):
            _, alone = net(x, noise=False)
            torch.testing.assert_close(hs[..., big.module_slices[name]], alone, rtol=0, atol=1e-12)

    def test_the_recurrent_parts_are_copied_not_the_initial_ones(self):
        nets = [self._trained_like("a", 5, 1), self._trained_like("b", 4, 2)]
        big = assemble_modules(nets)
        assert torch.equal(big.w_rec[5:, 5:], nets[1].w_rec)
        assert torch.equal(big.b[:5], nets[0].b)
        fresh = ModularRNN(4, [{"name": "b", "size": 4}], 3, seed=2)
        assert not torch.equal(big.w_rec[5:, 5:], fresh.w_rec)

    def test_bad_networks_are_explained(self):
        two = ModularRNN(4, [{"name": "a", "size": 2}, {"name": "b", "size": 2}], 3, seed=0)
        with pytest.raises(ValueError, match="exactly one module"):
            assemble_modules([two])
        other = ModularRNN(5, [{"name": "c", "size": 2}], 3, seed=0)
        with pytest.raises(ValueError, match="share n_inputs"):
            assemble_modules([self._trained_like("a", 2, 0), other])
        with pytest.raises(TypeError, match="must be a ModularRNN"):
            assemble_modules([RateRNN(4, 2, 3)])


class TestAdaptToTask:
    def test_training_a_new_task_leaves_the_recurrent_part_bit_identical(self, pretrained):
        task = paradigms.make(NEW_TASK)
        net = adapt_to_task(pretrained, task, seed=0)
        frozen = _recurrent(pretrained)
        w_in = net.w_in.detach().clone()
        gains = net.gains.detach().clone()
        neurosim.train(net, task, n_steps=5, batch_size=16, eval_every=5, eval_trials=16,
                       quiet=True)  # fmt: skip
        assert not torch.equal(net.w_in, w_in) and not torch.equal(net.gains, gains)
        after = _recurrent(net)
        assert after.keys() == frozen.keys()
        assert any("phi_" in k for k in frozen) == (pretrained.activation_names[0] != "relu")
        for key, value in after.items():
            assert torch.equal(value, frozen[key]), key

    def test_trained_parameter_count_is_the_formula_and_far_below_a_full_network(self):
        base = random_modules()  # five yang19 primitives, 5 x 32 units
        task = paradigms.make(NEW_TASK)
        net = adapt_to_task(base, task, seed=0)
        n, i, o, k = net.n_units, task.n_inputs, task.n_outputs, 5
        formula = n * i + o * n + o + k
        assert (n, i, o) == (160, 33, 17)
        assert int(net.parameter_counts(trainable_only=True).loc["total", "total"]) == formula
        assert sum(p.numel() for p in net.parameters() if p.requires_grad) == formula
        full = RateRNN(i, n, o)
        n_full = sum(p.numel() for p in full.parameters() if p.requires_grad)
        assert n_full == n * n + n * i + n + o * n + o
        assert formula < 0.25 * n_full

    def test_fresh_io_weights_are_seeded(self, pretrained):
        a = adapt_to_task(pretrained, NEW_TASK, seed=1)
        b = adapt_to_task(pretrained, NEW_TASK, seed=1)
        c = adapt_to_task(pretrained, NEW_TASK, seed=2)
        for key in ("w_in", "w_out", "b_out", "gains"):
            assert torch.equal(getattr(a, key), getattr(b, key))
        assert not torch.equal(a.w_in, c.w_in) and not torch.equal(a.w_in, pretrained.w_in)
        assert (a.gains == 1).all()
        assert adapt_to_task(pretrained, NEW_TASK, module_gains=False).gains is None

    def test_sparse_masks_are_kept(self):
        nets = [ModularRNN(2, [{"name": m, "size": 6}], 2, seed=i) for i, m in enumerate("ab")]
        big = assemble_modules(nets, connectivity={"a->b": 0.3}, seed=5)
        new = adapt_to_task(big, n_inputs=3, n_outputs=2, seed=9)
        assert torch.equal(new.mask, big.mask) and torch.equal(new.w_rec, big.w_rec)

    def test_bad_arguments_are_explained(self, pretrained):
        with pytest.raises(ValueError, match="dt 20.0 ms but the network has dt 100.0"):
            adapt_to_task(pretrained, paradigms.make(NEW_TASK, dt=20))
        with pytest.raises(ValueError, match="either task or n_inputs"):
            adapt_to_task(pretrained, NEW_TASK, n_inputs=3)
        with pytest.raises(TypeError, match="must be a ModularRNN"):
            adapt_to_task(RateRNN(2, 3, 2), n_inputs=2)


class TestSeedsAndControl:
    def test_same_seed_same_weights(self):
        a = pretrain_primitives(TWO, seed=7, **SMALL)
        b = pretrain_primitives(TWO, seed=7, **SMALL)
        c = pretrain_primitives(TWO, seed=8, **SMALL)
        for key, value in a.state_dict().items():
            assert torch.equal(value, b.state_dict()[key]), key
        assert not torch.equal(a.w_rec, c.w_rec)
        np.testing.assert_array_equal(a.primitives["accuracy"], b.primitives["accuracy"])

    def test_random_modules_match_the_pretrained_architecture(self, pretrained):
        act = pretrained.module_specs[0].activation
        rand = random_modules(TWO, module_size=8, activation=act, seed=3)
        assert rand.module_specs == pretrained.module_specs
        for trainable in (False, True):
            assert rand.parameter_counts(trainable).equals(pretrained.parameter_counts(trainable))
        assert rand.primitives["accuracy"].isna().all()
        # untrained: module k holds the initial weights pre-training started from
        task = paradigms.make(TWO[0])
        init = _standalone(task, "go", module_size=8, tau=100.0, activation=act, sigma_rec=0.05,
                           seed=_derived_seed(3, 0))  # fmt: skip
        sl = rand.module_slices["go"]
        assert torch.equal(rand.w_rec[sl, sl], init.w_rec)
        assert not torch.equal(pretrained.w_rec[sl, sl], init.w_rec)


def test_names_and_bad_primitive_lists():
    assert [primitive_name(t) for t in paradigms.YANG19_PRIMITIVES] == [
        "go", "dlygo", "anti", "dm1", "dms"
    ]  # fmt: skip
    with pytest.raises(ValueError, match="non-empty list"):
        random_modules("neurogym/yang19.go-v0")
    with pytest.raises(ValueError, match="at least one task"):
        random_modules([])
    with pytest.raises(ValueError, match="must share n_inputs"):
        random_modules(["neurogym/yang19.go-v0", "neurogym/PerceptualDecisionMaking-v0"])
    with pytest.raises(ValueError, match="seed must be an integer"):
        random_modules(TWO, seed=-1)
