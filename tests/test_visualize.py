"""The pictures: files written, with the right sizes and content; and the demo end to end on a tiny budget."""

import json

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from odevideo.models import Generation
from odevideo.visualize import CONTEXT_MARK, comparison_grid, latent_plot, pose_plot, side_by_side, write_frames
from tests.conftest import KIND_TINY, TINY


def test_comparison_grid_places_truth_above_generated_with_a_bar_after_the_context(tmp_path):
    t, h, w, gap = 5, 6, 7, 2
    truth = [torch.ones(t, 1, h, w), torch.full((t, 1, h, w), 0.5)]
    generated = [torch.zeros(t, 1, h, w), torch.zeros(t, 1, h, w)]
    generated[0][3] = 1.0  # one white generated frame, the fourth
    image = iio.imread(comparison_grid(truth, generated, 2, tmp_path / "g.png", gap=gap))
    rows_per_seq = 2 * (h + gap) + 4 * gap
    assert image.shape == (2 * rows_per_seq - gap - 4 * gap, t * (w + gap) + gap, 3)
    x = gap + 3 * (w + gap)  # the fourth frame's column
    assert (image[:h, gap:gap + w] == 255).all()  # truth of sequence 0, frame 0: white
    assert (image[h + gap:2 * h + gap, gap:gap + w] == 0).all()  # generated of sequence 0, frame 0: black
    assert (image[h + gap:2 * h + gap, x:x + w] == 255).all()  # its fourth generated frame: white
    assert (image[rows_per_seq:rows_per_seq + h, gap:gap + w] == 128).all()  # truth of sequence 1: grey
    bar = gap + 2 * (w + gap) - gap  # between the context (2 frames) and the future
    assert (image[:, bar:bar + gap][:h] == CONTEXT_MARK).all()


@pytest.mark.parametrize("suffix", [".gif", ".mp4", ".npy"])
def test_videos_round_trip_frame_count_size_and_content(tmp_path, suffix):
    frames = torch.zeros(4, 1, 16, 24)
    for i in range(4):
        frames[i, :, :, 6 * i:6 * i + 6] = 1.0  # a white bar moving right
    path = write_frames(tmp_path / f"v{suffix}", frames, fps=4)
    video = np.load(path) if suffix == ".npy" else iio.imread(path, plugin="pyav" if suffix == ".mp4" else None)
    if suffix == ".npy":
        np.testing.assert_array_equal(video, frames.numpy())
        return
    assert video.shape[:3] == (4, 16, 24)
    grey = video[..., 0].astype(float) / 255
    assert np.abs(grey - frames[:, 0].numpy()).mean() < 0.05  # lossy codecs blur the edges only


def test_side_by_side_puts_a_white_gap_between_truth_and_generated():
    truth, generated = torch.zeros(3, 1, 4, 5), torch.full((3, 1, 4, 5), 0.25)
    pair = side_by_side(truth, generated, gap=2)
    assert pair.shape == (3, 1, 4, 12)
    assert (pair[..., :5] == 0).all() and (pair[..., 5:7] == 1).all() and (pair[..., 7:] == 0.25).all()


def test_latent_plot_draws_the_trajectories(tmp_path, tiny_config):
    z = torch.randn(3, 8, 4, 2, 2).cumsum(1)  # (N, T, *latent)
    view = tiny_config().build_model().latent_view(Generation(logits=torch.zeros(3, 8, 1, 2, 2), z_traj=z))
    assert view.kind == "pca" and view.points.shape == (3, 8, 2)
    image = iio.imread(latent_plot(view.points, view.explained, 5, tmp_path / "l.png"))
    assert image.shape[:2] == (550, 660)
    rgb = image[..., :3].astype(int)
    coloured = (rgb.max(-1) - rgb.min(-1)) > 60  # the tab10 line colours, not grey axes or text
    assert coloured.mean() > 0.002


def test_pose_plot_draws_each_objects_path_over_its_frame(tmp_path):
    frames = torch.zeros(3, 1, 32, 32)
    t = torch.arange(12.0)
    centres = torch.stack([torch.stack([4 + 2 * t, 4 + t], -1), torch.stack([28 - t, 4 + 2 * t], -1)], 1)  # (T, K, 2)
    image = iio.imread(pose_plot(frames, centres.transpose(0, 1)[None].transpose(1, 2).expand(3, -1, -1, -1), 6,
                                 tmp_path / "p.png", columns=2))
    assert image.shape[:2] == (520, 520)
    rgb = image[..., :3].astype(int)
    assert ((rgb.max(-1) - rgb.min(-1)) > 60).mean() > 0.002  # coloured paths


def test_the_demo_writes_its_pictures_checkpoint_and_metrics(tmp_path):
    from odevideo.demo import run_demo

    sizes = [o for o in TINY if not o.startswith("model.")]
    result = run_demo(tmp_path / "demo", steps=3, overrides=(*sizes, *KIND_TINY["objects"]), n_test=8,
                      progress=False)
    assert set(result.files) == {"grid", "gif", "latent", "checkpoint", "metrics", "report"}
    assert result.files["latent"].name == "latent_poses.png"  # the demo's object model draws its poses
    metrics = json.loads(result.files["metrics"].read_text())
    assert metrics["train_steps"] == 3 and metrics["n_sequences"] == 8 and metrics["mse"] == result.mse
    assert metrics["model_kind"] == "objects" and metrics["seconds_total"] >= metrics["train_seconds"]
    assert result.baselines == {k: v["mse"] for k, v in metrics["baselines"].items()}
    grid = iio.imread(result.files["grid"])
    assert grid.shape == (4 * (2 * 34 + 8) - 10, 20 * 34 + 2, 3)  # 4 sequences of 20 frames of 32x32
    gif = iio.imread(result.files["gif"])
    assert gif.shape[:3] == (20, 32, 2 * 32 + 2)
    assert iio.imread(result.files["latent"]).shape[:2] == (520, 1040)  # 8 sequences, 4 to a row
    assert result.files["checkpoint"].is_file()
    report = result.files["report"].read_text()  # one page: every picture, linked relatively, and the scores
    for name in ("comparison.png", "truth_vs_generated.gif", "latent_poses.png"):
        assert f'src="{name}"' in report and (result.files["report"].parent / name).is_file()
    assert f"<td>{result.mse:.4g}</td>" in report and "copy_last" in report and "<polyline" in report
