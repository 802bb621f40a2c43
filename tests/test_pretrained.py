"""The models that ship in the package: each loads by name, offline, and still scores what its card recorded."""

from __future__ import annotations

import numpy as np
import pytest

from odevideo import pretrained
from odevideo.config import Config
from odevideo.data.moving_mnist import MovingMNIST
from odevideo.errors import CheckpointError
from odevideo.evaluation import evaluate
from odevideo.evaluation import test_split as split_of
from odevideo.inference import load_checkpoint

SHIPPED = ("mmnist1", "mmnist2", "balls", "natural", "mmnist2_learned")


def test_the_promised_models_ship_small():
    assert set(SHIPPED) <= set(pretrained.names())
    total = sum(pretrained.path(n).stat().st_size for n in pretrained.names())
    assert total < 5e6  # a few MB in all


@pytest.mark.parametrize("name", SHIPPED)
def test_a_shipped_model_loads_by_name_and_reproduces_its_recorded_check_score(name):
    ckpt = load_checkpoint(name)
    card = pretrained.card(name)
    assert ckpt.path == pretrained.path(name)
    assert ckpt.config.model.kind == card["kind"] and ckpt.n_parameters == card["parameters"]
    for key in ("mnist_dir", "cache_dir"):  # no path of the machine that trained it
        assert getattr(ckpt.config.data, key, None) is None
    check = card["check"]
    tree = ckpt.config.to_dict()
    tree["data"] = check["data"]
    data = Config.from_dict(tree).data
    split = split_of(data, n=check["n"], seed=check["seed"])
    scores = evaluate(ckpt.model, split["frames"], n_context=data.n_context, n_future=data.n_frames - data.n_context,
                      times=split["times"], perceptual=False)
    assert scores["mse"] == pytest.approx(check["mse"], rel=0.01)  # on an AMD EPYC and an Intel Xeon box: 0.13% at most
    assert scores["baselines"]["copy_last"]["mse"] == pytest.approx(check["copy_last_mse"], rel=1e-4)  # same data


@pytest.mark.parametrize("name", SHIPPED)
def test_every_card_says_where_its_scores_come_from(name):
    card = pretrained.card(name)
    assert card["about"] and card["title"] and card["train_command"]
    assert "mse" in card["headline"] and card["headline"]["mse_from"].startswith("benchmarks/results/")
    for row in card["benchmarks"]:
        assert row["command"] and row["git_commit"] and row["machine"]


def test_a_file_or_folder_of_that_name_comes_before_a_shipped_model(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mmnist2").mkdir()
    with pytest.raises(CheckpointError, match="without checkpoints"):
        load_checkpoint("mmnist2")


def test_an_unknown_name_lists_the_shipped_models():
    with pytest.raises(CheckpointError, match="mmnist2"):
        load_checkpoint("no-such-model")


def test_models_lists_each_with_its_scores(run_cli):
    code, out, err = run_cli(["models"])
    assert code == 0, err
    for name in SHIPPED:
        assert f"\n{name} " in f"\n{out}"
    assert "test MSE" in out and "FVD" in out and "copy-last" in out


def test_predict_with_a_shipped_model_at_four_times_the_frame_rate(tmp_path, run_cli):
    clip = MovingMNIST("test", digits=2).render_uint8([3])[0]  # (20, 64, 64): built-in digits
    np.save(tmp_path / "clip.npy", clip)
    code, _, err = run_cli(["predict", "--checkpoint", "mmnist2", "--input", str(tmp_path / "clip.npy"),
                            "--n-context", "10", "--out", str(tmp_path / "some.gif")])
    assert code == 0, err  # a GIF of the model's 10 futures, to start from
    code, _, err = run_cli(["predict", "--checkpoint", "mmnist2", "--input", str(tmp_path / "some.gif"),
                            "--fps-factor", "4", "--out", str(tmp_path / "out.mp4")])  # the command
    assert code == 0, err
    import av

    with av.open(str(tmp_path / "out.mp4")) as video:
        frames = [f.to_ndarray(format="gray") for f in video.decode(video=0)]
    assert len(frames) == 40 and frames[0].shape == (64, 64)  # 10 frames' time at 4x the rate


def test_the_readmes_first_example_needs_no_file_and_no_training(tmp_path, run_cli):
    out = tmp_path / "future.gif"
    code, _, err = run_cli(["predict", "--checkpoint", "mmnist2", "--input", "digits2", "--n-context", "10",
                            "--fps-factor", "4", "--out", str(out)])
    assert code == 0, err
    import imageio.v3 as iio

    assert iio.imread(out).shape[:3] == (40, 64, 64)  # t = 9.25, 9.5, ..., 19


def test_a_example_clip_is_refused_by_a_wrong_name(run_cli, tmp_path):
    code, _, err = run_cli(["predict", "--checkpoint", "mmnist2", "--input", "digits3", "--out",
                            str(tmp_path / "x.gif")])
    assert code != 0 and "digits3" in err
