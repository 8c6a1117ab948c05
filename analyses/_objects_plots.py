"""Figure of object discovery: input, reconstruction, phase map and clusters per scene."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import ListedColormap, hsv_to_rgb  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from ._figure_io import save_figure  # noqa: E402
from ._objects import _as_numpy  # noqa: E402


def _image(x: np.ndarray) -> np.ndarray:
    """``[C, H, W]`` or ``[H, W]`` -> what ``imshow`` takes (greyscale 2-D, colour HWC)."""
    if x.ndim == 3:
        x = x[0] if x.shape[0] == 1 else np.moveaxis(x, 0, -1)
    return np.clip(x, 0.0, 1.0)


def phase_map(magnitude: np.ndarray, phase: np.ndarray, *, vmax: float | None = None) -> np.ndarray:
    """RGB ``[..., H, W, 3]`` with hue = phase and value = magnitude (saturation 1).

    ``magnitude``, ``phase`` are ``[..., H, W]`` or ``[..., C, H, W]`` (channels pooled into
    the mean phasor ``mean_c m e^{iφ}``, so channels out of phase darken the pixel); values are
    divided by ``vmax`` (default: the largest ``mean_c m``) and clipped to 1.

    Examples
    --------
    >>> rgb = phase_map(np.ones((2, 2)), np.array([[0.0, np.pi], [-np.pi / 2, np.pi / 2]]))
    >>> rgb.shape, rgb[0, 0].round(3).tolist()
    ((2, 2, 3), [1.0, 0.0, 0.0])
    """
    m, ph = np.broadcast_arrays(np.asarray(magnitude, float), np.asarray(phase, float))
    if m.ndim >= 3:
        auto = float(m.mean(-3).max()) if m.size else 0.0  # the longest phasor possible
        z = (m * np.exp(1j * ph)).mean(-3)
        m, ph = np.abs(z), np.angle(z)
    else:
        auto = float(m.max()) if m.size else 0.0
    top = auto if vmax is None else float(vmax)
    value = np.clip(m / top, 0.0, 1.0) if top > 0 else np.zeros_like(m)
    hue = np.mod(ph, 2 * np.pi) / (2 * np.pi)
    return hsv_to_rgb(np.stack([hue, np.ones_like(hue), value], -1))


def plot_object_scenes(
    images: np.ndarray,
    reconstructions: np.ndarray,
    magnitude: np.ndarray,
    phase: np.ndarray,
    clusters: np.ndarray,
    *,
    labels: np.ndarray | None = None,
    n_scenes: int = 4,
    title: str | None = None,
    path: str | Path | None = None,
) -> Figure:
    """One row per scene: input, reconstruction, phase map, clusters (and true labels).

    Parameters
    ----------
    images, reconstructions : array-like
        ``[B, C, H, W]`` (or ``[B, H, W]``) in ``[0, 1]``; torch tensors are accepted.
    magnitude, phase : array-like
        Model outputs ``[B, C, H, W]`` (or ``[B, H, W]``): the phase map shows hue = phase,
        value = magnitude (:func:`phase_map`, scaled by the largest magnitude shown).
    clusters : array-like
        ``int [B, H, W]`` cluster ids (e.g. from :func:`analyses.cluster_phases`); −1 is grey.
    labels : array-like, optional
        ``int [B, H, W]`` ground-truth label maps, shown in a last column (−1 grey).
    n_scenes : int, default 4
        The first ``n_scenes`` scenes are shown.
    title : str, optional
    path : str or Path, optional
        Save the figure there (and close it).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> img = np.zeros((2, 1, 8, 8)); img[:, :, 2:5, 2:5] = 1
    >>> fig = plot_object_scenes(img, img, img, img * 2.0, img[:, 0].astype(int))
    >>> len(fig.axes)
    8
    """
    imgs = _as_numpy(images, "images")
    recs = _as_numpy(reconstructions, "reconstructions")
    mag = _as_numpy(magnitude, "magnitude")
    ph = _as_numpy(phase, "phase")
    cl = _as_numpy(clusters, "clusters")
    lab = None if labels is None else _as_numpy(labels, "labels")
    n = min(int(n_scenes), len(imgs))
    if n < 1:
        raise ValueError(f"n_scenes = {n_scenes!r} is not allowed; it must be >= 1")
    cols = ["input", "reconstruction", "phase (hue) · magnitude (value)", "clusters"]
    if lab is not None:
        cols.append("true labels")
    top = float((mag[:n].mean(-3) if mag.ndim == 4 else mag[:n]).max()) if mag.size else 1.0
    n_ids = int(max(cl[:n].max(initial=0), -1 if lab is None else lab[:n].max(initial=0))) + 2
    base = plt.get_cmap("tab10" if n_ids <= 11 else "tab20")
    cmap = ListedColormap([(0.6, 0.6, 0.6)] + [base(i % base.N) for i in range(n_ids - 1)])
    fig, axes = plt.subplots(n, len(cols), figsize=(2.0 * len(cols), 2.0 * n), squeeze=False)
    for i in range(n):
        panels = [
            ("gray", _image(imgs[i])),
            ("gray", _image(recs[i])),
            (None, phase_map(mag[i], ph[i], vmax=top)),
            (cmap, cl[i]),
        ]
        if lab is not None:
            panels.append((cmap, lab[i]))
        for j, (cm, data) in enumerate(panels):
            ax = axes[i, j]
            if cm is cmap:
                ax.imshow(data, cmap=cmap, vmin=-1.5, vmax=n_ids - 1.5, interpolation="nearest")
            else:
                ax.imshow(data, cmap=cm, vmin=0, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(cols[j], fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)
