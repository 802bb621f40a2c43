"""Moving MNIST: determinism, range, geometry, bounces, disjoint splits, file layouts."""

import gzip

import numpy as np
import pytest
import torch

from odevideo.config import load_config
from odevideo.data.clips import FixedSet, TrainStream, as_float_frames, irregular_times
from odevideo.data.digits import mnist_images, read_idx_images, split_digits
from odevideo.data.moving_mnist import (
    STEP,
    MovingMNIST,
    load_standard,
    reflect,
    render,
    save_standard,
)
from odevideo.errors import ConfigError, DataError


def test_same_seed_and_index_give_the_same_sequence():
    a = MovingMNIST("train", digits=2, seed=3).render_uint8([5, 6, 7])
    b = MovingMNIST("train", digits=2, seed=3).render_uint8([7, 5, 6])
    np.testing.assert_array_equal(a[0], b[1])
    np.testing.assert_array_equal(a[2], b[0])
    c = MovingMNIST("train", digits=2, seed=4).render_uint8([5])
    assert not np.array_equal(a[0], c[0])


def test_batch_is_float_in_unit_range_with_times():
    batch = MovingMNIST("val", digits=2).batch(range(4))
    frames, times = batch["frames"], batch["times"]
    assert frames.shape == (4, 20, 1, 64, 64) and frames.dtype == torch.float32
    assert float(frames.min()) >= 0.0 and float(frames.max()) <= 1.0 and float(frames.max()) > 0.9
    torch.testing.assert_close(times, torch.arange(20.0).expand(4, 20))
    raw = MovingMNIST("val", digits=2).batch(range(4), as_float=False)["frames"]
    assert raw.dtype == torch.uint8
    torch.testing.assert_close(as_float_frames(raw), frames)


def test_digit_stays_inside_the_canvas_and_keeps_its_mass():
    gen = MovingMNIST("train", digits=1, n_frames=40)
    seqs = gen.render_uint8(range(16)).astype(np.int64)
    ids, _, _ = gen.motion(range(16))
    mass = gen.images[ids[:, 0]].astype(np.int64).sum((1, 2))  # a single digit is never clipped
    np.testing.assert_array_equal(seqs.sum((2, 3)), np.repeat(mass[:, None], 40, axis=1))


def test_reflection_bounces_off_the_walls():
    x = np.array([0.3, 1.2, -0.1, 2.5, 4.0])
    np.testing.assert_allclose(reflect(x), [0.3, 0.8, 0.1, 0.5, 0.0])
    gen = MovingMNIST("train", digits=1, n_frames=60)
    pos = gen.positions(range(32), np.arange(60.0))  # (B, T, 1, 2)
    assert pos.min() >= 0 and pos.max() <= 1
    step = np.abs(np.diff(pos, axis=1))
    # speed is STEP per frame along each axis's share of the direction, except across a bounce
    _, _, vel = gen.motion(range(32))
    expected = STEP * np.abs(vel)[:, None]
    straight = np.isclose(step, expected)
    assert straight.mean() > 0.8
    # velocity sign flips happen, and only at the walls
    flips = np.sign(np.diff(pos, axis=1)[:, 1:]) != np.sign(np.diff(pos, axis=1)[:, :-1])
    assert flips.any()
    near_wall = (pos[:, 1:-1] < STEP) | (pos[:, 1:-1] > 1 - STEP)
    assert near_wall[flips].all()


def test_render_combines_with_max():
    digits = np.zeros((1, 2, 2, 2), np.uint8)
    digits[0, 0] = [[10, 200], [0, 0]]
    digits[0, 1] = [[50, 50], [50, 50]]
    corners = np.array([[[[0, 0], [0, 1]]]])  # (B=1, T=1, K=2, 2)
    canvas = render(digits, corners, 3)[0, 0]
    np.testing.assert_array_equal(canvas, [[10, 200, 50], [0, 50, 50], [0, 0, 0]])


def test_splits_use_disjoint_digits():
    def keys(images):
        return {img.tobytes() for img in images}

    train, val, test = (keys(split_digits(s)) for s in ("train", "val", "test"))
    assert not train & val and not train & test and not val & test
    assert len(val) > 100 and len(test) > 100


def test_validation_and_test_sets_differ_and_are_fixed():
    v1 = FixedSet(MovingMNIST("val", digits=1), 4).frames
    v2 = FixedSet(MovingMNIST("val", digits=1), 4).frames
    t = FixedSet(MovingMNIST("test", digits=1), 4).frames
    np.testing.assert_array_equal(v1, v2)
    assert not np.array_equal(v1, t)


def test_train_stream_is_sharded_and_resumable():
    gen = MovingMNIST("train", digits=1, size=32, digit_size=14, n_frames=3)

    def first(stream, n):
        it = iter(stream)
        return [next(it)["frames"] for _ in range(n)]

    single = first(TrainStream(gen, 2), 4)
    rank0 = first(TrainStream(gen, 2, rank=0, world_size=2), 2)
    rank1 = first(TrainStream(gen, 2, rank=1, world_size=2), 2)
    for got, want in zip([rank0[0], rank1[0], rank0[1], rank1[1]], single, strict=False):
        torch.testing.assert_close(got, want)  # the ranks interleave the single stream, no duplicates
    resumed = first(TrainStream(gen, 2, start=2), 2)
    torch.testing.assert_close(resumed[0], single[2])
    torch.testing.assert_close(resumed[1], single[3])


def test_irregular_times_are_distinct_and_cover_context_window_and_future():
    times = irregular_times(np.arange(200), n_frames=20, n_context=10, fraction=0.5, seed=3)
    assert times.shape == (200, 20)
    assert np.array_equal(times, irregular_times(np.arange(200), n_frames=20, n_context=10, fraction=0.5, seed=3))
    grid = (times == np.arange(20)).all(axis=1)
    assert 60 < grid.sum() < 140  # about half stay on the frame grid
    odd = times[~grid]
    assert (odd[:, 0] == 0).all() and (np.diff(odd[:, :10], axis=1) > 0).all()  # increasing context from 0
    assert (odd[:, :10] <= 9).all() and (odd[:, 10:] <= 19).all() and (np.diff(odd[:, 10:], axis=1) > 0).all()
    assert (np.diff(np.sort(odd, axis=1), axis=1) >= 1e-3).all()  # distinct times
    assert (odd[:, 10:] < 9).any() and (odd[:, 10:] > 9).any()  # targets fall between and after the context
    assert (irregular_times(np.arange(5), n_frames=20, n_context=10, fraction=0.0) == np.arange(20)).all()


def test_irregular_span_spreads_contexts_over_longer_windows_and_leaves_grid_sequences_alone():
    plain = irregular_times(np.arange(300), n_frames=20, n_context=10, fraction=0.5, seed=3)
    wide = irregular_times(np.arange(300), n_frames=20, n_context=10, fraction=0.5, seed=3, span=19)
    grid = (plain == np.arange(20)).all(axis=1)
    assert ((wide == np.arange(20)).all(axis=1) == grid).all()  # the same sequences stay on the grid
    last = wide[~grid, 9]  # the last context time: up to the window length
    assert (last <= 19).all() and (last > 12).mean() > 0.3 and (last <= 9).any()
    assert (np.diff(wide[~grid, :10], axis=1) > 0).all()
    with pytest.raises(ConfigError, match="irregular_span"):
        load_config("demo", ["data.irregular_span=25"])


def test_irregular_train_stream_renders_each_sequence_at_its_own_times():
    gen = MovingMNIST("train", digits=1, size=32, digit_size=14, n_frames=6)
    batch = next(iter(TrainStream(gen, 4, irregular=1.0, n_context=3)))
    times = batch["times"].numpy()
    assert times.shape == (4, 6) and not (times == np.arange(6)).all(axis=1).any()
    for i in range(4):
        want = gen.render_uint8([i], times[i])[0]
        assert np.array_equal(batch["frames"][i, :, 0].numpy(), want)


def test_standard_layout_round_trip(tmp_path):
    seqs = MovingMNIST("test", digits=2, size=32, digit_size=14, n_frames=6).render_uint8(range(3))  # (N, T, H, W)
    path = tmp_path / "mnist_test_seq.npy"
    save_standard(path, seqs)
    raw = np.load(path)
    assert raw.shape == (6, 3, 32, 32) and raw.dtype == np.uint8  # time first, like Srivastava's file
    loaded = load_standard(path)
    assert loaded.shape == (3, 6, 1, 32, 32)
    np.testing.assert_array_equal(loaded[:, :, 0], seqs)
    np.testing.assert_array_equal(loaded[1, 4, 0], raw[4, 1])


@pytest.mark.parametrize("array,match", [(np.zeros((2, 3, 4), np.uint8), r"\(T, N, H, W\)"),
                                         (np.zeros((2, 3, 4, 4), np.float32), "uint8")])
def test_standard_layout_rejects_bad_files(tmp_path, array, match):
    path = tmp_path / "bad.npy"
    np.save(path, array)
    with pytest.raises(DataError, match=match):
        load_standard(path)
    with pytest.raises(DataError, match="does not exist"):
        load_standard(tmp_path / "missing.npy")


def _write_idx(path, images, compress):
    header = b"\x00\x00\x08\x03" + b"".join(int(n).to_bytes(4, "big") for n in images.shape)
    data = header + images.tobytes()
    path.write_bytes(gzip.compress(data) if compress else data)


@pytest.mark.parametrize("compress", [True, False])
def test_idx_reader_round_trip_and_mnist_dir(tmp_path, compress):
    images = np.random.default_rng(0).integers(0, 256, (6, 28, 28), dtype=np.uint8)
    name = "t10k-images-idx3-ubyte" + (".gz" if compress else "")
    _write_idx(tmp_path / name, images, compress)
    np.testing.assert_array_equal(read_idx_images(tmp_path / name), images)
    np.testing.assert_array_equal(mnist_images("test", tmp_path), images)
    np.testing.assert_array_equal(split_digits("test", tmp_path), images[3:])


def test_idx_reader_rejects_truncated_and_foreign_files(tmp_path):
    images = np.zeros((4, 28, 28), np.uint8)
    _write_idx(tmp_path / "x", images, False)
    (tmp_path / "x").write_bytes((tmp_path / "x").read_bytes()[:-10])
    with pytest.raises(DataError, match="truncated"):
        read_idx_images(tmp_path / "x")
    (tmp_path / "y").write_bytes(b"hello world, not mnist")
    with pytest.raises(DataError, match="magic"):
        read_idx_images(tmp_path / "y")
    with pytest.raises(DataError, match="no MNIST train images"):
        mnist_images("train", tmp_path)


def test_builtin_digits_are_real_mnist_images():
    images = mnist_images("train")
    assert images.dtype == np.uint8 and images.shape[1:] == (28, 28) and len(images) >= 1000
    assert images.max() == 255 and (images.reshape(len(images), -1) > 0).mean() < 0.4  # ink on black
