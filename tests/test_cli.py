"""The command line end to end on a tiny config, and its one-line errors for bad input."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from odevideo.cli import main
from odevideo.data.moving_mnist import MovingMNIST, save_standard

TINY = ["--set", "data.size=32", "--set", "data.digit_size=14", "--set", "data.batch_size=4",
        "--set", "data.val_size=8", "--set", "model.width=8", "--set", "model.latent_dim=4",
        "--set", "model.field_hidden=8", "--set", "train.val_every=3", "--set", "train.log_every=1"]


def run_cli(args, capsys):
    """Run the CLI in-process; returns (exit code, stdout, stderr)."""
    code = 0
    try:
        main(args)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    with pytest.MonkeyPatch.context():
        try:
            main(["train", "--config", "demo", *TINY, "--max-steps", "5", "--seed", "1", "--run-dir", str(run_dir),
                  "--no-progress"])
        except SystemExit as exc:
            assert exc.code in (0, None)
    return run_dir


def test_train_writes_config_metrics_and_checkpoints(trained_run):
    for name in ("config.yaml", "command.txt", "metrics.csv", "checkpoints/last.safetensors",
                 "checkpoints/best.safetensors"):
        assert (trained_run / name).is_file(), name
    assert "max_steps: 5" in (trained_run / "config.yaml").read_text()
    assert "val/mse" in (trained_run / "metrics.csv").read_text()


def test_resume_continues_to_a_larger_step_budget(trained_run, capsys):
    code, out, err = run_cli(["train", "--config", "demo", *TINY, "--max-steps", "7", "--seed", "1",
                              "--run-dir", str(trained_run), "--resume", "--no-progress"], capsys)
    assert code == 0, err
    assert "trained 7 steps" in out


def test_evaluate_generated_and_standard_file(trained_run, tmp_path, capsys):
    out_json = tmp_path / "results.json"
    code, out, err = run_cli(["evaluate", "--checkpoint", str(trained_run), "--digits", "1", "--n", "6",
                              "--n-context", "5", "--n-future", "3", "--out", str(out_json)], capsys)
    assert code == 0, err
    res = json.loads(out_json.read_text())
    for key in ("mse", "mse_per_pixel", "mae", "psnr", "ssim", "per_step", "n_sequences", "baselines"):
        assert key in res
    assert res["n_sequences"] == 6 and len(res["per_step"]["ssim"]) == 3
    assert set(res["baselines"]) == {"copy_last", "zeros"}
    seqs = MovingMNIST("test", digits=1, size=32, digit_size=14, n_frames=8).render_uint8(range(4))
    save_standard(tmp_path / "seq.npy", seqs)
    code, out, err = run_cli(["evaluate", "--checkpoint", str(trained_run / "checkpoints/last.safetensors"),
                              "--test-file", str(tmp_path / "seq.npy"), "--n-context", "5", "--n-future", "3",
                              "--out", str(out_json)], capsys)
    assert code == 0, err
    assert json.loads(out_json.read_text())["n_sequences"] == 4


@pytest.mark.parametrize("suffix", [".npy", ".gif", ".mp4"])
def test_predict_writes_each_output_type(trained_run, tmp_path, capsys, suffix):
    clip = MovingMNIST("test", digits=1, size=32, digit_size=14, n_frames=6).render_uint8([0])[0]  # (T, H, W)
    np.save(tmp_path / "clip.npy", clip)
    out = tmp_path / f"pred{suffix}"
    code, _, err = run_cli(["predict", "--checkpoint", str(trained_run), "--input", str(tmp_path / "clip.npy"),
                            "--n-context", "5", "--times", "4.5,5,6.25,9", "--out", str(out)], capsys)
    assert code == 0, err
    assert out.is_file() and out.stat().st_size > 0
    if suffix == ".npy":
        assert np.load(out).shape == (4, 1, 32, 32)


@pytest.mark.parametrize("args,times", [
    (["--n-future", "2", "--fps-factor", "4"], [4.25 + 0.25 * i for i in range(8)]),
    (["--horizon", "1.5", "--fps-factor", "2"], [4.5, 5.0, 5.5]),
    (["--n-future", "1", "--fps-factor", "2", "--include-context"], [0.5 * i for i in range(11)]),
    (["--n-future", "2", "--context-times", "0,0.5,2,3.25,4"], [5.0, 6.0]),
])
def test_predict_generates_at_a_new_frame_rate_and_from_irregular_context(trained_run, tmp_path, capsys, args,
                                                                          times):
    from odevideo.evaluate import generate
    from odevideo.train.checkpoint import load_checkpoint

    clip = MovingMNIST("test", digits=1, size=32, digit_size=14, n_frames=6).render_uint8([0])[0]
    np.save(tmp_path / "clip.npy", clip)
    out = tmp_path / "pred.npy"
    code, _, err = run_cli(["predict", "--checkpoint", str(trained_run), "--input", str(tmp_path / "clip.npy"),
                            "--n-context", "5", "--out", str(out), *args], capsys)
    assert code == 0, err
    got = np.load(out)
    ctx = [0.0, 0.5, 2.0, 3.25, 4.0] if "--context-times" in args else [0.0, 1.0, 2.0, 3.0, 4.0]
    want = generate(load_checkpoint(trained_run).model, torch.from_numpy(clip[None, :5, None]), ctx, times)
    assert got.shape == (len(times), 1, 32, 32)
    np.testing.assert_allclose(got, want.frames[0].numpy(), atol=1e-6)


def test_predict_reads_its_own_videos(trained_run, tmp_path, capsys):
    clip = MovingMNIST("test", digits=1, size=32, digit_size=14, n_frames=6).render_uint8([0])[0]
    np.save(tmp_path / "clip.npy", clip)
    for suffix in (".gif", ".mp4"):
        video = tmp_path / f"clip{suffix}"
        code, _, err = run_cli(["predict", "--checkpoint", str(trained_run), "--input", str(tmp_path / "clip.npy"),
                                "--n-context", "3", "--n-future", "4", "--out", str(video)], capsys)
        assert code == 0, err
        out = tmp_path / f"from{suffix}.npy"
        code, _, err = run_cli(["predict", "--checkpoint", str(trained_run), "--input", str(video),
                                "--n-future", "2", "--out", str(out)], capsys)
        assert code == 0, err
        assert np.load(out).shape == (2, 1, 32, 32)


def bad_inputs(tmp_path, run):
    clip = np.zeros((6, 32, 32), np.uint8)
    np.save(tmp_path / "clip.npy", clip)
    np.save(tmp_path / "int.npy", clip.astype(np.int32))
    np.save(tmp_path / "big.npy", np.full((6, 32, 32), 2.0, np.float32))
    np.save(tmp_path / "shape.npy", np.zeros((6, 2, 2, 32, 32), np.uint8))
    np.save(tmp_path / "size.npy", np.zeros((6, 48, 48), np.uint8))
    (tmp_path / "corrupt.npy").write_bytes(b"\x93NUMPY garbage")
    (tmp_path / "broken.gif").write_bytes(b"GIF89a" + b"\x00" * 20)
    (tmp_path / "bad.safetensors").write_bytes(b"not a checkpoint")
    np.save(tmp_path / "std.npy", np.zeros((8, 2, 32, 32), np.uint8))
    nan = np.zeros((6, 32, 32), np.float32)
    nan[2, 3, 4] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    (tmp_path / "empty.npy").write_bytes(b"")
    (tmp_path / "empty.gif").write_bytes(b"")
    from odevideo.visualize import write_frames

    for suffix in (".mp4", ".gif"):
        good = write_frames(tmp_path / f"good{suffix}", torch.rand(6, 1, 32, 32), fps=4)
        data = good.read_bytes()
        (tmp_path / f"trunc{suffix}").write_bytes(data[:len(data) // 3])
    ck, clip_p = str(run), str(tmp_path / "clip.npy")
    out = str(tmp_path / "o.npy")
    predict = ["predict", "--checkpoint", ck, "--out", out]
    return [
        (predict + ["--input", clip_p, "--n-context", "9", "--n-future", "2"], "n-context 9"),
        (predict + ["--input", clip_p, "--times", "7,6"], "strictly increasing"),
        (predict + ["--input", clip_p, "--times", "7,nan"], "finite"),
        (predict + ["--input", clip_p, "--times", "a,b"], "comma-separated"),
        (predict + ["--input", clip_p], "--horizon H or --times"),
        (predict + ["--input", clip_p, "--n-future", "2", "--fps-factor", "0"], "fps-factor must be"),
        (predict + ["--input", clip_p, "--horizon", "-1"], "must be > 0"),
        (predict + ["--input", clip_p, "--n-future", "2", "--horizon", "3"], "exactly one"),
        (predict + ["--input", clip_p, "--times", "7,8", "--fps-factor", "2"], "lists the times itself"),
        (predict + ["--input", clip_p, "--n-context", "3", "--context-times", "0,2,1", "--n-future", "2"],
         "--context-times must be strictly increasing"),
        (predict + ["--input", clip_p, "--n-context", "3", "--context-times", "0,1", "--n-future", "2"],
         "2 times for 3 context frames"),
        (predict + ["--input", clip_p, "--n-future", "2", "--fps", "0"], "--fps must be > 0"),
        (predict + ["--input", str(tmp_path / "missing.npy"), "--n-future", "2"], "does not exist"),
        (predict + ["--input", str(tmp_path / "int.npy"), "--n-future", "2"], "uint8"),
        (predict + ["--input", str(tmp_path / "big.npy"), "--n-future", "2"], r"\[0, 1\]"),
        (predict + ["--input", str(tmp_path / "shape.npy"), "--n-future", "2"], "expected"),
        (predict + ["--input", str(tmp_path / "size.npy"), "--n-future", "2"], "model expects"),
        (predict + ["--input", str(tmp_path / "corrupt.npy"), "--n-future", "2"], "cannot read"),
        (predict + ["--input", str(tmp_path / "broken.gif"), "--n-future", "2"], "cannot decode"),
        (predict + ["--input", str(tmp_path / "trunc.mp4"), "--n-future", "2"], "cannot decode"),
        (predict + ["--input", str(tmp_path / "trunc.gif"), "--n-future", "2"], "cannot decode|no frames"),
        (predict + ["--input", str(tmp_path / "empty.npy"), "--n-future", "2"], "cannot read"),
        (predict + ["--input", str(tmp_path / "empty.gif"), "--n-future", "2"], "cannot decode|no frames"),
        (predict + ["--input", str(tmp_path / "nan.npy"), "--n-future", "2"], "NaN"),
        (predict + ["--input", clip_p, "--n-context", "0", "--n-future", "2"], "n-context must be >= 1"),
        (["predict", "--checkpoint", str(tmp_path / "bad.safetensors"), "--input", clip_p, "--n-future", "2",
          "--out", out], "corrupt"),
        (["predict", "--checkpoint", ck, "--input", clip_p, "--n-future", "2", "--out", str(tmp_path / "o.avi")],
         "unsupported output"),
        (["evaluate", "--checkpoint", ck, "--test-file", str(tmp_path / "clip.npy")], r"\(T, N, H, W\)"),
        (["evaluate", "--checkpoint", ck, "--test-file", str(tmp_path / "std.npy"), "--n-context", "10"],
         "exceeds the 8 frames"),
        (["evaluate", "--checkpoint", ck, "--n", "0"], "--n and --batch-size"),
        (["train", "--config", "demo", "--set", "train.nope=1"], "unknown config key"),
        (["train", "--config", str(tmp_path / "nope.yaml")], "neither a shipped config"),
        (["train", "--config", "demo", "--run-dir", str(tmp_path / "fresh"), "--resume"], "no trainer checkpoint"),
        (["train", "--config", "demo", "--run-dir", ck], "already holds a run"),
    ]


def test_bad_input_gives_one_line_error_and_exit_2(trained_run, tmp_path, capsys):
    for args, match in bad_inputs(tmp_path, trained_run):
        code, _, err = run_cli(args, capsys)
        assert code == 2, (args, err)
        assert err.startswith("odevideo: error: ") and "Traceback" not in err, (args, err)
        assert len(err.strip().splitlines()) == 1, err
        if match:
            import re

            assert re.search(match, err), (match, err)


def test_huge_inputs_are_refused_but_a_long_clip_is_read_only_as_far_as_needed(trained_run, tmp_path, capsys,
                                                                            monkeypatch):
    import odevideo.data.videos as videos

    clip = MovingMNIST("test", digits=1, size=32, digit_size=14, n_frames=40).render_uint8([0])[0]  # 40 frames
    np.save(tmp_path / "long.npy", clip)
    write_path = tmp_path / "long.gif"
    from odevideo.visualize import write_frames

    write_frames(write_path, torch.from_numpy(clip[:, None]).float() / 255, fps=4)
    monkeypatch.setattr(videos, "MAX_BYTES", 30 * 32 * 32)  # less than the 40 frames, more than 5 RGBA ones
    for path in (tmp_path / "long.npy", write_path):
        args = ["predict", "--checkpoint", str(trained_run), "--input", str(path), "--n-future", "2",
                "--out", str(tmp_path / "o.npy")]
        code, _, err = run_cli(args, capsys)
        assert code == 2 and "pass --n-context" in err, err
        code, _, err = run_cli(args + ["--n-context", "5"], capsys)
        assert code == 0, err


def test_help_is_fast_to_import_and_lists_commands():
    code = ("import sys, odevideo.cli\ntry:\n    odevideo.cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print('torch' in sys.modules)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0
    for cmd in ("train", "predict", "evaluate", "demo"):
        assert cmd in res.stdout
    assert res.stdout.strip().endswith("False")  # --help does not import torch
