"""The model contract every recurrent model in neurosim follows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn


class RecurrentModel(nn.Module):
    """Base class of every neurosim model.

    A model is a ``torch.nn.Module`` with a *pure* one-step map, so that analyses
    (Lyapunov spectra, fixed points, perturbations) can differentiate and
    intervene on it:

    - ``initial_state(batch) -> [B, N]``
    - ``step(state, x, noise=None) -> state`` (deterministic unless ``noise`` is given)
    - ``readout(state) -> y``
    - ``forward(inputs, state=None, *, noise=None, generator=None) -> (outputs, states)``
    - ``unit_coords() -> dict`` naming each state unit (``module``, ``kind``)
    - ``config() -> dict`` (JSON-serialisable; :func:`neurosim.models.build_model` rebuilds)

    Subclasses set ``n_inputs``, ``n_units`` (state size), ``n_outputs`` and ``dt``.
    """

    n_inputs: int
    n_units: int
    n_outputs: int
    dt: float

    def initial_state(self, batch: int) -> torch.Tensor:
        """Initial state ``[batch, n_units]`` (zeros unless a subclass learns it)."""
        p = next(self.parameters())
        return torch.zeros(batch, self.n_units, dtype=p.dtype, device=p.device)

    def step(
        self, state: torch.Tensor, x: torch.Tensor, noise: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Advance ``state [B, N]`` by one time step under input ``x [B, I]``."""
        raise NotImplementedError

    def readout(self, state: torch.Tensor) -> torch.Tensor:
        """Outputs ``[..., O]`` from states ``[..., N]``."""
        raise NotImplementedError

    def sample_noise(
        self, shape: tuple[int, ...], *, generator: torch.Generator | None = None
    ) -> torch.Tensor | None:
        """Per-step state noise of ``shape`` ``[B, T, N]``, or ``None`` if the model has none."""
        return None

    def forward(
        self,
        inputs: torch.Tensor,
        state: torch.Tensor | None = None,
        *,
        noise: bool | torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the model over ``inputs [B, T, I]``.

        Parameters
        ----------
        inputs : torch.Tensor
            Batch-first inputs.
        state : torch.Tensor, optional
            Initial state ``[B, N]``; :meth:`initial_state` when omitted.
        noise : bool or torch.Tensor, optional
            ``True``/``False`` to draw or omit the model's recurrent noise
            (default: draw it in training mode only), or an explicit tensor
            ``[B, T, N]`` of per-step noise as :meth:`step` takes it.
        generator : torch.Generator, optional
            Source of the noise, for seeded runs.

        Returns
        -------
        outputs, states : torch.Tensor
            ``[B, T, O]`` and ``[B, T, N]``; ``states[:, t]`` is the state after step ``t``.
        """
        b, t, _ = inputs.shape
        h = self.initial_state(b) if state is None else state
        eps = self._resolve_noise(noise, (b, t, self.n_units), generator)
        drive = self.input_drive(inputs)
        step = self.driven_stepper()
        states = []
        for k in range(t):
            h = step(h, drive[:, k], None if eps is None else eps[:, k])
            states.append(h)
        hs = torch.stack(states, dim=1)
        return self.readout(hs), hs

    def input_drive(self, inputs: torch.Tensor) -> torch.Tensor:
        """Whatever of ``inputs [B, T, I]`` can be computed for all steps at once (default: as is)."""
        return inputs

    def step_driven(
        self, state: torch.Tensor, drive: torch.Tensor, noise: torch.Tensor | None = None
    ) -> torch.Tensor:
        """:meth:`step` on one step of :meth:`input_drive`; ``forward`` loops over this."""
        return self.step(state, drive, noise)

    def driven_stepper(
        self,
    ) -> Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]:
        """:meth:`step_driven` for one pass over fixed weights: a model may precompute here
        what every step of the pass shares (e.g. a masked weight matrix)."""
        return self.step_driven

    def _resolve_noise(
        self,
        noise: bool | torch.Tensor | None,
        shape: tuple[int, int, int],
        generator: torch.Generator | None,
    ) -> torch.Tensor | None:
        if isinstance(noise, torch.Tensor):
            if tuple(noise.shape) != shape:
                raise ValueError(f"noise must have shape {shape}, got {tuple(noise.shape)}")
            return noise
        draw = self.training if noise is None else bool(noise)
        return self.sample_noise(shape, generator=generator) if draw else None

    def unit_coords(self) -> dict[str, np.ndarray]:
        """Per-unit labels for trajectory coordinates: at least ``module`` and ``kind``."""
        return {
            "module": np.full(self.n_units, type(self).__name__.lower(), dtype=object),
            "kind": np.full(self.n_units, "hidden", dtype=object),
        }

    def config(self) -> dict[str, Any]:
        """JSON-serialisable constructor arguments, with ``class`` naming the model."""
        raise NotImplementedError
