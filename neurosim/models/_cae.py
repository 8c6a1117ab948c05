"""Complex AutoEncoder (Löwe et al. 2022) and the contrastive loss of the CtCAE (Stanić et al. 2023).

The CAE encodes an image (entering with zero phase) with complex convolutions, a
complex linear bottleneck and a mirrored decoder; the reconstruction is read from the
output *magnitudes* (1×1 convolution and sigmoid), so phases are free to bind: pixels of
one object end up sharing a phase. :func:`object_features` returns the output layer's
per-pixel magnitude and phase for clustering into objects.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ._complex import (
    ComplexConv2d,
    ComplexConvTranspose2d,
    ComplexLayer,
    ComplexLinear,
    real_to_polar,
)

_DECODERS = ("transpose", "upsample")
_FEATURES = ("angle", "phasor")


class CAEOutput(NamedTuple):
    """What :class:`ComplexAutoEncoder` returns; every map is ``[B, C, H, W]``.

    Attributes
    ----------
    reconstruction : torch.Tensor
        The image read from the output magnitudes.
    magnitude, phase : torch.Tensor
        The complex output layer (before the 1×1 output convolution).
    encoder_magnitude, encoder_phase : torch.Tensor
        The last convolutional layer of the encoder (``[B, C', h, w]``).
    latent_magnitude, latent_phase : torch.Tensor
        The bottleneck ``[B, linear_dim]``.
    """

    reconstruction: torch.Tensor
    magnitude: torch.Tensor
    phase: torch.Tensor
    encoder_magnitude: torch.Tensor
    encoder_phase: torch.Tensor
    latent_magnitude: torch.Tensor
    latent_phase: torch.Tensor


class _UpsampleConv(ComplexConv2d):
    """Nearest ×``scale`` upsampling, then a stride-1 complex convolution (CAE++ decoder)."""

    def __init__(self, in_channels: int, out_channels: int, scale: int, *, norm: str | None):
        super().__init__(in_channels, out_channels, 3, 1, 1, norm=norm)
        self.f = nn.Sequential(nn.Upsample(scale_factor=scale, mode="nearest"), self.f)


def _tuple_of_ints(name: str, value: Any) -> tuple[int, ...]:
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        value = (int(value),)
    try:
        out = tuple(int(v) for v in value)
    except TypeError:
        raise ValueError(f"{name} must be a sequence of positive integers, got {value!r}") from None
    if not out or any(v < 1 for v in out):
        raise ValueError(f"{name} must be a sequence of positive integers, got {value!r}")
    return out


class ComplexAutoEncoder(nn.Module):
    """Complex AutoEncoder of Löwe et al. (2022).

    Encoder: complex convolutions (kernel 3, padding 1) with ``channels`` and ``strides``,
    then a complex linear layer to ``linear_dim`` units. Decoder: a complex linear layer
    back to the encoder's last map and the convolutions mirrored (a stride-2 encoder layer
    becomes a stride-2 transposed convolution, or nearest upsampling and a convolution with
    ``decoder="upsample"``), ending in ``C`` channels. Every layer normalises its
    magnitudes (``norm`` after convolutions, LayerNorm after linear layers) and applies a
    ReLU. The reconstruction is ``sigmoid(conv1x1(|z_out|))``; the 1×1 convolution starts as
    the identity (Löwe et al. set all its weights to 1, which for one channel is the same).

    Parameters
    ----------
    image_shape : tuple of int, default (1, 32, 32)
        ``(C, H, W)`` of the images.
    channels : sequence of int, default (32, 32, 64, 64, 64)
        Output channels of the encoder convolutions (Löwe et al.: hidden_dim 32).
    strides : sequence of int, default (2, 1, 2, 1, 2)
        Their strides (1 or 2).
    linear_dim : int, default 64
        Units of the complex bottleneck.
    norm : {"batch", "layer", None}, default "batch"
        Norm on the magnitudes after each convolution.
    decoder : {"transpose", "upsample"}, default "transpose"
    output_conv, output_sigmoid : bool, default True
        The 1×1 output convolution and the sigmoid on the reconstruction (the CtCAE's
        "CAE++" variant switches both off).
    seed : int, optional
        Seeds the initial weights (drawn from torch's global RNG when omitted; recorded
        in :meth:`config`).

    Examples
    --------
    >>> import torch
    >>> from neurosim.models._cae import ComplexAutoEncoder
    >>> cae = ComplexAutoEncoder((1, 32, 32), channels=(8, 8, 16), strides=(2, 2, 2),
    ...                          linear_dim=16, seed=0)
    >>> out = cae(torch.rand(4, 1, 32, 32))
    >>> tuple(out.reconstruction.shape), tuple(out.phase.shape)
    ((4, 1, 32, 32), (4, 1, 32, 32))
    """

    def __init__(
        self,
        image_shape: Sequence[int] = (1, 32, 32),
        *,
        channels: Sequence[int] = (32, 32, 64, 64, 64),
        strides: Sequence[int] = (2, 1, 2, 1, 2),
        linear_dim: int = 64,
        norm: str | None = "batch",
        decoder: str = "transpose",
        output_conv: bool = True,
        output_sigmoid: bool = True,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        shape = _tuple_of_ints("image_shape", image_shape)
        if len(shape) != 3:
            raise ValueError(f"image_shape must be (C, H, W), got {image_shape!r}")
        self.image_shape = shape
        self.channels = _tuple_of_ints("channels", channels)
        self.strides = _tuple_of_ints("strides", strides)
        if len(self.channels) != len(self.strides):
            raise ValueError(
                f"channels ({len(self.channels)}) and strides ({len(self.strides)}) "
                "must have the same length"
            )
        if any(s not in (1, 2) for s in self.strides):
            raise ValueError(f"strides must be 1 or 2, got {self.strides}")
        if decoder not in _DECODERS:
            raise ValueError(f"decoder must be one of {list(_DECODERS)}, got {decoder!r}")
        c, h, w = shape
        down = 2 ** sum(s == 2 for s in self.strides)
        if h % down or w % down:
            raise ValueError(f"image height and width {h, w} must be divisible by {down}")
        self.linear_dim = int(_tuple_of_ints("linear_dim", linear_dim)[0])
        self.norm_kind, self.decoder_kind = norm, decoder
        self.output_conv, self.output_sigmoid = bool(output_conv), bool(output_sigmoid)
        if seed is None:
            seed = int(torch.randint(0, 2**31 - 1, ()).item())
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise ValueError(f"seed must be None or an integer >= 0, got {seed!r}")
        self.seed = int(seed)
        self.hidden_shape = (self.channels[-1], h // down, w // down)
        n_hidden = int(np.prod(self.hidden_shape))

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            ins = (c, *self.channels[:-1])
            self.encoder = nn.ModuleList(
                ComplexConv2d(i, o, 3, s, 1, norm=norm)
                for i, o, s in zip(ins, self.channels, self.strides, strict=True)
            )
            self.encoder_linear = ComplexLinear(n_hidden, self.linear_dim, norm="layer")
            self.decoder_linear = ComplexLinear(self.linear_dim, n_hidden, norm="layer")
            layers: list[ComplexLayer] = []
            for i, o, s in reversed(list(zip(ins, self.channels, self.strides, strict=True))):
                if s == 1:
                    layers.append(ComplexConv2d(o, i, 3, 1, 1, norm=norm))
                elif decoder == "transpose":
                    layers.append(ComplexConvTranspose2d(o, i, 3, 2, 1, 1, norm=norm))
                else:
                    layers.append(_UpsampleConv(o, i, 2, norm=norm))
            self.decoder = nn.ModuleList(layers)
            self.output = nn.Conv2d(c, c, 1) if self.output_conv else None
            if self.output is not None:
                with torch.no_grad():
                    self.output.weight.copy_(torch.eye(c).view(c, c, 1, 1))
                    self.output.bias.zero_()

    def encode(
        self, images: torch.Tensor, phase: torch.Tensor | float | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(latent m, latent φ, last encoder map m, last encoder map φ)`` of ``[B, C, H, W]``
        images entering with zero phase (or with ``phase``, broadcast against them)."""
        m, phi = real_to_polar(images)
        if phase is not None:
            phi = phi + torch.as_tensor(phase, dtype=images.dtype, device=images.device)
        for layer in self.encoder:
            m, phi = layer(m, phi)
        enc_m, enc_phi = m, phi
        m, phi = self.encoder_linear(m.flatten(1), phi.flatten(1))
        return m, phi, enc_m, enc_phi

    def decode(
        self, magnitude: torch.Tensor, phase: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(reconstruction, output m, output φ)`` of a latent ``(m, φ)`` ``[B, linear_dim]``."""
        m, phi = self.decoder_linear(magnitude, phase)
        b = m.shape[0]
        m, phi = m.view(b, *self.hidden_shape), phi.view(b, *self.hidden_shape)
        for layer in self.decoder:
            m, phi = layer(m, phi)
        rec = m if self.output is None else self.output(m)
        if self.output_sigmoid:
            rec = torch.sigmoid(rec)
        return rec, m, phi

    def forward(self, images: torch.Tensor, phase: torch.Tensor | float | None = None) -> CAEOutput:
        """Run ``images`` ``[B, C, H, W]`` (or flattened ``[B, C·H·W]``) through the CAE.

        They enter with zero phase, or with ``phase`` (a number or a tensor broadcast
        against the images) when given.
        """
        images = self._as_images(images)
        lat_m, lat_phi, enc_m, enc_phi = self.encode(images, phase)
        rec, m, phi = self.decode(lat_m, lat_phi)
        return CAEOutput(rec, m, phi, enc_m, enc_phi, lat_m, lat_phi)

    def _as_images(self, images: torch.Tensor) -> torch.Tensor:
        if images.dim() == 2 and images.shape[1] == int(np.prod(self.image_shape)):
            return images.view(-1, *self.image_shape)
        if images.dim() != 4 or tuple(images.shape[1:]) != self.image_shape:
            raise ValueError(
                f"images must have shape [B, {', '.join(map(str, self.image_shape))}] "
                f"(or [B, {int(np.prod(self.image_shape))}]), got {tuple(images.shape)}"
            )
        return images

    def config(self) -> dict[str, Any]:
        """JSON-serialisable constructor arguments, with ``class`` naming the model."""
        return {
            "class": "ComplexAutoEncoder",
            "image_shape": list(self.image_shape),
            "channels": list(self.channels),
            "strides": list(self.strides),
            "linear_dim": self.linear_dim,
            "norm": self.norm_kind,
            "decoder": self.decoder_kind,
            "output_conv": self.output_conv,
            "output_sigmoid": self.output_sigmoid,
            "seed": self.seed,
        }

    def extra_repr(self) -> str:
        return (
            f"image {self.image_shape}, channels {self.channels}, strides {self.strides}, "
            f"linear {self.linear_dim}, decoder={self.decoder_kind}"
        )


def reconstruction_loss(output: CAEOutput | torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """Mean squared error between the reconstruction and ``images`` (any matching shapes).

    Examples
    --------
    >>> import torch
    >>> float(reconstruction_loss(torch.zeros(2, 1, 4, 4), torch.ones(2, 16)))
    1.0
    """
    rec = output.reconstruction if isinstance(output, CAEOutput) else output
    return F.mse_loss(rec.reshape(rec.shape[0], -1), images.reshape(images.shape[0], -1))


def _unit(x: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """``x / max(‖x‖, eps)`` over dim 1 (``F.normalize``, without its slow strided norm)."""
    return x / torch.sqrt((x * x).sum(1, keepdim=True)).clamp_min(eps)


def contrastive_phase_loss(
    magnitude: torch.Tensor,
    phase: torch.Tensor,
    *,
    n_anchors: int = 100,
    n_positives: int = 1,
    n_negatives: int = 100,
    top_k: int = 5,
    bottom_m: int = 500,
    temperature: float = 0.05,
    features: str = "angle",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Contrastive loss on phases of the CtCAE (Stanić et al. 2023, arXiv:2305.15001).

    Positions of a ``[B, C, H, W]`` map are compared by their magnitude vectors over the
    ``C`` channels (cosine similarity, the "addresses"). For ``n_anchors`` positions drawn
    at random, the positives are drawn from the ``top_k`` most similar other positions and
    the negatives from the ``bottom_m`` least similar; the loss is the soft-target
    cross-entropy of the anchor's phase features against them (cosine similarity over
    channels divided by ``temperature``), so that positions with the same magnitudes are
    pulled to the same phase and different ones pushed apart. As in the reference code the
    same anchor positions and the same similarity ranks are used for every image of a batch.
    Two implementation details differ: the anchor itself is forced to rank 0 (the reference
    assumes it sorts first, which ties at distance 0 may break), and ties are broken at
    random (a jitter of 1e-6 drawn with ``generator``) and the ranks found with ``topk``
    instead of a full sort (about 5× faster on CPU; the same distribution of pairs).

    Parameters
    ----------
    magnitude, phase : torch.Tensor
        ``[B, C, H, W]`` maps (e.g. the decoder output or the encoder's last map).
    n_anchors, n_positives, n_negatives, top_k, bottom_m : int
        CtCAE defaults for the 32×32 decoder output: 100, 1, 100, 5, 500; for its 4×4
        encoder map: 4, 1, 2, 1, 2.
    temperature : float, default 0.05
    features : {"angle", "phasor"}, default "angle"
        Phase features compared: the angles themselves (the reference code) or the unit
        phasors ``(cos φ, sin φ)`` per channel (respects the circle).
    generator : torch.Generator, optional
        Draws the anchors and ranks (seeded runs).

    Examples
    --------
    >>> import torch
    >>> m = torch.zeros(1, 2, 4, 4)
    >>> m[:, 0, :, :2] = 1.0
    >>> m[:, 1, :, 2:] = 1.0  # two regions with different magnitude vectors
    >>> good = torch.where(m[:, :1] > 0, 0.5, 2.0).expand(1, 2, 4, 4)  # one phase per region
    >>> kw = dict(n_anchors=16, top_k=3, n_negatives=4, bottom_m=8, features="phasor")
    >>> bad = torch.zeros(1, 2, 4, 4)  # everything at one phase
    >>> bool(contrastive_phase_loss(m, good, **kw) < contrastive_phase_loss(m, bad, **kw))
    True
    """
    if magnitude.shape != phase.shape or magnitude.dim() != 4:
        raise ValueError(
            f"magnitude and phase must be [B, C, H, W] maps of one shape, got "
            f"{tuple(magnitude.shape)} and {tuple(phase.shape)}"
        )
    if features not in _FEATURES:
        raise ValueError(f"features must be one of {list(_FEATURES)}, got {features!r}")
    if not (isinstance(temperature, int | float) and temperature > 0):
        raise ValueError(f"temperature must be a positive number, got {temperature!r}")
    b, c, h, w = magnitude.shape
    p = h * w
    checks = {
        "n_anchors": (n_anchors, 1, p),
        "top_k": (top_k, 1, p - 1),
        "n_positives": (n_positives, 1, top_k),
        "bottom_m": (bottom_m, 1, p),
        "n_negatives": (n_negatives, 1, bottom_m),
    }
    for name, (v, lo, hi) in checks.items():
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise ValueError(
                f"{name} must be an integer in [{lo}, {hi}] for {h}x{w} maps, got {v!r}"
            )
    device = magnitude.device
    addresses = _unit(magnitude.detach().reshape(b, c, p))
    if features == "angle":
        feats = phase.reshape(b, c, p)
    else:
        feats = torch.cat((torch.cos(phase), torch.sin(phase)), dim=1).reshape(b, 2 * c, p)
    anchors = torch.randperm(p, generator=generator)[:n_anchors].to(device)
    pos_rank = (torch.randperm(top_k, generator=generator)[:n_positives] + 1).to(device)
    neg_pick = torch.randperm(bottom_m, generator=generator)[:n_negatives].to(device)
    jitter = torch.rand(b, 1, p, generator=generator).to(device=device, dtype=addresses.dtype)
    distance = 1.0 - torch.einsum("bca,bcp->bap", addresses[:, :, anchors], addresses)
    distance = distance + 1e-6 * jitter  # ties (e.g. the background) broken at random
    distance[:, torch.arange(n_anchors, device=device), anchors] = -1.0  # rank 0: the anchor
    near = torch.topk(distance, top_k + 1, dim=-1, largest=False, sorted=True).indices
    far = torch.topk(distance, bottom_m, dim=-1, largest=True, sorted=False).indices
    picked = torch.cat((near[:, :, pos_rank], far[:, :, neg_pick]), dim=-1)  # [B, Na, Np + Nn]
    anchor_f = _unit(feats[:, :, anchors])  # [B, C', Na]
    k = picked.shape[-1]
    index = picked.reshape(b, 1, n_anchors * k).expand(-1, feats.shape[1], -1)
    pair_f = torch.gather(feats, 2, index).reshape(b, -1, n_anchors, k)  # [B, C', Na, Np + Nn]
    pair_f = _unit(pair_f)
    logits = torch.einsum("bca,bcak->bak", anchor_f, pair_f) / temperature
    log_p = torch.log_softmax(logits, dim=-1)
    return -(log_p[..., :n_positives].mean(-1)).mean()


def contrastive_cae_loss(
    output: CAEOutput,
    images: torch.Tensor,
    *,
    weight: float = 1e-4,
    temperature: float = 0.05,
    features: str = "angle",
    decoder_pairs: dict[str, int] | None = None,
    encoder_pairs: dict[str, int] | None = None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """CtCAE training loss: reconstruction MSE + ``weight`` × (decoder + encoder contrastive).

    The decoder term uses the output layer (defaults: 100 anchors, 1 of the top 5 as
    positive, 100 of the bottom 500 as negatives, scaled down to the map size), the encoder
    term the encoder's last map (4 anchors, top 1, 2 of the bottom 2), as in the CtCAE code.
    ``decoder_pairs`` / ``encoder_pairs`` override those counts (keys ``n_anchors``,
    ``n_positives``, ``n_negatives``, ``top_k``, ``bottom_m``); ``{"n_anchors": 0}`` drops a
    term.

    Returns
    -------
    loss, parts : torch.Tensor, dict
        The total loss and its parts as floats (``mse``, ``contrastive_decoder``,
        ``contrastive_encoder``).
    """
    mse = reconstruction_loss(output, images)
    parts = {"mse": float(mse.detach())}
    total = mse
    for name, m, phi, defaults, given in (
        ("decoder", output.magnitude, output.phase, (100, 1, 100, 5, 500), decoder_pairs),
        ("encoder", output.encoder_magnitude, output.encoder_phase, (4, 1, 2, 1, 2), encoder_pairs),
    ):
        p = m.shape[-1] * m.shape[-2]
        keys = ("n_anchors", "n_positives", "n_negatives", "top_k", "bottom_m")
        kw = dict(zip(keys, defaults, strict=True))
        if given:
            unknown = sorted(set(given) - set(keys))
            if unknown:
                raise ValueError(f"{name}_pairs: unknown key(s) {unknown}; accepted: {list(keys)}")
            kw.update(given)
        if kw["n_anchors"] == 0:
            continue
        kw["n_anchors"] = min(kw["n_anchors"], p)
        kw["top_k"] = min(kw["top_k"], p - 1)
        kw["bottom_m"] = min(kw["bottom_m"], p - 1 - kw["top_k"] if p > 2 else 1)
        kw["n_positives"] = min(kw["n_positives"], kw["top_k"])
        kw["n_negatives"] = min(kw["n_negatives"], kw["bottom_m"])
        term = contrastive_phase_loss(
            m, phi, temperature=temperature, features=features, generator=generator, **kw
        )
        parts[f"contrastive_{name}"] = float(term.detach())
        total = total + weight * term
    return total, parts


@torch.no_grad()
def object_features(
    model: ComplexAutoEncoder, images: torch.Tensor | np.ndarray, *, batch_size: int = 256
) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel magnitude and phase of the CAE's complex output layer, for clustering.

    Runs in eval mode (BatchNorm uses its running statistics) without gradients.

    Parameters
    ----------
    model : ComplexAutoEncoder
    images : array or tensor
        ``[B, C, H, W]`` (a ``[B, 1, C, H, W]`` scene batch with one time step is accepted).
    batch_size : int, default 256
        Images per forward pass.

    Returns
    -------
    magnitude, phase : numpy.ndarray
        ``[B, C, H, W]`` float32 each (phase in radians, in (−π, π]).

    Examples
    --------
    >>> import torch
    >>> from neurosim.models._cae import ComplexAutoEncoder, object_features
    >>> cae = ComplexAutoEncoder((1, 32, 32), channels=(4, 4), strides=(2, 2), linear_dim=8, seed=0)
    >>> m, phi = object_features(cae, torch.rand(3, 1, 32, 32))
    >>> m.shape, bool(abs(phi).max() <= 3.1416)
    ((3, 1, 32, 32), True)
    """
    x = torch.as_tensor(np.asarray(images) if not torch.is_tensor(images) else images)
    if x.dim() == 5 and x.shape[1] == 1:
        x = x[:, 0]
    p = next(model.parameters())
    was_training = model.training
    model.eval()
    try:
        ms, phis = [], []
        for start in range(0, x.shape[0], batch_size):
            out = model(x[start : start + batch_size].to(device=p.device, dtype=p.dtype))
            ms.append(out.magnitude.cpu())
            phase = torch.remainder(out.phase + math.pi, 2 * math.pi) - math.pi
            phis.append(torch.where(phase == -math.pi, math.pi, phase).cpu())
    finally:
        model.train(was_training)
    return torch.cat(ms).numpy(), torch.cat(phis).numpy()
