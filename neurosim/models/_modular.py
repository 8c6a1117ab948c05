"""Modular leaky rate RNN: K modules with their own size, τ, activation and noise."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from ._activations import resolve_activation
from ._base import RecurrentModel
from ._connectivity import (
    ModuleSpec,
    build_mask,
    connectivity_config,
    module_list,
    module_selection,
    resolve_connectivity,
)

_INITS = ("orthogonal", "normal", "identity")
_COUNT_COLUMNS = (
    "recurrent_within",
    "recurrent_incoming",
    "input",
    "bias",
    "readout",
    "activation",
    "gain",
    "h0",
)


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


class ModularRNN(RecurrentModel):
    """Leaky rate RNN made of K modules with block-structured recurrent weights.

    Each unit *i* belongs to one module and takes that module's time constant,
    activation and noise (α_i = dt/τ_i)::

        h ← h + α ⊙ (−h + (W ⊙ M) r + W_in x + b) + √(2α) σ ⊙ ξ,   r = g ⊙ φ(h)

    read out as ``y = W_out r + b_out``. ``φ`` is applied module by module; ``M`` is a
    fixed boolean mask (rows: targets, columns: sources) built from ``connectivity``,
    so masked weights are exactly zero in effect and get zero gradient; ``g`` is one
    learnable gain per module (``module_gains=True``; otherwise 1).

    Parameters
    ----------
    n_inputs, n_outputs : int
        Input and output sizes.
    modules : list of ModuleSpec or dict
        One spec per module: ``name``, ``size`` and optionally ``tau`` (ms, default
        100), ``activation`` (default ``"relu"``; ``"adaptive"`` or
        ``"adaptive_per_neuron"`` learn an adaptive activation for the module),
        ``sigma_rec`` (default 0.05) and ``gain`` (within-module init scale, 0.5).
    connectivity : str, dict, list or array, default "dense"
        ``"dense"`` (every block), ``"none"`` (within-module blocks only), a dict
        ``{"A->B": entry}`` (projection from module A to module B; entries ``"dense"``,
        ``"none"``, a density in [0, 1] drawn with ``seed``, or a boolean mask of shape
        ``(size_B, size_A)``; within-module blocks not listed are dense, other pairs take
        the ``"default"`` key's entry, ``"none"`` without it), a K×K list of entries
        indexed ``[target][source]``, or a full ``[N, N]`` boolean mask.
    dt : float, default 20.0
        Time step in ms (at most every module's ``tau``).
    input_to, readout_from : "all" or list of str, default "all"
        Modules that receive the inputs / that the readout reads.
    w_rec_init : {"orthogonal", "normal", "identity"}, default "orthogonal"
        Initialisation of the within-module blocks (scaled by each module's ``gain``).
    inter_gain : float, default 0.5
        Inter-module weights start as N(0, inter_gain² / fan-in), fan-in counting the
        unmasked inter-module entries per row.
    module_gains : bool, default False
        Learn one output gain per module (for training only inputs, readouts and gains).
    learn_h0 : bool, default False
        Learn the initial state.
    seed : int, optional
        Seeds the initial weights and the sparse masks; drawn from torch's global RNG
        when omitted (and recorded in :meth:`config`, so the model rebuilds exactly).

    Attributes
    ----------
    w_rec : nn.Parameter
        The full recurrent matrix ``[N, N]`` (``recurrent_weights``: what a weights
        perturbation targets); masked entries are held at zero.
    mask : torch.Tensor
        The connectivity mask ``[N, N]`` (float 0/1 buffer).
    module_names : tuple of str
    module_specs : tuple of ModuleSpec

    Examples
    --------
    >>> import torch
    >>> from neurosim.models import ModularRNN
    >>> net = ModularRNN(3, [{"name": "A", "size": 8}, {"name": "B", "size": 4, "tau": 50.0}],
    ...                  2, connectivity={"A->B": "dense"}, seed=0)
    >>> y, h = net(torch.zeros(5, 10, 3))
    >>> tuple(y.shape), tuple(h.shape)
    ((5, 10, 2), (5, 10, 12))
    >>> bool((net.w_rec[:8, 8:] == 0).all())  # nothing flows from B to A
    True
    """

    recurrent_weights = "w_rec"

    def __init__(
        self,
        n_inputs: int,
        modules: Sequence[ModuleSpec | dict[str, Any]],
        n_outputs: int,
        *,
        connectivity: Any = "dense",
        dt: float = 20.0,
        input_to: str | Sequence[str] = "all",
        readout_from: str | Sequence[str] = "all",
        w_rec_init: str = "orthogonal",
        inter_gain: float = 0.5,
        module_gains: bool = False,
        learn_h0: bool = False,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        self.n_inputs = _positive_int("n_inputs", n_inputs)
        self.n_outputs = _positive_int("n_outputs", n_outputs)
        specs = module_list(modules)
        self.module_specs = tuple(specs)
        self.module_names = tuple(m.name for m in specs)
        sizes = [m.size for m in specs]
        self.n_units = n = int(sum(sizes))
        if not (isinstance(dt, int | float) and math.isfinite(dt) and dt > 0):
            raise ValueError(f"dt must be a positive finite number, got {dt!r}")
        self.dt = float(dt)
        for m in specs:
            if self.dt > m.tau:
                raise ValueError(
                    f"dt ({dt} ms) must not exceed tau of module {m.name!r} ({m.tau} ms): "
                    "the Euler step is unstable"
                )
        if w_rec_init not in _INITS:
            raise ValueError(f"w_rec_init must be one of {_INITS}, got {w_rec_init!r}")
        self.w_rec_init = w_rec_init
        if not (
            isinstance(inter_gain, int | float) and math.isfinite(inter_gain) and inter_gain >= 0
        ):
            raise ValueError(f"inter_gain must be a finite number >= 0, got {inter_gain!r}")
        self.inter_gain = float(inter_gain)
        if seed is None:
            seed = int(torch.randint(0, 2**31 - 1, ()).item())
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise ValueError(f"seed must be None or an integer >= 0, got {seed!r}")
        self.seed, self.learn_h0 = int(seed), bool(learn_h0)

        edges = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
        self.module_slices = {
            m.name: slice(int(a), int(b))
            for m, a, b in zip(specs, edges[:-1], edges[1:], strict=True)
        }
        entries = resolve_connectivity(connectivity, self.module_names, sizes)
        mask = build_mask(entries, sizes, self.seed)
        self._connectivity = connectivity_config(connectivity, entries, self.module_names)
        self._dense = bool(mask.all())
        self._input_to = module_selection(input_to, "input_to", self.module_names)
        self._readout_from = module_selection(readout_from, "readout_from", self.module_names)

        # activations: modules with a parametric one register it as submodule phi_<name>
        self._activation_configs: list[Any] = []
        self.activation_names: tuple[str, ...] = ()
        segments: list[list[Any]] = []
        for m, a, b in zip(specs, edges[:-1], edges[1:], strict=True):
            fn, name, cfg = resolve_activation(m.activation, m.size)
            if isinstance(fn, nn.Module):
                self.add_module(f"phi_{m.name}", fn)
            self._activation_configs.append(cfg)
            self.activation_names += (name,)
            if segments and segments[-1][2] is fn and not isinstance(fn, nn.Module):
                segments[-1][1] = int(b)  # merge neighbours sharing a fixed activation
            else:
                segments.append([int(a), int(b), fn])
        self._segments: list[tuple[int, int, Callable[[torch.Tensor], torch.Tensor]]] = [
            (a, b, fn) for a, b, fn in segments
        ]

        per_unit = np.repeat(np.arange(len(specs)), sizes)
        alpha = np.array([self.dt / m.tau for m in specs])[per_unit]
        sigma = np.array([m.sigma_rec for m in specs])[per_unit]
        self._noiseless = bool((sigma == 0).all())
        as_t = torch.as_tensor
        dtype = torch.get_default_dtype()
        self.register_buffer("mask", as_t(mask, dtype=dtype), persistent=False)
        self.register_buffer("alpha", as_t(alpha, dtype=dtype), persistent=False)
        self.register_buffer(
            "noise_scale", as_t(np.sqrt(2 * alpha) * sigma, dtype=dtype), persistent=False
        )
        self.register_buffer("module_index", as_t(per_unit, dtype=torch.long), persistent=False)
        in_mask = self._unit_mask(self._input_to, (n, self.n_inputs), 0)
        out_mask = self._unit_mask(self._readout_from, (self.n_outputs, n), 1)
        self.register_buffer("in_mask", in_mask, persistent=False)
        self.register_buffer("out_mask", out_mask, persistent=False)
        self.register_buffer("frozen_rows", None, persistent=False)
        self._frozen: set[str] = set()

        self.w_in = nn.Parameter(torch.empty(n, self.n_inputs))
        self.w_rec = nn.Parameter(torch.empty(n, n))
        self.b = nn.Parameter(torch.zeros(n))
        self.w_out = nn.Parameter(torch.empty(self.n_outputs, n))
        self.b_out = nn.Parameter(torch.zeros(self.n_outputs))
        self.h0 = nn.Parameter(torch.zeros(n), requires_grad=self.learn_h0)
        self.register_parameter(
            "gains", nn.Parameter(torch.ones(len(specs))) if module_gains else None
        )
        self.reset_parameters()

    def _unit_mask(self, chosen: list[str] | None, shape: tuple[int, int], axis: int):
        if chosen is None:
            return None  # every module: no mask needed
        mask = torch.zeros(shape)
        for name in chosen:
            sl = self.module_slices[name]
            if axis == 0:
                mask[sl] = 1.0
            else:
                mask[:, sl] = 1.0
        return mask

    # -- parameters ------------------------------------------------------------------------
    def reset_parameters(self) -> None:
        """Initialise the weights from ``seed`` (same seed, same weights)."""
        g = torch.Generator().manual_seed(self.seed)
        n = self.n_units
        with torch.no_grad():
            w = torch.randn(n, n, generator=g)
            mask = self.mask.cpu()
            for m in self.module_specs:
                sl = self.module_slices[m.name]
                fan_in = (mask[sl].sum() - mask[sl, sl].sum()).item() / m.size
                w[sl] *= self.inter_gain / math.sqrt(max(fan_in, 1.0))
                block = torch.empty(m.size, m.size)
                if self.w_rec_init == "orthogonal":
                    nn.init.orthogonal_(block, gain=m.gain, generator=g)
                elif self.w_rec_init == "normal":
                    nn.init.normal_(block, 0.0, m.gain / math.sqrt(m.size), generator=g)
                else:
                    block = m.gain * torch.eye(m.size)
                w[sl, sl] = block
            self.w_rec.copy_(w * mask)
            w_in = torch.randn(n, self.n_inputs, generator=g) / math.sqrt(self.n_inputs)
            self.w_in.copy_(w_in if self.in_mask is None else w_in * self.in_mask.cpu())
            n_read = sum(
                self.module_slices[m].stop - self.module_slices[m].start
                for m in (self._readout_from or self.module_names)
            )
            w_out = torch.randn(self.n_outputs, n, generator=g) / math.sqrt(n_read)
            self.w_out.copy_(w_out if self.out_mask is None else w_out * self.out_mask.cpu())
            for p in (self.b, self.b_out, self.h0):
                p.zero_()
            if self.gains is not None:
                self.gains.fill_(1.0)
        for name in self.module_names:
            phi = getattr(self, f"phi_{name}", None)
            if hasattr(phi, "reset_parameters"):
                phi.reset_parameters()

    def freeze_recurrent(self, modules: str | Sequence[str] | None = None) -> None:
        """Stop training the recurrent dynamics of ``modules`` (all when omitted).

        Freezes each module's incoming recurrent weights (its rows of ``w_rec``), its
        bias and its activation's parameters; ``w_in``, ``w_out``, ``b_out``, ``h0`` and
        the module gains stay trainable. Freezing every module sets ``requires_grad``
        off on ``w_rec`` and ``b``; freezing some blocks their gradient rows instead
        (exactly zero, so with Adam at ``weight_decay=0`` they never move). Not saved in
        :meth:`config` or checkpoints; :meth:`unfreeze_recurrent` undoes it.
        """
        chosen = module_selection(
            "all" if modules is None else modules, "modules", self.module_names
        )
        self._frozen |= set(chosen or self.module_names)
        self._sync_frozen()

    def unfreeze_recurrent(self) -> None:
        """Make every module's recurrent weights, bias and activation trainable again."""
        self._frozen = set()
        self._sync_frozen()

    def _sync_frozen(self) -> None:
        everything = self._frozen == set(self.module_names)
        self.w_rec.requires_grad_(not everything)
        self.b.requires_grad_(not everything)
        if everything or not self._frozen:
            self.frozen_rows = None
        else:
            rows = torch.zeros(self.n_units, dtype=torch.bool, device=self.w_rec.device)
            for name in self._frozen:
                rows[self.module_slices[name]] = True
            self.frozen_rows = rows
        for name in self.module_names:
            phi = getattr(self, f"phi_{name}", None)
            if isinstance(phi, nn.Module):
                phi.requires_grad_(name not in self._frozen)

    @property
    def frozen_modules(self) -> tuple[str, ...]:
        """Modules whose recurrent dynamics are frozen (see :meth:`freeze_recurrent`)."""
        return tuple(m for m in self.module_names if m in self._frozen)

    def effective_weights(self) -> torch.Tensor:
        """``W ⊙ M``: the recurrent weights the step uses ``[N, N]`` (rows: targets)."""
        w = self.w_rec if self._dense else self.w_rec * self.mask
        if self.frozen_rows is not None:
            w = torch.where(self.frozen_rows[:, None], w.detach(), w)
        return w

    def _input_weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        w = self.w_in if self.in_mask is None else self.w_in * self.in_mask
        b = self.b
        if self.frozen_rows is not None:
            b = torch.where(self.frozen_rows, b.detach(), b)
        return w, b

    # -- dynamics --------------------------------------------------------------------------
    def rates(self, h: torch.Tensor) -> torch.Tensor:
        """Module outputs ``r = g ⊙ φ(h)`` (φ of each unit's module) for states ``[..., N]``."""
        if len(self._segments) == 1:
            r = self._segments[0][2](h)
        else:
            r = torch.cat([fn(h[..., a:b]) for a, b, fn in self._segments], dim=-1)
        return r if self.gains is None else r * self.gains[self.module_index]

    def initial_state(self, batch: int) -> torch.Tensor:
        """The (optionally learned) initial state repeated ``batch`` times."""
        return self.h0.expand(batch, -1)

    def _euler(self, h, drive, w_t, noise):
        rec = torch.addmm(drive, self.rates(h), w_t)
        h_next = h + self.alpha * (rec - h)
        return h_next if noise is None else h_next + noise

    def step_driven(
        self, h: torch.Tensor, drive: torch.Tensor, noise: torch.Tensor | None = None
    ) -> torch.Tensor:
        """One Euler step given the input drive ``W_in x + b`` of that step."""
        return self._euler(h, drive, self.effective_weights().t(), noise)

    def step(
        self, state: torch.Tensor, x: torch.Tensor, noise: torch.Tensor | None = None
    ) -> torch.Tensor:
        """One Euler step; adds ``noise`` (already scaled, as from :meth:`sample_noise`) if given."""
        w, b = self._input_weights()
        return self.step_driven(state, torch.addmm(b, x, w.t()), noise)

    def input_drive(self, inputs: torch.Tensor) -> torch.Tensor:
        """``W_in x + b`` for every step in one matmul."""
        w, b = self._input_weights()
        return torch.matmul(inputs, w.t()) + b

    def driven_stepper(self):
        """:meth:`step_driven` with the masked recurrent matrix assembled once per pass."""
        w_t = self.effective_weights().t()
        return lambda h, drive, noise=None: self._euler(h, drive, w_t, noise)

    def sample_noise(
        self, shape: tuple[int, ...], *, generator: torch.Generator | None = None
    ) -> torch.Tensor | None:
        """Draw ``√(2α_i) σ_i ξ`` (each unit's module's α and σ); ``None`` if every σ is 0."""
        if self._noiseless:
            return None
        p = self.w_rec
        eps = torch.randn(shape, generator=generator, dtype=p.dtype, device="cpu").to(p.device)
        return eps.mul_(self.noise_scale)

    def readout(self, state: torch.Tensor) -> torch.Tensor:
        """``W_out r + b_out`` (only the ``readout_from`` modules' columns are non-zero)."""
        w = self.w_out if self.out_mask is None else self.w_out * self.out_mask
        return torch.matmul(self.rates(state), w.t()) + self.b_out

    # -- description -----------------------------------------------------------------------
    def unit_coords(self) -> dict[str, np.ndarray]:
        """``module`` (the module's name), ``kind`` (``"rate"``) and ``index_in_module``."""
        sizes = [m.size for m in self.module_specs]
        return {
            "module": np.repeat(np.array(self.module_names, dtype=object), sizes),
            "kind": np.full(self.n_units, "rate", dtype=object),
            "index_in_module": np.concatenate([np.arange(s) for s in sizes]),
        }

    def parameter_counts(self, trainable_only: bool = False) -> pd.DataFrame:
        """Learnable scalars per module, counting only unmasked entries.

        Columns: ``recurrent_within`` (the module's own block), ``recurrent_incoming``
        (from other modules into it), ``input`` (its rows of ``w_in``), ``bias``,
        ``readout`` (its columns of ``w_out``), ``activation`` (adaptive activation
        parameters), ``gain``, ``h0`` (when learned) and ``total``; a last row ``total``
        sums them and adds the output bias ``b_out`` (``n_outputs``) to ``readout``.

        Parameters
        ----------
        trainable_only : bool, default False
            Count only what training would change now (respects :meth:`freeze_recurrent`
            and ``requires_grad``).

        Examples
        --------
        >>> from neurosim.models import ModularRNN
        >>> net = ModularRNN(2, [{"name": "A", "size": 3}, {"name": "B", "size": 2}], 1,
        ...                  connectivity={"A->B": "dense"}, seed=0)
        >>> counts = net.parameter_counts()
        >>> counts["recurrent_incoming"].to_dict()  # B receives 3 x 2 weights from A
        {'A': 0, 'B': 6, 'total': 6}
        >>> int(counts.loc["total", "total"])  # 9 + 4 + 6 recurrent, 10 in, 5 bias, 5 + 1 out
        40
        """
        mask = self.mask.detach().cpu().numpy() > 0
        in_mask = None if self.in_mask is None else self.in_mask.cpu().numpy() > 0
        out_mask = None if self.out_mask is None else self.out_mask.cpu().numpy() > 0

        def live(p: torch.Tensor | None, name: str | None = None) -> bool:
            if p is None:
                return False
            frozen = name is not None and name in self._frozen
            return not trainable_only or (p.requires_grad and not frozen)

        rows = []
        for m in self.module_specs:
            sl = self.module_slices[m.name]
            within = int(mask[sl, sl].sum())
            phi = getattr(self, f"phi_{m.name}", None)
            act = 0
            if isinstance(phi, nn.Module):
                act = sum(p.numel() for p in phi.parameters() if live(p))
            rows.append(
                {
                    "recurrent_within": within * live(self.w_rec, m.name),
                    "recurrent_incoming": (int(mask[sl].sum()) - within) * live(self.w_rec, m.name),
                    "input": int(m.size * self.n_inputs if in_mask is None else in_mask[sl].sum())
                    * live(self.w_in),
                    "bias": m.size * live(self.b, m.name),
                    "readout": int(
                        m.size * self.n_outputs if out_mask is None else out_mask[:, sl].sum()
                    )
                    * live(self.w_out),
                    "activation": act,
                    "gain": int(live(self.gains)),
                    "h0": m.size * (self.learn_h0 and live(self.h0)),
                }
            )
        df = pd.DataFrame(rows, index=pd.Index(self.module_names, name="module"))
        df = df[list(_COUNT_COLUMNS)].astype(np.int64)
        total = df.sum()
        total["readout"] += self.n_outputs * live(self.b_out)
        df.loc["total"] = total
        df["total"] = df[list(_COUNT_COLUMNS)].sum(axis=1)
        return df

    def config(self) -> dict[str, Any]:
        """JSON-safe constructor arguments (:func:`neurosim.models.build_model` rebuilds)."""
        return {
            "class": "ModularRNN",
            "n_inputs": self.n_inputs,
            "modules": [
                m.to_dict(cfg)
                for m, cfg in zip(self.module_specs, self._activation_configs, strict=True)
            ],
            "n_outputs": self.n_outputs,
            "connectivity": self._connectivity,
            "dt": self.dt,
            "input_to": "all" if self._input_to is None else list(self._input_to),
            "readout_from": "all" if self._readout_from is None else list(self._readout_from),
            "w_rec_init": self.w_rec_init,
            "inter_gain": self.inter_gain,
            "module_gains": self.gains is not None,
            "learn_h0": self.learn_h0,
            "seed": self.seed,
        }

    def extra_repr(self) -> str:
        mods = ", ".join(
            f"{m.name}[{m.size}, τ={m.tau:g}, φ={a}, σ={m.sigma_rec:g}]"
            for m, a in zip(self.module_specs, self.activation_names, strict=True)
        )
        return f"{self.n_inputs} → {mods} → {self.n_outputs}, dt={self.dt} ms"
