"""The command line end to end on a tiny config, and its one-line errors for bad input."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

from odevideo.data.moving_mnist import MovingMNIST, save_standard
from odevideo.visualize import write_frames
from tests.conftest import TINY_CLI


def test_train_writes_config_metrics_and_checkpoints(trained_run):
    for name in ("config.yaml", "command.txt", "metrics.csv", "checkpoints/last.safetensors",
                 "checkpoints/best.safetensors"):
        assert (trained_run / name).is_file(), name
    assert "max_steps: 5" in (trained_run / "config.yaml").read_text()
    assert "val/mse" in (trained_run / "metrics.csv").read_text()


def test_resume_continues_to_a_larger_step_budget(trained_run, tmp_path, run_cli):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    code, out, err = run_cli(["train", "--config", "demo", *TINY_CLI, "--max-steps", "7", "--seed", "1",
                              "--out", str(run), "--resume", "--quiet"])
    assert code == 0, err
    assert "trained 7 steps" in out


def test_evaluate_takes_the_test_protocol_from_the_checkpoint(trained_run, tmp_path, run_cli):
    code, out, err = run_cli(["evaluate", "--checkpoint", str(trained_run), "--n", "6", "--quiet",
                              "--device", "cpu"])
    assert code == 0, err
    default = trained_run / "checkpoints" / "best.results.json"  # beside the checkpoint
    res = json.loads(default.read_text())
    assert f"wrote {default}" in out
    assert res["n_sequences"] == 6 and res["n_context"] == 10 and len(res["per_step"]["ssim"]) == 10
    assert res["test_set"] == "generated moving_mnist: n=6, seed=0, digits=1" and res["device"] == "cpu"
    for key in ("mse", "mse_per_pixel", "mae", "psnr", "ssim", "ssim_openstl", "per_step", "baselines", "seconds"):
        assert key in res
    seqs = MovingMNIST("test", digits=1, size=32, digit_size=14, n_frames=8).render_uint8(range(4))
    save_standard(tmp_path / "seq.npy", seqs)
    out_json = tmp_path / "results.json"
    code, out, err = run_cli(["evaluate", "--checkpoint", str(trained_run / "checkpoints/last.safetensors"),
                              "--test-file", str(tmp_path / "seq.npy"), "--n-context", "5", "--n-future", "3",
                              "--out", str(out_json), "-q"])
    assert code == 0, err
    assert json.loads(out_json.read_text())["n_sequences"] == 4


@pytest.mark.parametrize("suffix", [".npy", ".gif", ".mp4"])
def test_predict_writes_each_output_type(trained_run, tmp_path, run_cli, suffix):
    clip = MovingMNIST("test", digits=1, size=32, digit_size=14, n_frames=6).render_uint8([0])[0]  # (T, H, W)
    np.save(tmp_path / "clip.npy", clip)
    out = tmp_path / f"pred{suffix}"
    code, _, err = run_cli(["predict", "--checkpoint", str(trained_run), "--input", str(tmp_path / "clip.npy"),
                            "--n-context", "5", "--times", "4.5,5,6.25,9", "--out", str(out), "--device", "auto"])
    assert code == 0, err
    if suffix == ".npy":
        assert np.load(out).shape == (4, 1, 32, 32)
    else:  # a video with one frame per asked time, at the model's size
        import imageio.v3 as iio

        video = iio.imread(out, plugin="pyav") if suffix == ".mp4" else iio.imread(out, index=None)
        assert video.shape[:3] == (4, 32, 32)


@pytest.mark.parametrize("args,times", [
    (["--n-future", "2", "--fps-factor", "4"], [4.25 + 0.25 * i for i in range(8)]),
    (["--horizon", "1.5", "--fps-factor", "2"], [4.5, 5.0, 5.5]),
    (["--n-future", "1", "--fps-factor", "2", "--include-context"], [0.5 * i for i in range(11)]),
    (["--n-future", "2", "--context-times", "0,0.5,2,3.25,4"], [5.0, 6.0]),
])
def test_predict_generates_at_a_new_frame_rate_and_from_irregular_context(trained_run, tmp_path, run_cli, args,
                                                                          times):
    from odevideo.inference import generate, load_checkpoint

    clip = MovingMNIST("test", digits=1, size=32, digit_size=14, n_frames=6).render_uint8([0])[0]
    np.save(tmp_path / "clip.npy", clip)
    out = tmp_path / "pred.npy"
    code, _, err = run_cli(["predict", "--checkpoint", str(trained_run), "--input", str(tmp_path / "clip.npy"),
                            "--n-context", "5", "--out", str(out), *args])
    assert code == 0, err
    got = np.load(out)
    ctx = [0.0, 0.5, 2.0, 3.25, 4.0] if "--context-times" in args else [0.0, 1.0, 2.0, 3.0, 4.0]
    want = generate(load_checkpoint(trained_run).model, torch.from_numpy(clip[None, :5, None]), ctx, times)
    assert got.shape == (len(times), 1, 32, 32)
    np.testing.assert_allclose(got, want.frames[0].numpy(), atol=1e-6)


def test_predict_reads_its_own_videos(trained_run, tmp_path, run_cli):
    clip = MovingMNIST("test", digits=1, size=32, digit_size=14, n_frames=6).render_uint8([0])[0]
    np.save(tmp_path / "clip.npy", clip)
    for suffix in (".gif", ".mp4"):
        video = tmp_path / f"clip{suffix}"
        code, _, err = run_cli(["predict", "--checkpoint", str(trained_run), "--input", str(tmp_path / "clip.npy"),
                                "--n-context", "3", "--n-future", "4", "--out", str(video)])
        assert code == 0, err
        out = tmp_path / f"from{suffix}.npy"
        code, _, err = run_cli(["predict", "--checkpoint", str(trained_run), "--input", str(video),
                                "--n-future", "2", "--out", str(out)])
        assert code == 0, err
        assert np.load(out).shape == (2, 1, 32, 32)


def test_info_prints_kind_parameters_steps_score_and_config(trained_run, run_cli):
    from odevideo.inference import load_checkpoint

    ckpt = load_checkpoint(trained_run)
    code, out, err = run_cli(["info", str(trained_run)])
    assert code == 0, err
    assert "model kind:     latent_ode" in out and f"parameters:     {ckpt.n_parameters:,}" in out
    assert f"training steps: {ckpt.step}" in out and f"validation MSE: {ckpt.val_mse:.2f}" in out
    assert ckpt.config.to_yaml() in out


def test_config_show_prints_each_field_with_its_documentation(run_cli):
    code, out, err = run_cli(["config", "show", "mmnist2_latent", "--set", "train.lr=1e-3"])
    assert code == 0, err
    assert "  digits: 2\n    # digits per sequence" in out and "  lr: 0.001\n" in out
    assert "  warp_source: previous\n    # the context frame a warp model warps" in out
    code, out, err = run_cli(["config", "list"])
    assert code == 0 and all(name in out for name in ("demo", "mmnist1", "mmnist2"))


@pytest.mark.parametrize("command", [["train"], ["predict"], ["evaluate"], ["demo"]])
def test_every_long_command_takes_the_same_quiet_flags(run_cli, monkeypatch, command):
    monkeypatch.setenv("COLUMNS", "200")  # a wide help screen: no option name is cut short
    code, out, _ = run_cli([*command, "--help"])
    assert code == 0 and all(flag in out for flag in ("--quiet", "--no-progress", "-q"))
    assert bool(re.search(r"--device\b", out)) == (command[0] in ("predict", "evaluate"))
    assert "--out" in out and "--run-dir" not in out


def make_bad_files(tmp_path, run):
    """Write the inputs the bad-input table refers to; return the names its commands fill in."""
    clip = np.zeros((6, 32, 32), np.uint8)
    np.save(tmp_path / "clip.npy", clip)
    np.save(tmp_path / "int.npy", clip.astype(np.int32))
    np.save(tmp_path / "big.npy", np.full((6, 32, 32), 2.0, np.float32))
    np.save(tmp_path / "shape.npy", np.zeros((6, 2, 2, 32, 32), np.uint8))
    (tmp_path / "corrupt.npy").write_bytes(b"\x93NUMPY garbage")
    (tmp_path / "broken.gif").write_bytes(b"GIF89a" + b"\x00" * 20)
    (tmp_path / "bad.safetensors").write_bytes(b"not a checkpoint")
    np.save(tmp_path / "std.npy", np.zeros((8, 2, 32, 32), np.uint8))
    nan = np.zeros((6, 32, 32), np.float32)
    nan[2, 3, 4] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    (tmp_path / "empty.npy").write_bytes(b"")
    (tmp_path / "empty.gif").write_bytes(b"")
    for suffix in (".mp4", ".gif"):
        good = write_frames(tmp_path / f"good{suffix}", torch.rand(6, 1, 32, 32), fps=4)
        data = good.read_bytes()
        (tmp_path / f"trunc{suffix}").write_bytes(data[:len(data) // 3])
    return {"ck": str(run), "dir": str(tmp_path), "clip": str(tmp_path / "clip.npy"), "out": str(tmp_path / "o.npy")}


PREDICT = "predict --checkpoint {ck} --out {out} --input"
BAD_INPUTS = {  # case: (command line, with {names} from make_bad_files; a pattern the message must match)
    "too-many-context-frames": (PREDICT + " {clip} --n-context 9 --n-future 2", "n-context 9"),
    "times-decrease": (PREDICT + " {clip} --times 7,6", "strictly increasing"),
    "times-nan": (PREDICT + " {clip} --times 7,nan", "finite"),
    "times-not-numbers": (PREDICT + " {clip} --times a,b", "comma-separated"),
    "no-such-file": (PREDICT + " digits7 --n-future 2", "digits7 does not exist .nor is it an example clip: digits1"),
    "fps-factor-zero": (PREDICT + " {clip} --n-future 2 --fps-factor 0", "fps-factor must be"),
    "negative-horizon": (PREDICT + " {clip} --horizon -1", "must be > 0"),
    "future-and-horizon": (PREDICT + " {clip} --n-future 2 --horizon 3", "exactly one"),
    "times-and-fps-factor": (PREDICT + " {clip} --times 7,8 --fps-factor 2", "lists the times itself"),
    "context-times-decrease": (PREDICT + " {clip} --n-context 3 --context-times 0,2,1 --n-future 2",
                               "--context-times must be strictly increasing"),
    "context-times-too-few": (PREDICT + " {clip} --n-context 3 --context-times 0,1 --n-future 2",
                              "2 times for 3 context frames"),
    "fps-zero": (PREDICT + " {clip} --n-future 2 --fps 0", "--fps must be > 0"),
    "missing-input": (PREDICT + " {dir}/missing.npy --n-future 2", "does not exist"),
    "int-pixels": (PREDICT + " {dir}/int.npy --n-future 2", "uint8"),
    "pixels-above-one": (PREDICT + " {dir}/big.npy --n-future 2", r"\[0, 1\]"),
    "five-dimensions": (PREDICT + " {dir}/shape.npy --n-future 2", "expected"),
    "corrupt-npy": (PREDICT + " {dir}/corrupt.npy --n-future 2", "cannot read"),
    "broken-gif": (PREDICT + " {dir}/broken.gif --n-future 2", "cannot decode"),
    "truncated-mp4": (PREDICT + " {dir}/trunc.mp4 --n-future 2", "cannot decode"),
    "truncated-gif": (PREDICT + " {dir}/trunc.gif --n-future 2", "cannot decode|no frames"),
    "empty-npy": (PREDICT + " {dir}/empty.npy --n-future 2", "cannot read"),
    "empty-gif": (PREDICT + " {dir}/empty.gif --n-future 2", "cannot decode|no frames"),
    "nan-pixels": (PREDICT + " {dir}/nan.npy --n-future 2", "NaN"),
    "zero-context": (PREDICT + " {clip} --n-context 0 --n-future 2", "n-context must be >= 1"),
    "corrupt-checkpoint": ("predict --checkpoint {dir}/bad.safetensors --input {clip} --n-future 2 --out {out}",
                           "corrupt"),
    "unsupported-output": ("predict --checkpoint {ck} --input {clip} --n-future 2 --out {dir}/o.avi",
                           "unsupported output"),
    "no-gpu": ("predict --checkpoint {ck} --input {clip} --n-future 2 --out {out} --device cuda:7",
               "no CUDA GPU|device"),
    "test-file-of-clips": ("evaluate --checkpoint {ck} --test-file {clip}", r"\(T, N, H, W\)"),
    "test-file-too-short": ("evaluate --checkpoint {ck} --test-file {dir}/std.npy --n-context 10",
                            "exceeds the 8 frames"),
    "zero-sequences": ("evaluate --checkpoint {ck} --n 0", "--n and --batch-size"),
    "unknown-key": ("train --config demo --set train.nope=1", "unknown config key"),
    "missing-config": ("train --config {dir}/nope.yaml", "neither a shipped config"),
    "resume-nothing": ("train --config demo --out {dir}/fresh --resume", "no trainer checkpoint"),
    "run-in-use": ("train --config demo --out {ck}", "already holds a run"),
    "impossible-combination": ("train --config mmnist1 --set model.kind=convlstm",
                               "cannot read times off the frame grid"),
    "test-file-and-generated-set": ("evaluate --checkpoint {ck} --test-file {dir}/std.npy --n 5",
                                    "drop --data/--digits/--n/--seed/--mnist-dir"),
    "resume-and-overwrite": ("train --config demo --out {ck} --resume --overwrite", "give one of them"),
    "info-of-nothing": ("info {dir}/missing.safetensors", "does not exist"),
    "show-unknown-config": ("config show nope", "neither a shipped config"),
}


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory, trained_run):
    return make_bad_files(tmp_path_factory.mktemp("bad"), trained_run)


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_gives_one_line_error_and_exit_2(bad_files, run_cli, case):
    line, match = BAD_INPUTS[case]
    code, _, err = run_cli(line.format(**bad_files).split())
    assert code == 2, err
    assert err.startswith("odevideo: error: ") and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1, err
    assert re.search(match, err), (match, err)


def test_huge_inputs_are_refused_but_a_long_clip_is_read_only_as_far_as_needed(trained_run, tmp_path, run_cli,
                                                                            monkeypatch):
    import odevideo.data.videos as videos

    clip = MovingMNIST("test", digits=1, size=32, digit_size=14, n_frames=40).render_uint8([0])[0]  # 40 frames
    np.save(tmp_path / "long.npy", clip)
    write_path = tmp_path / "long.gif"
    write_frames(write_path, torch.from_numpy(clip[:, None]).float() / 255, fps=4)
    monkeypatch.setattr(videos, "MAX_BYTES", 30 * 32 * 32)  # less than the 40 frames, more than 5 RGBA ones
    for path in (tmp_path / "long.npy", write_path):
        args = ["predict", "--checkpoint", str(trained_run), "--input", str(path), "--n-future", "2",
                "--out", str(tmp_path / "o.npy")]
        code, _, err = run_cli(args)
        assert code == 2 and "pass --n-context" in err, err
        code, _, err = run_cli(args + ["--n-context", "5"])
        assert code == 0, err


def test_help_is_fast_to_import_and_lists_commands():
    code = ("import sys, odevideo.cli\ntry:\n    odevideo.cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print('torch' in sys.modules)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0
    for cmd in ("train", "predict", "evaluate", "demo", "info", "config"):
        assert cmd in res.stdout
    assert res.stdout.strip().endswith("False")  # --help does not import torch
