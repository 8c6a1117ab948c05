"""Complex AutoEncoder, CtCAE contrastive loss and object features."""

import math

import numpy as np
import pytest
import torch

from neurosim.models._cae import (
    CAEOutput,
    ComplexAutoEncoder,
    contrastive_cae_loss,
    contrastive_phase_loss,
    object_features,
    reconstruction_loss,
)
from neurosim.models._complex import to_complex

SMALL = {"channels": (4, 4, 8), "strides": (2, 1, 2), "linear_dim": 8}


def _images(n=6, c=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(n, c, 32, 32)
    for i in range(n):
        r, col = torch.randint(0, 20, (2,), generator=g).tolist()
        x[i, :, r : r + 10, col : col + 10] = torch.rand(c, 1, 1, generator=g)
    return x


class TestArchitecture:
    def test_shapes_and_range(self):
        cae = ComplexAutoEncoder((3, 32, 32), **SMALL, seed=0)
        with torch.no_grad():
            out = cae(_images(c=3))
        assert isinstance(out, CAEOutput)
        assert out.reconstruction.shape == (6, 3, 32, 32)
        assert out.magnitude.shape == out.phase.shape == (6, 3, 32, 32)
        assert out.encoder_magnitude.shape == (6, 8, 8, 8)
        assert out.latent_phase.shape == (6, 8)
        assert float(out.reconstruction.min()) >= 0 and float(out.reconstruction.max()) <= 1
        assert bool((out.magnitude >= 0).all())

    def test_loewe_defaults_mirror_the_encoder(self):
        cae = ComplexAutoEncoder(seed=0)
        kinds = [type(m).__name__ for m in cae.decoder]
        assert kinds == [
            "ComplexConvTranspose2d",
            "ComplexConv2d",
            "ComplexConvTranspose2d",
            "ComplexConv2d",
            "ComplexConvTranspose2d",
        ]
        assert [m.n_out for m in cae.decoder] == [64, 64, 32, 32, 1]
        assert cae.hidden_shape == (64, 4, 4)
        assert float(cae.output.weight.detach()) == 1.0 and float(cae.output.bias.detach()) == 0.0

    def test_upsample_decoder_and_no_output_layer(self):
        cae = ComplexAutoEncoder(
            (1, 32, 32), **SMALL, decoder="upsample", output_conv=False, output_sigmoid=False
        )
        out = cae(_images())
        torch.testing.assert_close(out.reconstruction, out.magnitude)  # read straight off |z|

    def test_flat_inputs_and_bad_shapes(self):
        cae = ComplexAutoEncoder((1, 32, 32), **SMALL, seed=0).eval()
        x = _images()
        torch.testing.assert_close(cae(x.flatten(1)).reconstruction, cae(x).reconstruction)
        with pytest.raises(ValueError, match=r"images must have shape \[B, 1, 32, 32\]"):
            cae(torch.zeros(2, 3, 32, 32))
        with pytest.raises(ValueError, match="divisible by 8"):
            ComplexAutoEncoder((1, 36, 36), channels=(2, 2, 2), strides=(2, 2, 2))
        with pytest.raises(ValueError, match="decoder must be one of"):
            ComplexAutoEncoder(decoder="pixelshuffle")

    def test_seeded_determinism_and_config_round_trip(self):
        a = ComplexAutoEncoder((1, 32, 32), **SMALL, seed=3)
        b = ComplexAutoEncoder(**{k: v for k, v in a.config().items() if k != "class"})
        c = ComplexAutoEncoder((1, 32, 32), **SMALL, seed=4)
        for (k, v), w in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
            assert torch.equal(v, w), k
        assert not torch.equal(a.encoder[0].f.weight, c.encoder[0].f.weight)
        x = _images()
        torch.testing.assert_close(a(x).phase, b(x).phase, rtol=0, atol=0)


class TestPhaseEquivariance:
    def test_global_phase_shift_through_whole_network(self):
        torch.manual_seed(0)
        cae = ComplexAutoEncoder((1, 32, 32), **SMALL, seed=1)
        cae(_images(seed=5))  # move BatchNorm statistics away from their init
        cae.eval().double()  # float64: the LayerNorms of an untrained bottleneck amplify
        # float32 rounding; a positive background: where ψ vanishes exactly (an all-black
        # receptive field) there is no phase to rotate (b_φ + π/2 whatever the shift); and a
        # base phase off the real axis, where the stable angle nudges real ψ by 1e-8/Re ψ
        x = (0.1 + 0.9 * _images()).double()
        base = cae(x, phase=0.3)
        theta = 2.0
        shifted = cae(x, phase=0.3 + theta)
        for name in ("magnitude", "encoder_magnitude", "latent_magnitude", "reconstruction"):
            torch.testing.assert_close(
                getattr(shifted, name), getattr(base, name), rtol=0, atol=1e-6
            )
        for m0, p0, p1 in (
            (base.magnitude, base.phase, shifted.phase),
            (base.encoder_magnitude, base.encoder_phase, shifted.encoder_phase),
            (base.latent_magnitude, base.latent_phase, shifted.latent_phase),
        ):
            torch.testing.assert_close(
                to_complex(m0, p1), to_complex(m0, p0 + theta), rtol=0, atol=1e-6
            )

    def test_phase_differences_do_change_the_output(self):
        cae = ComplexAutoEncoder((1, 32, 32), **SMALL, seed=1).eval()
        x = _images()
        ramp = torch.linspace(0, math.pi, 32).view(1, 1, 1, 32)
        assert not torch.allclose(cae(x, phase=ramp).magnitude, cae(x).magnitude, atol=1e-4)


class TestContrastive:
    def _two_regions(self):
        m = torch.zeros(2, 3, 8, 8)
        m[:, 0, :, :4] = 1.0
        m[:, 1, :, 4:] = 1.0
        return m

    @pytest.mark.parametrize("features", ["angle", "phasor"])
    def test_separated_phases_score_lower(self, features):
        m = self._two_regions()
        # phase vectors over the channels: (0.3, 0.3, 2.5) on the left, (2.5, 2.5, 0.3) on the
        # right (angle features are normalised over channels: equal angles in every channel
        # would all point the same way)
        left = torch.tensor([0.3, 0.3, 2.5]).view(1, 3, 1, 1)
        sep = torch.where(m[:, :1] > 0, left, left.flip(1)).expand_as(m).contiguous()
        same = torch.full_like(m, 0.3)
        kw = dict(n_anchors=32, top_k=5, n_negatives=20, bottom_m=24, features=features)
        g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
        lo = contrastive_phase_loss(m, sep, generator=g(), **kw)
        hi = contrastive_phase_loss(m, same, generator=g(), **kw)
        assert float(lo) < float(hi)
        assert float(hi) == pytest.approx(math.log(21), rel=1e-4)  # all pairs equally similar

    def test_gradient_pushes_negatives_apart(self):
        m = self._two_regions()
        phase = torch.full_like(m, 0.3)
        phase[:, :, :, 4:] = 0.4
        phase.requires_grad_(True)
        kw = dict(n_anchors=64, top_k=3, n_negatives=16, bottom_m=32, features="phasor")
        loss = contrastive_phase_loss(m, phase, generator=torch.Generator().manual_seed(0), **kw)
        loss.backward()
        g = phase.grad
        assert bool(torch.isfinite(g).all())
        # descending the gradient moves the right region's phase up, the left one's down
        assert float(g[:, :, :, 4:].sum()) < 0 < float(g[:, :, :, :4].sum())

    def test_seeded_and_validated(self):
        m, p = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
        kw = dict(n_anchors=10, top_k=3, n_negatives=5, bottom_m=10)
        a = contrastive_phase_loss(m, p, generator=torch.Generator().manual_seed(1), **kw)
        b = contrastive_phase_loss(m, p, generator=torch.Generator().manual_seed(1), **kw)
        assert float(a) == float(b)
        with pytest.raises(ValueError, match=r"bottom_m must be an integer in \[1, 64\]"):
            contrastive_phase_loss(m, p, n_anchors=10, bottom_m=100)
        with pytest.raises(ValueError, match="features must be one of"):
            contrastive_phase_loss(m, p, features="cos")

    def test_ctcae_loss_adds_weighted_terms(self):
        cae = ComplexAutoEncoder((3, 32, 32), **SMALL, seed=0)
        x = _images(c=3)
        out = cae(x)
        total, parts = contrastive_cae_loss(
            out, x, weight=0.5, generator=torch.Generator().manual_seed(0)
        )
        assert set(parts) == {"mse", "contrastive_decoder", "contrastive_encoder"}
        expect = parts["mse"] + 0.5 * (parts["contrastive_decoder"] + parts["contrastive_encoder"])
        assert float(total.detach()) == pytest.approx(expect, rel=1e-5)
        plain, parts0 = contrastive_cae_loss(
            out, x, weight=0.5, decoder_pairs={"n_anchors": 0}, encoder_pairs={"n_anchors": 0}
        )
        assert float(plain.detach()) == pytest.approx(float(reconstruction_loss(out, x).detach()))
        total.backward()
        assert all(
            bool(torch.isfinite(p.grad).all()) for p in cae.parameters() if p.grad is not None
        )


class TestObjectFeatures:
    def test_eval_mode_shapes_and_range(self):
        cae = ComplexAutoEncoder((1, 32, 32), **SMALL, seed=0).train()
        x = _images(n=5)
        m, phi = object_features(cae, x[:, None], batch_size=2)  # [B, T=1, C, H, W] accepted
        assert cae.training  # restored
        assert m.shape == phi.shape == (5, 1, 32, 32) and m.dtype == np.float32
        assert phi.min() > -math.pi - 1e-6 and phi.max() <= math.pi + 1e-6
        ref = cae.eval()(x)
        np.testing.assert_allclose(m, ref.magnitude.detach().numpy(), rtol=1e-5, atol=1e-6)

    def test_training_lowers_reconstruction_error(self):
        cae = ComplexAutoEncoder((1, 32, 32), **SMALL, seed=0)
        opt = torch.optim.Adam(cae.parameters(), lr=1e-2)
        x = _images(n=16)
        first = None
        for _ in range(30):
            loss = reconstruction_loss(cae(x), x)
            first = first if first is not None else float(loss.detach())
            opt.zero_grad()
            loss.backward()
            opt.step()
        assert float(loss.detach()) < 0.7 * first


@pytest.fixture(scope="module")
def task():
    import paradigms
    import paradigms._scenes

    if "scenes/2shapes" not in paradigms.available():  # until paradigms/__init__ wires it
        paradigms._scenes._register()
    return paradigms.make("scenes/2shapes")


class TestTrainObjectModel:
    def _cae(self, task, seed=0):
        return ComplexAutoEncoder(
            task.image_shape, channels=(4, 8), strides=(2, 2), linear_dim=8, seed=seed
        )

    def test_history_scorer_and_determinism(self, task):
        from neurosim._object_training import train_object_model

        calls = []

        def scorer(m, phi, labels):
            calls.append((m.shape, phi.shape, labels.shape))
            return {"score": float(m.mean())}

        kw = dict(n_steps=6, batch_size=4, eval_every=3, eval_images=5, quiet=True, seed=2)
        a = train_object_model(self._cae(task), task, scorer=scorer, **kw)
        b = train_object_model(self._cae(task), task, **kw)
        assert calls == [((5, 1, 32, 32), (5, 1, 32, 32), (5, 32, 32))] * 2
        h = a.history
        assert list(h["step"]) == [1, 2, 3, 4, 5, 6] and a.steps == 6
        assert h["eval_mse"].notna().tolist() == [False, False, True, False, False, True]
        assert set(a.metrics) == {"eval_mse", "score"}
        np.testing.assert_array_equal(h["loss"].to_numpy(), b.history["loss"].to_numpy())
        assert h["contrastive"].isna().all()

    def test_contrastive_and_resume_match_one_run(self, task, tmp_path):
        from neurosim._object_training import train_object_model

        kw = dict(
            batch_size=4,
            eval_every=2,
            eval_images=4,
            quiet=True,
            contrastive=True,
            contrastive_weight=0.01,
            lr=5e-3,
            warmup_steps=2,
        )
        whole = train_object_model(self._cae(task), task, n_steps=4, **kw)
        assert whole.history["contrastive"].notna().all()
        ck = str(tmp_path / "ck")
        train_object_model(self._cae(task), task, n_steps=2, checkpoint_dir=ck, **kw)
        resumed = train_object_model(self._cae(task), task, n_steps=4, checkpoint_dir=ck, **kw)
        np.testing.assert_allclose(
            resumed.history["loss"].to_numpy(), whole.history["loss"].to_numpy(), rtol=1e-5
        )
        for p, q in zip(resumed.model.parameters(), whole.model.parameters(), strict=True):
            torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-6)

    def test_errors(self, task):
        from neurosim import ConfigError
        from neurosim._object_training import train_object_model

        with pytest.raises(ValueError, match=r"image_shape \(3, 32, 32\) does not match"):
            train_object_model(ComplexAutoEncoder((3, 32, 32), **SMALL), task, n_steps=1)
        with pytest.raises(ConfigError, match="unknown field"):
            train_object_model(self._cae(task), task, n_step=1)
        with pytest.raises(ConfigError, match="phase_features"):
            train_object_model(self._cae(task), task, phase_features="cos")
