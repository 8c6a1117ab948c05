"""Backpropagation-through-time fitting of a data-constrained RNN (the ``method="bptt"`` path)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from .._train import seeded_rng, seeded_torch
from ._rls import activation_pair


class BPTTFitter:
    """Adam on the MSE of free runs from each trial's first frame (scaled units, frames 1..T−1)."""

    def __init__(
        self,
        data: np.ndarray,
        inputs: np.ndarray,
        train_idx: np.ndarray,
        *,
        settings: dict[str, Any],
        device: torch.device,
        dtype: torch.dtype,
    ) -> None:
        self.s, self.train_idx = settings, train_idx
        self.data = torch.as_tensor(data, dtype=dtype, device=device)
        self.x = torch.as_tensor(inputs, dtype=dtype, device=device)
        n, n_in, mode = data.shape[2], inputs.shape[2], settings["inputs"]
        self.phi, self.phi_inv = activation_pair(settings["activation"])
        gen = seeded_torch(settings["seed"], 2)  # the same initial J as RLS
        w_rec = torch.randn(n, n, generator=gen, dtype=torch.float64) * settings["g"] / math.sqrt(n)
        learn_in = mode in ("given", "learned")
        if learn_in:
            w_in = torch.randn(
                n, n_in, generator=seeded_torch(settings["seed"], 4), dtype=torch.float64
            ) / math.sqrt(n_in)
        else:
            w_in = settings["noise_amp"] * torch.eye(n) if mode == "noise" else torch.zeros(n, n_in)
        self.w = {
            "w_rec": w_rec.to(device, dtype).requires_grad_(True),
            "w_in": w_in.to(device, dtype).requires_grad_(learn_in),
            "b": torch.zeros(n, dtype=dtype, device=device).requires_grad_(settings["bias"]),
        }
        params = [p for p in self.w.values() if p.requires_grad]
        self.opt = torch.optim.Adam(params, lr=settings["lr"])

    def _run(self, idx: np.ndarray) -> torch.Tensor:
        a = self.data[idx]
        h = self.phi_inv(a[:, 0])
        drive = torch.matmul(self.x[idx], self.w["w_in"].t()) + self.w["b"]
        alpha, k = self.s["dt"] / self.s["tau"], self.s["truncation"]
        rates = [self.phi(h)]
        for t in range(1, a.shape[1]):
            h = h + alpha * (torch.addmm(drive[:, t], rates[-1], self.w["w_rec"].t()) - h)
            if k and t % k == 0:
                h = h.detach()
            rates.append(self.phi(h))
        return torch.stack(rates, dim=1)

    def train_epoch(self, epoch: int) -> float:
        order = seeded_rng(self.s["seed"], 2, epoch).permutation(self.train_idx)
        size, total = self.s["batch_trials"] or len(order), 0.0
        for start in range(0, len(order), size):
            chunk = order[start : start + size]
            loss = (self._run(chunk)[:, 1:] - self.data[chunk][:, 1:]).square().mean()
            self.opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.opt.param_groups[0]["params"], self.s["clip_grad"])
            self.opt.step()
            total += loss.item() * len(chunk)
        return total / len(order)

    def evaluate(self, idx: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return self._run(idx).cpu().numpy().astype(np.float64)

    def weights(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu().to(torch.float32).clone() for k, v in self.w.items()}
