"""Pictures of results: comparison grids, videos and latent-trajectory plots.

Frames come in the canonical layout, float in [0, 1]: one sequence (T, C, H, W).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from odevideo.errors import DataError
from odevideo.models.base import LatentView

CONTEXT_MARK = (220, 60, 60)  # colour of the bar between observed and generated frames


def to_uint8_rgb(frames: torch.Tensor) -> np.ndarray:
    """(T, C, H, W) float in [0, 1] -> (T, H, W, 3) uint8."""
    x = (frames.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
    x = np.moveaxis(x, 1, -1)  # (T, H, W, C)
    return np.repeat(x, 3, axis=-1) if x.shape[-1] == 1 else x[..., :3]


def comparison_grid(truth: list[torch.Tensor], generated: list[torch.Tensor | list[torch.Tensor]], n_context: int,
                    path: str | Path, *, gap: int = 2) -> Path:
    """A PNG with the ground truth of each sequence above what was generated: one row, or one row per sample
    when an entry of ``generated`` is a list of samples; a red bar marks where the context ends and
    extrapolation begins. Each sequence is (T, C, H, W), truth and generated aligned in time."""
    rows = []
    for real, fake in zip(truth, generated, strict=False):
        for seq in (real, *(fake if isinstance(fake, list | tuple) else [fake])):
            frames = to_uint8_rgb(seq)  # (T, H, W, 3)
            t, h, w, _ = frames.shape
            row = np.full((h, t * (w + gap) + gap, 3), 255, np.uint8)
            for i in range(t):
                x = gap + i * (w + gap)
                row[:, x:x + w] = frames[i]
            bar = gap + n_context * (w + gap) - gap
            row[:, bar:bar + gap] = CONTEXT_MARK
            rows += [row, np.full((gap, row.shape[1], 3), 255, np.uint8)]
        rows.append(np.full((gap * 4, rows[-1].shape[1], 3), 255, np.uint8))  # wider gap between sequences
    return _write_png(path, np.concatenate(rows[:-2], axis=0))


def _write_png(path: str | Path, image: np.ndarray) -> Path:
    import imageio.v3 as iio

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(path, image)
    return path


def write_frames(path: str | Path, frames: torch.Tensor, *, fps: float = 4.0) -> Path:
    """Write (T, C, H, W) frames in [0, 1] by extension: ``.npy`` (float32 (T, C, H, W)), ``.gif``, ``.mp4``
    (H.264) or ``.webm`` (VP9), the videos in 4:2:0 colour, which every player plays."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        np.save(path, frames.detach().float().cpu().numpy())
        return path
    if suffix not in (".gif", ".mp4", ".webm"):
        raise DataError(f"unsupported output type {suffix!r} for {path}; use .npy, .gif, .mp4 or .webm")
    import imageio.v3 as iio

    video = to_uint8_rgb(frames)
    if suffix == ".gif":
        iio.imwrite(path, video, duration=1000.0 / fps, loop=0)
    else:
        h, w = video.shape[1:3]
        video = np.pad(video, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)))  # 4:2:0 video needs even sides
        codec = "libx264" if suffix == ".mp4" else "libvpx-vp9"
        iio.imwrite(path, video, plugin="pyav", codec=codec, fps=fps, out_pixel_format="yuv420p")
    return path


def side_by_side(truth: torch.Tensor, generated: torch.Tensor, *, gap: int = 2) -> torch.Tensor:
    """Truth and generated (T, C, H, W) side by side with a white gap: (T, C, H, 2W + gap)."""
    white = torch.ones(*truth.shape[:3], gap, dtype=truth.dtype)
    return torch.cat([truth.cpu(), white, generated.cpu()], dim=-1)


def latent_plot(points: torch.Tensor, explained: list[float], n_context: int, path: str | Path, *,
                title: str = "") -> Path:
    """Plot latent trajectories on their first two principal components, ``points`` (N, T, 2) (a model's
    :meth:`~odevideo.models.base.VideoModel.latent_view`), ``explained`` the fraction of variance of each: the
    observed part as solid lines with dots, the extrapolated part dashed with crosses."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = points.shape[0]
    pcs = points.detach().double().cpu().numpy()
    fig, ax = plt.subplots(figsize=(6, 5), dpi=110)
    colours = plt.cm.tab10(np.arange(n) % 10)
    for i in range(n):
        obs, fut = pcs[i, :n_context], pcs[i, n_context - 1:]
        ax.plot(obs[:, 0], obs[:, 1], "-o", color=colours[i], ms=3, lw=1.5)
        ax.plot(fut[:, 0], fut[:, 1], "--x", color=colours[i], ms=4, lw=1.0)
        ax.plot(*obs[0], "s", color=colours[i], ms=6)
    ax.plot([], [], "-o", color="grey", label="observed (context)")
    ax.plot([], [], "--x", color="grey", label="extrapolated (future)")
    ax.plot([], [], "s", color="grey", label="z0")
    ax.set_xlabel(f"PC 1 ({explained[0]:.0%} of variance)")
    ax.set_ylabel(f"PC 2 ({explained[1]:.0%} of variance)")
    ax.set_title(title or "latent trajectories z(t), first two principal components")
    ax.legend(loc="best", fontsize=8)
    return _save_figure(fig, path)


def pose_plot(frames: torch.Tensor, centres: torch.Tensor, n_context: int, path: str | Path, *,
              columns: int = 4) -> Path:
    """The latent view of object models: each object's centre over time, drawn over a frame of its sequence.

    Args:
        frames: the frame each panel shows, one per sequence, (N, C, H, W) in [0, 1].
        centres: each object's centre at each time, (N, T, K, 2), (row, col) in pixels.
        n_context: how many of the T times are context (drawn solid; the rest dashed, with crosses).
        path: the PNG to write.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n, t, k = centres.shape[:3]
    rows = (n + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(2.6 * columns, 2.6 * rows), dpi=100, squeeze=False)
    images = to_uint8_rgb(frames)  # (N, H, W, 3)
    c = centres.detach().double().cpu().numpy()
    colours = plt.cm.tab10(np.arange(k) % 10)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        ax.imshow(images[i])
        for j in range(k):
            ys, xs = c[i, :, j, 0], c[i, :, j, 1]
            ax.plot(xs[:n_context], ys[:n_context], "-o", color=colours[j], ms=2, lw=1.2)
            ax.plot(xs[n_context - 1:], ys[n_context - 1:], "--x", color=colours[j], ms=3, lw=1.0)
    fig.suptitle("object centres: context solid, extrapolation dashed", fontsize=9)
    return _save_figure(fig, path)


def plot_latent(view: LatentView, frames: torch.Tensor, n_context: int, path: str | Path) -> Path:
    """Draw a model's latent view (:meth:`~odevideo.models.base.VideoModel.latent_view`) of N sequences:
    object tracks over each sequence's last context frame (:func:`pose_plot`; ``frames`` (N, T, C, H, W)), or
    the latent on its principal components (:func:`latent_plot`)."""
    if view.kind == "tracks":
        return pose_plot(frames[:, n_context - 1], view.points, n_context, path)
    return latent_plot(view.points, view.explained or [0.0, 0.0], n_context, path)


def _save_figure(fig: object, path: str | Path) -> Path:
    """Lay out a matplotlib figure, write it to ``path`` (creating folders) and close it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()  # type: ignore[attr-defined]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)  # type: ignore[attr-defined]
    plt.close(fig)  # type: ignore[arg-type]
    return path


def html_report(path: str | Path, *, title: str, intro: str, pictures: dict[str, Path],
                results: dict[str, object]) -> Path:
    """One page to open: the pictures (linked by relative path, so the folder can move), the scores of the
    model beside the baselines', and the per-frame MSE curve drawn inline. ``results`` is what
    :func:`odevideo.evaluation.evaluate` returns."""
    import html

    path = Path(path)
    rows = {"model": results, **results.get("baselines", {})}  # type: ignore[dict-item]
    names = [m for m in ("mse", "mae", "psnr", "ssim", "lpips") if m in results]
    table = "".join(f"<tr><th>{html.escape(k)}</th>" + "".join(f"<td>{float(v[m]):.4g}</td>" for m in names)
                    + "</tr>" for k, v in rows.items())
    figures = "".join(f'<figure><img src="{html.escape(p.relative_to(path.parent).as_posix())}" alt="{html.escape(c)}">'
                      f"<figcaption>{html.escape(c)}</figcaption></figure>" for c, p in pictures.items())
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font: 15px/1.45 system-ui, sans-serif; margin: 24px; color: #1d232a; max-width: 1100px; }}
table {{ border-collapse: collapse; margin: 8px 0 18px; }}
th, td {{ border: 1px solid #d6d9dc; padding: 4px 10px; text-align: right; }}
figure {{ margin: 0 0 18px; }} img {{ max-width: 100%; image-rendering: pixelated; }}
img[src$=".gif"] {{ width: 264px; }}
figcaption, .hint {{ color: #5b6670; font-size: 13px; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p>{html.escape(intro)}</p>
<h2>Scores</h2>
<table><tr><th></th>{"".join(f"<th>{m.upper()}</th>" for m in names)}</tr>{table}</table>
<p class="hint">{html.escape(str(results.get("n_sequences", "")))} test sequences. MSE and MAE: sum over the
pixels of a frame, averaged over frames and sequences; PSNR and SSIM per frame; lower is better except PSNR and
SSIM. Conventions: metrics.json.</p>
{_mse_curve_svg(rows)}
<h2>Pictures</h2>
{figures}
</body></html>
"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page)
    return path


def _mse_curve_svg(rows: dict[str, dict]) -> str:
    """An inline SVG of MSE per predicted frame, one line per method."""
    curves = {k: v["per_step"]["mse"] for k, v in rows.items() if "per_step" in v and "mse" in v["per_step"]}
    if not curves:
        return ""
    top = max(max(c) for c in curves.values()) or 1.0
    n = max(len(c) for c in curves.values())
    colours = ["#2f6fdf", "#c0504d", "#7f7f7f", "#3cb44b"]
    lines, labels = [], []
    for i, (name, curve) in enumerate(curves.items()):
        pts = " ".join(f"{50 + 480 * j / max(n - 1, 1):.1f},{210 - 190 * v / top:.1f}" for j, v in enumerate(curve))
        lines.append(f'<polyline points="{pts}" fill="none" stroke="{colours[i % 4]}" stroke-width="2"/>')
        labels.append(f'<text x="{60 + 110 * i}" y="14" fill="{colours[i % 4]}" font-size="12">{name}</text>')
    return (f'<h2>MSE per predicted frame</h2><svg viewBox="0 0 560 240" width="560" height="240" role="img">'
            f'<line x1="50" y1="210" x2="530" y2="210" stroke="#999"/><line x1="50" y1="20" x2="50" y2="210" '
            f'stroke="#999"/><text x="4" y="24" font-size="11">{top:.0f}</text><text x="36" y="214" '
            f'font-size="11">0</text><text x="46" y="230" font-size="11">1</text><text x="524" y="230" '
            f'font-size="11">{n}</text><text x="230" y="236" font-size="11">frame after the context</text>'
            + "".join(lines) + "".join(labels) + "</svg>")
