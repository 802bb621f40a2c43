"""A folder of videos as a dataset: reading with recorded times, splits by file, the cache, bad files, and the
command line from training to evaluation."""

import logging
from fractions import Fraction

import numpy as np
import pytest
import torch

from odevideo.data import FolderConfig
from odevideo.data import folder as folder_module
from odevideo.data.clips import TrainStream
from odevideo.data.folder import find_clips, split_entries
from odevideo.data.videos import read_clip
from odevideo.errors import DataError


def square_clip(n: int, size: int = 48, colour: bool = True, shift: int = 0) -> np.ndarray:
    """uint8 (n, size, size, 3): a bright square moving right over a dark gradient."""
    frames = np.zeros((n, size, size, 3), np.uint8)
    frames[..., 2] = np.linspace(0, 80, size, dtype=np.uint8)[None, :]
    for t in range(n):
        x = (shift + 2 * t) % (size - 10)
        frames[t, 10:20, x:x + 10] = (250, 200, 50) if colour else 255
    return frames


def write_mp4(path, frames: np.ndarray, fps: int = 10, skip: tuple[int, ...] = ()) -> None:
    """An H.264 MP4 whose frame i is shown at i / fps, except the frames in ``skip``, which are dropped (the
    others keep their times, so the file has a gap)."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.time_base = Fraction(1, fps)
        stream.options = {"crf": "10"}
        for i, frame in enumerate(frames):
            if i in skip:
                continue
            video_frame = av.VideoFrame.from_ndarray(frame, format="rgb24")
            video_frame.pts = i
            for packet in stream.encode(video_frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def write_gif(path, frames: np.ndarray, durations: list[int]) -> None:
    import imageio.v3 as iio

    iio.imwrite(path, frames, duration=durations, loop=0)


def write_pngs(folder, frames: np.ndarray) -> None:
    from PIL import Image

    folder.mkdir(parents=True)
    for i, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / f"frame{i:03d}.png")


@pytest.fixture
def videos(tmp_path):
    """A folder with an MP4 with a dropped frame, a GIF, a folder of PNG frames, an .npy, and a truncated MP4."""
    root = tmp_path / "videos"
    root.mkdir()
    write_mp4(root / "a.mp4", square_clip(30), skip=(12,))
    write_gif(root / "b.gif", square_clip(24, shift=5), [100] * 24)
    write_pngs(root / "c_frames", square_clip(22, shift=9))
    np.save(root / "d.npy", np.moveaxis(square_clip(26, shift=13), -1, 1))  # (T, C, H, W)
    write_mp4(root / "e.mp4", square_clip(28, shift=17))
    good = (root / "e.mp4").read_bytes()
    (root / "trunc.mp4").write_bytes(good[: len(good) // 2])
    return root


def test_an_mp4_with_a_dropped_frame_keeps_its_real_times(tmp_path):
    write_mp4(tmp_path / "gap.mp4", square_clip(12), skip=(5,))
    clip = read_clip(tmp_path / "gap.mp4", channels=3)
    np.testing.assert_allclose(clip.times, [0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11], atol=1e-6)
    assert clip.frames.shape == (11, 3, 48, 48) and clip.frames.dtype == np.uint8
    truth = np.moveaxis(square_clip(12), -1, 1)[[0, 1, 2, 3, 4, 6]].astype(float)
    assert np.abs(clip.frames[:6].astype(float) - truth).mean() < 3  # H.264 at a high quality


def test_gif_times_come_from_the_frame_durations(tmp_path):
    write_gif(tmp_path / "slow.gif", square_clip(6), [100, 100, 200, 100, 100, 100])
    clip = read_clip(tmp_path / "slow.gif", channels=1, size=24)
    np.testing.assert_allclose(clip.times, [0, 1, 2, 4, 5, 6])
    assert clip.frames.shape == (6, 1, 24, 24)


def test_frame_folders_and_arrays_read_in_order_with_their_times(tmp_path):
    frames = square_clip(5)
    write_pngs(tmp_path / "f", frames)
    clip = read_clip(tmp_path / "f", channels=3)
    np.testing.assert_array_equal(clip.frames, np.moveaxis(frames, -1, 1))  # PNG is lossless; sorted by name
    np.testing.assert_array_equal(clip.times, np.arange(5))
    np.savez(tmp_path / "t.npz", frames=frames[..., 0], times=np.array([10.0, 11, 12, 14, 15]))
    np.testing.assert_array_equal(read_clip(tmp_path / "t.npz", channels=1).times, [0, 1, 2, 4, 5])


def test_fit_resizes_the_shorter_side_and_crops_the_centre(tmp_path):
    wide = np.zeros((1, 40, 80, 3), np.uint8)
    wide[:, :, 20:60] = 255  # the centre square is white, the sides black
    np.save(tmp_path / "wide.npy", np.moveaxis(wide, -1, 1))
    clip = read_clip(tmp_path / "wide.npy", channels=1, size=20)
    assert clip.frames.shape == (1, 1, 20, 20)
    assert clip.frames[..., 1:-1].min() == 255 and clip.frames.min() > 200  # the antialiasing filter's edge


def names(splits):
    return {s: [e.source.name for e in entries] for s, entries in splits.items()}


def test_readable_files_are_split_by_file_reproducibly_and_never_shared(videos, tmp_path):
    config = FolderConfig(path=str(videos), n_frames=8, n_context=4, size=32, val_fraction=0.2, test_fraction=0.2,
                          cache_dir=str(tmp_path / "cache"))
    splits = names(split_entries(config))
    every = sorted(p for part in splits.values() for p in part)
    assert every == ["a.mp4", "b.gif", "c_frames", "d.npy", "e.mp4"]  # not trunc.mp4
    assert [len(splits[s]) for s in ("train", "val", "test")] == [3, 1, 1]
    assert splits == names(split_entries(config))
    seeds = [names(split_entries(FolderConfig(path=str(videos), seed=seed, val_fraction=0.2, test_fraction=0.2,
                                              cache_dir=str(tmp_path / "cache")))) for seed in range(6)]
    assert all(sorted(p for part in other.values() for p in part) == every for other in seeds)
    assert len({str(other) for other in seeds}) > 1  # the seed draws the split


def test_split_subfolders_are_taken_as_they_are(tmp_path):
    for split, shift in (("train", 0), ("val", 3), ("test", 6)):
        (tmp_path / split).mkdir()
        np.save(tmp_path / split / f"{split}.npy", np.moveaxis(square_clip(12, shift=shift), -1, 1))
    splits = names(split_entries(FolderConfig(path=str(tmp_path), cache_dir=str(tmp_path / "cache"))))
    assert splits == {
        "train": ["train.npy"], "val": ["val.npy"], "test": ["test.npy"]}


def test_a_bad_file_is_named_and_skipped_and_the_cache_is_reused(videos, tmp_path, caplog, monkeypatch):
    config = FolderConfig(path=str(videos), n_frames=8, n_context=4, size=32, cache_dir=str(tmp_path / "cache"),
                          val_fraction=0.2, test_fraction=0.2)
    files = find_clips(videos)
    with caplog.at_level(logging.WARNING, logger="odevideo.data"):
        entries = folder_module.build_cache(config, files, progress=False)
    assert "trunc.mp4" in caplog.text and len(entries) == 5
    assert {e.source.name for e in entries} == {"a.mp4", "b.gif", "c_frames", "d.npy", "e.mp4"}

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again")

    monkeypatch.setattr(folder_module, "read_clip", no_decoding)
    assert folder_module.build_cache(config, files, progress=False) == entries  # from the cache, memory-mapped
    frames = np.load(entries[0].frames, mmap_mode="r")
    assert isinstance(frames, np.memmap) and frames.shape[1:] == (1, 32, 32)
    import os

    os.utime(videos / "d.npy", ns=(1, 1))  # the file changed: decoded again
    with pytest.raises(AssertionError, match="decoded again"):
        folder_module.build_cache(config, files, progress=False)


def test_a_folder_without_a_usable_clip_is_a_clear_error(tmp_path):
    (tmp_path / "v").mkdir()
    for name in ("x.mp4", "y.mp4", "z.mp4"):
        (tmp_path / "v" / name).write_bytes(b"not a video")
    config = FolderConfig(path=str(tmp_path / "v"), cache_dir=str(tmp_path / "cache"))
    with pytest.raises(DataError, match="0 readable clip file"):
        config.open("train")
    with pytest.raises(DataError, match="not a folder"):
        FolderConfig(path=str(tmp_path / "missing")).open("train")
    with pytest.raises(DataError, match="--data PATH"):
        FolderConfig().open("train")
    for name in ("x.npy", "y.npy", "z.npy"):
        np.save(tmp_path / "v" / name, np.zeros((5, 8, 8), np.uint8))  # readable, but 5 frames are too few
    with pytest.raises(DataError, match="no clip of 20 frames"):
        config.open("train")


def test_windows_take_every_stride_frame_with_times_in_window_units(tmp_path):
    (tmp_path / "train").mkdir()
    (tmp_path / "test").mkdir()
    (tmp_path / "val").mkdir()
    frames = np.arange(40, dtype=np.uint8)[:, None, None].repeat(8, 1).repeat(8, 2)  # frame t is all t
    times = np.arange(40.0)
    times[20:] += 1  # a dropped frame between 19 and 20
    for split in ("train", "val", "test"):
        np.savez(tmp_path / split / "clip.npz", frames=frames, times=times)
    config = FolderConfig(path=str(tmp_path), n_frames=5, n_context=2, size=8, stride=2,
                          cache_dir=str(tmp_path / "cache"))
    test = config.open("test")
    assert test.count == 4  # non-overlapping windows of 9 file frames, every 10 frames
    batch = test.batch([0, 2], as_float=False)
    np.testing.assert_array_equal(batch["frames"][:, :, 0, 0, 0], [[0, 2, 4, 6, 8], [20, 22, 24, 26, 28]])
    window = config.open("train")
    assert window.count == 40 - 8
    crossing = next(i for i in range(window.count) if window.windows[window.window(i)][1] == 16)
    # file frames 16, 18, 20, 22, 24 were shown at 16, 18, 21, 23, 25: in units of 2 frames from the first
    np.testing.assert_allclose(window.batch([crossing])["times"][0], [0, 1, 2.5, 3.5, 4.5])
    plain = FolderConfig(path=str(tmp_path), n_frames=5, n_context=2, size=8, stride=2, timestamps=False,
                         cache_dir=str(tmp_path / "cache"))
    np.testing.assert_array_equal(plain.open("test").batch([2])["times"][0], np.arange(5))


def test_training_windows_are_visited_once_per_epoch_and_shared_out_between_processes(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((30, 8, 8), np.uint8))
    np.save(tmp_path / "b.npy", np.zeros((12, 8, 8), np.uint8))
    np.save(tmp_path / "c.npy", np.zeros((12, 8, 8), np.uint8))
    config = FolderConfig(path=str(tmp_path), n_frames=6, n_context=3, size=8, val_fraction=0.34,
                          test_fraction=0.34, cache_dir=str(tmp_path / "cache"))
    source = config.open("train")
    epoch = [source.window(i) for i in range(source.count)]
    assert sorted(epoch) == list(range(source.count))
    next_epoch = [source.window(source.count + i) for i in range(source.count)]
    assert sorted(next_epoch) == list(range(source.count)) and next_epoch != epoch

    def first_times(stream, k):
        return [b["frames"].shape for b, _ in zip(stream, range(k), strict=False)]

    rank0 = TrainStream(source, 2, rank=0, world_size=2)
    rank1 = TrainStream(source, 2, rank=1, world_size=2)
    assert len(first_times(rank0, 2)) == 2 and len(first_times(rank1, 2)) == 2
    windows = [source.window(i) for i in range(8)]
    assert windows[0:2] + windows[4:6] != windows[2:4] + windows[6:8]  # each rank its own batches


def test_train_evaluate_and_predict_on_a_folder_from_the_command_line(videos, tmp_path, run_cli, monkeypatch,
                                                                     caplog):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    run = tmp_path / "run"
    tiny = ["--set", "data.size=32", "--set", "data.n_frames=8", "--set", "data.n_context=4", "--set",
            "data.batch_size=2", "--set", "data.val_size=4", "--set", "model.width=8", "--set", "model.latent_dim=4",
            "--set", "model.field_hidden=8", "--set", "train.precision=32-true", "--set", "train.val_every=2",
            "--set", "data.val_fraction=0.2", "--set", "data.test_fraction=0.2", "--set", "data.channels=3"]
    code, out, err = run_cli(["train", "--data", str(videos), *tiny, "--max-steps", "2", "--out", str(run), "-q"])
    assert code == 0, err
    assert "trunc.mp4" in caplog.text  # named, and skipped
    assert (tmp_path / "xdg" / "odevideo").is_dir()  # the default cache
    code, out, err = run_cli(["evaluate", "-c", str(run), "-q"])
    assert code == 0, err
    assert "test split of" in (run / "checkpoints" / "best.results.json").read_text()
    code, out, err = run_cli(["evaluate", "-c", str(run), "--data", str(videos), "--n-future", "2", "-q",
                              "--out", str(tmp_path / "r.json")])
    assert code == 0, err
    code, _, err = run_cli(["evaluate", "-c", str(run), "--seed", "3", "-q"])
    assert code == 2 and "drop --seed" in err
    clip = read_clip(videos / "a.mp4", channels=3, size=32)
    np.save(tmp_path / "clip.npy", clip.frames)
    code, out, err = run_cli(["predict", "-c", str(run), "-i", str(tmp_path / "clip.npy"), "--n-context", "4",
                              "--n-future", "3", "-o", str(tmp_path / "out.gif")])
    assert code == 0, err


def test_discrete_models_are_told_to_number_the_frames(run_cli, tmp_path):
    code, _, err = run_cli(["train", "--data", str(tmp_path), "--set", "model.kind=convlstm", "-q"])
    assert code == 2 and "data.timestamps=false" in err


def test_a_colour_batch_has_three_channels(videos, tmp_path):
    config = FolderConfig(path=str(videos), n_frames=8, n_context=4, size=32, channels=3,
                          cache_dir=str(tmp_path / "cache"), val_fraction=0.2, test_fraction=0.2)
    batch = config.open("train").batch([0, 1])
    assert batch["frames"].shape == (2, 8, 3, 32, 32) and batch["frames"].dtype == torch.float32
    assert batch["frames"][:, :, 0].mean() != batch["frames"][:, :, 2].mean()


def test_predict_brings_a_video_to_the_model_size_and_keeps_its_recorded_times(trained_run, tmp_path, run_cli):
    from odevideo.inference import generate, load_checkpoint
    from odevideo.predict import read_context

    write_mp4(tmp_path / "gap.mp4", square_clip(12, size=48), skip=(3,))  # 48x48 colour, frame 3 dropped
    model = load_checkpoint(trained_run).model  # a 32x32 grey model
    frames, times = read_context(tmp_path / "gap.mp4", model.channels, model.size, 6)
    assert frames.shape == (6, 1, 32, 32)
    np.testing.assert_allclose(times, [0, 1, 2, 4, 5, 6], atol=1e-6)
    out = tmp_path / "next.npy"
    code, _, err = run_cli(["predict", "-c", str(trained_run), "-i", str(tmp_path / "gap.mp4"), "--n-context", "6",
                            "--n-future", "2", "--out", str(out)])
    assert code == 0, err
    expected = generate(model, frames[None], times, torch.tensor([7.0, 8.0])).frames[0]
    np.testing.assert_allclose(np.load(out), expected.numpy(), atol=1e-5)  # after t = 6, the last recorded time


# ------------------------------------------------------------------------------------------------- augmentation
def augmented_clips(tmp_path, n_frames=40, times=None, **options):
    """A folder whose one training file is known: frame i holds the value i in its left column and 200 in its
    right one (so flips and frame order can be read off); its training clips with ``options``."""
    frames = np.zeros((n_frames, 1, 16, 16), np.uint8)
    frames[:, :, :, :8] = np.arange(n_frames, dtype=np.uint8)[:, None, None, None]
    frames[:, :, :, 8:] = 200
    for split in ("train", "val", "test"):
        (tmp_path / split).mkdir(parents=True, exist_ok=True)
        np.savez(tmp_path / split / "clip.npz", frames=frames,
                 times=np.arange(n_frames, dtype=float) if times is None else times)
    config = FolderConfig(path=str(tmp_path), size=16, n_frames=5, n_context=2, cache_dir=str(tmp_path / "cache"),
                          **options)
    return config.open("train"), frames


def test_augmentations_are_off_by_default_and_validation_is_never_augmented(tmp_path):
    source, frames = augmented_clips(tmp_path)
    assert not source.augments
    out = source.batch(range(source.count), as_float=False)
    assert (out["frames"][:, :, 0, 0, 15] == 200).all()  # never mirrored
    assert torch.equal(out["times"], torch.arange(5.0).expand(source.count, -1))
    val = FolderConfig(path=str(tmp_path), size=16, n_frames=5, n_context=2, cache_dir=str(tmp_path / "cache"),
                       flip=True, reverse=True, max_stride=3, crop_min=0.5).open("val")
    assert not val.augments


def test_a_flip_mirrors_a_known_clip_left_to_right(tmp_path):
    source, frames = augmented_clips(tmp_path, flip=True)
    out = source.batch(range(64), as_float=False)["frames"].numpy()  # (64, 5, 1, 16, 16)
    flipped = out[:, 0, 0, 0, 0] == 200  # the bright half moved to the left
    assert 10 < flipped.sum() < 54  # about half of them
    for clip in out:
        first = clip[0, 0, 0, 15] if clip[0, 0, 0, 0] == 200 else clip[0, 0, 0, 0]
        want = frames[first:first + 5]
        np.testing.assert_array_equal(clip, want[..., ::-1] if clip[0, 0, 0, 0] == 200 else want)
    again = source.batch(range(64), as_float=False)["frames"].numpy()
    np.testing.assert_array_equal(out, again)  # the same index, the same augmentation


def test_a_strided_window_has_stretched_times_and_its_frames(tmp_path):
    source, frames = augmented_clips(tmp_path, max_stride=3)
    out = source.batch(range(200))
    values = (out["frames"][:, :, 0, 0, 0] * 255).round().long()  # (B, T): the frame index each frame holds
    strides = values[:, 1] - values[:, 0]
    assert set(strides.tolist()) == {1, 2, 3}
    for k, t, v in zip(strides, out["times"], values, strict=True):
        torch.testing.assert_close(t, k * torch.arange(5.0))  # times stretched with the frames
        assert torch.equal(v, v[0] + k * torch.arange(5))
    assert (values[:, -1] <= 39).all()  # a window never runs past its file


def test_time_reversal_plays_a_window_backwards_with_its_gaps_reversed(tmp_path):
    recorded = np.cumsum(np.r_[0.0, np.tile([1.0, 2.0], 20)[:39]])  # gaps 1, 2, 1, 2, ...
    source, _ = augmented_clips(tmp_path, times=recorded, reverse=True)
    out = source.batch(range(64))
    values = (out["frames"][:, :, 0, 0, 0] * 255).round().long()
    backwards = values[:, 1] < values[:, 0]
    assert 10 < backwards.sum() < 54
    for v, t in zip(values[backwards], out["times"][backwards], strict=True):
        gaps = recorded[v.numpy()]
        torch.testing.assert_close(t, torch.from_numpy(gaps[0] - gaps).float())  # 0, then growing
        assert (t[1:] > t[:-1]).all()


def test_random_crops_zoom_in_and_keep_the_size(tmp_path):
    source, _ = augmented_clips(tmp_path, crop_min=0.5)
    out = source.batch(range(32))["frames"]
    assert out.shape == (32, 5, 1, 16, 16)
    bright = out[:, :, 0] > 0.7  # (B, T, H, W): the right half, before a crop moves its edge
    assert (bright == bright[:, :1]).all()  # one crop for every frame of a clip
    share = bright[:, 0].float().mean((1, 2))
    assert (share - 0.5).abs().max() > 0.1  # zoomed in: the bright half no longer fills half of the frame


# ------------------------------------------------------------------------------------------------- formats
def write_video(path, frames: np.ndarray, codec: str, fps: int = 10) -> None:
    """A video of ``frames`` (T, H, W, 3) uint8 with ``codec``, in the container its suffix names."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "rgb24" if codec == "cinepak" else "yuv420p"
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


@pytest.mark.parametrize("codec,suffix", [("msmpeg4", ".avi"), ("cinepak", ".avi"), ("mpeg1video", ".mpg")])
def test_the_registry_footages_codecs_are_read(tmp_path, codec, suffix):
    # DivX 3 (msmpeg4: opencv-doc's vtest.avi), Cinepak (tree.avi) and MPEG-1 (visp's cube.mpeg)
    frames = square_clip(12, size=64)
    write_video(tmp_path / f"clip{suffix}", frames, codec, fps=25)  # MPEG-1 knows only standard rates
    clip = read_clip(tmp_path / f"clip{suffix}", channels=3)
    assert clip.frames.shape == (12, 3, 64, 64)
    np.testing.assert_allclose(clip.times, np.arange(12.0))
    error = np.abs(clip.frames.astype(float) - np.moveaxis(frames, -1, 1)).mean()
    assert error < 12  # lossy, but the same pictures (a black frame would be ~60 off)


def test_a_folder_of_pgm_frames_is_a_clip(tmp_path):
    from PIL import Image

    grey = square_clip(6, size=32, colour=False)[..., 0]
    (tmp_path / "seq").mkdir()
    for i, frame in enumerate(grey):
        Image.fromarray(frame).save(tmp_path / "seq" / f"image.{i:04d}.pgm")
    clip = read_clip(tmp_path / "seq", channels=1)
    np.testing.assert_array_equal(clip.frames[:, 0], grey)  # PGM is lossless
    assert find_clips(tmp_path) == [tmp_path / "seq"]
