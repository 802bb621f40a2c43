"""Never lose work: exact resume after kill -9, damaged checkpoints, no pickle, failed steps, signals, DDP."""

from __future__ import annotations

import copy
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import lightning as L
import pytest
import torch
from safetensors.torch import load_file

import odevideo.training.module as module_mod
from odevideo.errors import CheckpointError, SolverError
from odevideo.training.run import train, trainer_checkpoints
from tests.conftest import TINY_CLI


def train_cmd(run_dir: Path, *extra: str, steps: int = 40) -> list[str]:
    return [sys.executable, "-m", "odevideo.cli", "train", "--config", "demo", *TINY_CLI, "--set",
            "train.val_every=2", "--max-steps", str(steps), "--seed", "3", "--out", str(run_dir), "--quiet", *extra]


def wait_for_checkpoint(proc: subprocess.Popen, run_dir: Path, step: int, timeout: float = 120.0) -> int:
    """Poll until a trainer checkpoint of at least ``step`` exists; its step."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = trainer_checkpoints(run_dir)
        if found and int(found[0].stem.split("step")[1]) >= step:
            return int(found[0].stem.split("step")[1])
        assert proc.poll() is None, f"the run ended before step {step}: {proc.stderr.read() if proc.stderr else ''}"
        time.sleep(0.005)
    raise TimeoutError(f"no trainer checkpoint of step {step} after {timeout} s")


def assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = load_file(str(a)), load_file(str(b))
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key


@pytest.mark.slow
def test_kill_9_mid_run_then_resume_ends_with_the_same_weights_bit_for_bit(tmp_path):
    ref = subprocess.run(train_cmd(tmp_path / "ref"), capture_output=True, text=True, timeout=600)
    assert ref.returncode == 0, ref.stderr
    run = tmp_path / "run"
    kill_after = random.Random().randint(2, 30)  # a random step; printed if the test fails
    proc = subprocess.Popen(train_cmd(run), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        step = wait_for_checkpoint(proc, run, kill_after)
    finally:
        proc.kill()  # SIGKILL: no handler runs, no final checkpoint
    assert proc.wait() == -signal.SIGKILL
    assert step < 40, f"killed after step {kill_after}"
    # What a kill during a checkpoint write can leave: a truncated newest checkpoint and a temporary file.
    newest = trainer_checkpoints(run)[0]
    (run / "checkpoints" / f"trainer-step{step + 1}.ckpt").write_bytes(newest.read_bytes()[:1000])
    (run / "checkpoints" / f".trainer-step{step + 2}.ckpt.tmp").write_bytes(b"partial")
    resumed = subprocess.run(train_cmd(run, "--resume"), capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert f"cannot resume from {run / 'checkpoints' / f'trainer-step{step + 1}.ckpt'}" in resumed.stderr
    assert_same_weights(tmp_path / "ref/checkpoints/last.safetensors", run / "checkpoints/last.safetensors")
    assert len(trainer_checkpoints(run)) == 2  # keep_last=2; the damaged one is kept aside, out of the rotation
    assert (run / "checkpoints" / f"trainer-step{step + 1}.ckpt.damaged").is_file()


def test_a_malicious_trainer_checkpoint_is_refused_without_running_its_payload(tiny_config, tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    torch.save({"global_step": 1, "optimizer_states": [], "evil": Payload()},
               tmp_path / "run" / "checkpoints" / "trainer-step1.ckpt")
    with pytest.raises(CheckpointError, match="no loadable trainer checkpoint.*trainer-step1.ckpt"):
        train(tiny_config(), tmp_path / "run", resume=True, progress=False)
    assert not marker.exists()


class NaNGrad(torch.autograd.Function):
    """Identity forward, NaN gradient backward."""

    @staticmethod
    def forward(ctx, x):  # noqa: ANN001, ANN205
        return x.clone()

    @staticmethod
    def backward(ctx, grad):  # noqa: ANN001, ANN205
        return torch.full_like(grad, float("nan"))


def tensors_equal(a: object, b: object) -> bool:
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(tensors_equal(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(tensors_equal(x, y) for x, y in zip(a, b, strict=True))
    return a == b


class Snapshots(L.Callback):
    """Whether each step changed the parameters and the optimizer state."""

    def __init__(self) -> None:
        self.changed: list[tuple[bool, bool]] = []

    def on_train_batch_start(self, trainer, module, batch, batch_idx):  # noqa: ANN001, ANN201
        self.before = (copy.deepcopy(module.state_dict()), copy.deepcopy(self._moments(trainer)))

    @staticmethod
    def _moments(trainer):  # noqa: ANN001, ANN205 (AdamW's per-parameter state; the schedule moves lr anyway)
        return trainer.optimizers[0].state_dict()["state"]

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):  # noqa: ANN001, ANN201
        params, opt = self.before
        self.changed.append((not tensors_equal(params, module.state_dict()),
                             not tensors_equal(opt, self._moments(trainer))))


def test_failed_steps_are_skipped_leaving_parameters_and_optimizer_state_untouched(tiny_config, tmp_path, monkeypatch):
    real = module_mod.objective_loss
    calls = []

    def flaky(model, *args, **kwargs):  # noqa: ANN001, ANN202
        calls.append(1)
        n = len(calls)
        if n == 3:
            raise SolverError("ODE solve exceeded max_nfe=1 function evaluations at t=0.5, dt=0.5; injected")
        loss, recon, out, target = real(model, *args, **kwargs)
        if n == 5:
            loss = loss * float("nan")
        if n == 7:
            loss = loss + 0.0 * NaNGrad.apply(next(model.parameters()).sum())  # finite loss, NaN gradients
        return loss, recon, out, target

    monkeypatch.setattr(module_mod, "objective_loss", flaky)
    config = tiny_config()
    config.data.batch_size, config.data.val_size = 2, 4
    config.train.max_steps, config.train.val_every, config.train.warmup_steps = 8, 4, 0
    snapshots = Snapshots()
    result = train(config, tmp_path / "run", progress=False, callbacks=[snapshots])
    assert result.steps == 8 and result.skipped == 3
    failed = {2, 4, 6}  # batch indices of calls 3, 5 and 7
    for i, (params_changed, opt_changed) in enumerate(snapshots.changed):
        assert params_changed == opt_changed == (i not in failed), i


def test_on_failure_stop_raises_naming_the_step_and_leaves_a_checkpoint(tiny_config, tmp_path):
    config = tiny_config()
    config.data.batch_size, config.data.val_size = 2, 4
    config.train.max_steps, config.train.on_failure = 5, "stop"
    config.solver.max_nfe = 1
    with pytest.raises(SolverError, match=r"training step 0: ODE solve exceeded max_nfe=1 .*at t=.*"
                                          r"stopped: train.on_failure=stop.*checkpoints of step 1"):
        train(config, tmp_path / "run", progress=False)
    assert (tmp_path / "run/checkpoints/last.safetensors").is_file() and trainer_checkpoints(tmp_path / "run")


def test_skipping_gives_up_after_ten_failures_in_a_row(tiny_config, tmp_path):
    config = tiny_config()
    config.data.batch_size, config.data.val_size = 2, 4
    config.train.max_steps = 50
    config.solver.max_nfe = 1
    with pytest.raises(SolverError, match="10 failed steps in a row"):
        train(config, tmp_path / "run", progress=False)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_after_a_step_with_a_checkpoint_and_resume_goes_on(tmp_path, sig):
    run = tmp_path / "run"
    cmd = train_cmd(run, steps=100_000)
    if sig == signal.SIGINT:
        cmd.remove("--quiet")  # Ctrl-C at a terminal: with the progress bar on
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_checkpoint(proc, run, 2)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 128 + sig, err
    assert "Traceback" not in err
    stopped = int(err.split("after step ")[1].split(";")[0])
    assert (run / "checkpoints" / f"trainer-step{stopped}.ckpt").is_file()
    resumed = subprocess.run(train_cmd(run, "--resume", steps=stopped + 2), capture_output=True, text=True,
                             timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"trained {stopped + 2} steps" in resumed.stdout


@pytest.mark.slow
@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not built in")
def test_two_ddp_processes_match_one_process_with_the_same_global_batch(tmp_path):
    common = ["--set", "train.warmup_steps=0", "--set", "train.val_every=4"]
    one = subprocess.run(train_cmd(tmp_path / "one", *common, "--set", "data.batch_size=4", steps=4),
                         capture_output=True, text=True, timeout=600)
    assert one.returncode == 0, one.stderr
    env = {**os.environ, "MASTER_PORT": str(random.Random().randint(20000, 40000))}
    two = subprocess.run(train_cmd(tmp_path / "two", *common, "--set", "data.batch_size=2", "--devices", "2",
                                   "--strategy", "ddp", "--set", "train.accelerator=cpu", steps=4),
                         capture_output=True, text=True, timeout=600, env=env)
    assert two.returncode == 0, two.stderr
    other = subprocess.run(train_cmd(tmp_path / "other", *common, "--set", "data.batch_size=4", "--seed", "2",
                                     steps=4), capture_output=True, text=True, timeout=600)
    assert other.returncode == 0, other.stderr
    wa, wb, wc = (load_file(str(tmp_path / name / "checkpoints/last.safetensors")) for name in ("one", "two", "other"))
    # The processes sum their gradients in another order than one process does, so the weights agree to
    # rounding, not bit for bit (on an AMD EPYC 2-core box the largest gap was 1.3e-4 of a tensor's scale).
    worst = max(wa, key=lambda key: relative_gap(wb[key], wa[key]))
    assert relative_gap(wb[worst], wa[worst]) < DDP_TOLERANCE, worst
    # the comparison can fail: another seed's weights are far outside it
    assert max(relative_gap(wc[key], wa[key]) for key in wa) > 100 * DDP_TOLERANCE


DDP_TOLERANCE = 2e-3  # of a tensor's scale; 4 Adam steps without synchronised gradients move weights by ~0.1


def relative_gap(got: torch.Tensor, want: torch.Tensor) -> float:
    """The largest difference between two tensors, in float64, over the scale of ``want`` (its largest absolute
    value, at least 1e-3: a tensor of zeros is compared absolutely at that scale)."""
    got, want = got.double(), want.double()
    return float((got - want).abs().max() / want.abs().max().clamp_min(1e-3))


@pytest.mark.slow
@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not built in")
def test_a_failure_in_one_ddp_process_is_skipped_by_all_without_hanging(tmp_path):
    # sitecustomize runs in every Python process that has it on its path: here it breaks the third training
    # step of the second DDP process only.
    (tmp_path / "sitecustomize.py").write_text(
        "import os\n"
        "if os.environ.get('LOCAL_RANK') == '1':\n"
        "    import odevideo.training.module as m\n"
        "    from odevideo.errors import SolverError\n"
        "    real, calls = m.objective_loss, []\n"
        "    def flaky(*args, **kwargs):\n"
        "        calls.append(1)\n"
        "        if len(calls) == 3:\n"
        "            raise SolverError('injected failure in process 1')\n"
        "        return real(*args, **kwargs)\n"
        "    m.objective_loss = flaky\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
           "MASTER_PORT": str(random.Random().randint(20000, 40000))}
    res = subprocess.run(train_cmd(tmp_path / "run", "--set", "data.batch_size=2", "--devices", "2", "--strategy",
                                   "ddp", "--set", "train.accelerator=cpu", steps=5),
                         capture_output=True, text=True, timeout=300, env=env)
    assert res.returncode == 0, res.stderr
    assert "trained 5 steps" in res.stdout and "skipped 1 failed steps" in res.stdout, res.stdout
    assert "training step 2: a step failed in another process" in res.stderr
