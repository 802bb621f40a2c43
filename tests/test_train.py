"""Training: the time budget, the learning-rate schedule, the progress bar's limit, precision, irregular data."""

import math

import lightning as L
import pytest
import torch

from odevideo.inference import load_checkpoint
from odevideo.training import run as run_mod
from odevideo.training.module import TimeBudget, VideoModule
from odevideo.training.run import BudgetProgress, resolve_precision, train


class Tick(L.Callback):
    """A fake clock for TimeBudget: one second passes per training step."""

    def __init__(self) -> None:
        self.now = 0.0

    def on_train_batch_end(self, *args: object) -> None:
        self.now += 1.0


@pytest.mark.parametrize("clock", ["wall", "process"])
def test_the_time_budget_stops_training_when_it_is_spent(tiny_config, tmp_path, monkeypatch, clock):
    tick = Tick()
    monkeypatch.setattr(TimeBudget, "_now", lambda self: tick.now)
    config = tiny_config()
    config.train.max_steps, config.train.max_minutes, config.train.clock = 1000, 0.1, clock  # 6 fake seconds
    result = train(config, tmp_path / "run", progress=False, callbacks=[tick])
    assert result.steps == 6
    assert load_checkpoint(result.last).step == 6 and result.best.is_file()


def schedule(config, steps: int) -> list[float]:
    """The learning rates of the first ``steps`` optimizer steps."""
    module = VideoModule(config)
    opt_and_sched = module.configure_optimizers()
    opt, sched = opt_and_sched["optimizer"], opt_and_sched["lr_scheduler"]["scheduler"]
    rates = []
    for _ in range(steps):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return rates


def test_the_learning_rate_warms_up_linearly_then_follows_a_cosine_to_zero(tiny_config):
    config = tiny_config()
    config.train.lr, config.train.warmup_steps, config.train.max_steps, config.train.max_minutes = 1.0, 4, 14, None
    rates = schedule(config, 15)
    assert rates[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    cosine = [0.5 * (1 + math.cos(math.pi * (s - 4) / 10)) for s in range(4, 15)]
    assert rates[4:] == pytest.approx(cosine)
    assert rates[-1] == pytest.approx(0.0, abs=1e-12)


def test_with_a_time_budget_the_cosine_follows_the_clock(tiny_config, monkeypatch):
    config = tiny_config()
    config.train.lr, config.train.warmup_steps, config.train.max_steps = 1.0, 0, 1000
    module = VideoModule(config)
    budget = TimeBudget(minutes=1.0, clock="wall")
    now = [100.0]
    monkeypatch.setattr(budget, "_now", lambda: now[0])
    budget.on_train_start(None, module)

    class FakeTrainer:
        callbacks = [budget]

    module._trainer = FakeTrainer()
    opt_and_sched = module.configure_optimizers()
    lr_at = opt_and_sched["lr_scheduler"]["scheduler"].lr_lambdas[0]
    assert lr_at(10) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.01)))  # steps lead while little time passed
    now[0] += 30.0
    assert lr_at(10) == pytest.approx(0.5)  # half the minute: half way down the cosine
    now[0] += 60.0
    assert lr_at(10) == pytest.approx(0.0, abs=1e-12)
    assert budget.state_dict()["spent"] == pytest.approx(90.0)


def test_the_progress_bar_counts_toward_the_limit_that_will_stop_the_run():
    budget = TimeBudget(minutes=2.0, clock="wall")
    budget._start, budget._now = 0.0, lambda: 30.0  # a quarter of the time spent

    class FakeTrainer:
        global_step = 100
        callbacks = [budget]

    bar = BudgetProgress(max_steps=1000)
    assert bar._fraction(FakeTrainer()) == (0.25, "0.5 of 2 wall min")  # time leads: 25% against 10% of steps
    FakeTrainer.global_step = 500
    assert bar._fraction(FakeTrainer())[0] == 0.5  # now the steps lead
    FakeTrainer.callbacks = []
    assert bar._fraction(FakeTrainer()) == (0.5, "of 1000 steps")


def test_the_progress_bar_closes_when_training_fails(tiny_config, tmp_path):
    config = tiny_config()
    config.train.max_steps, config.train.max_minutes = 5, None

    class Boom(L.Callback):
        def on_train_batch_end(self, *args: object) -> None:
            raise RuntimeError("boom")

    bar = BudgetProgress(max_steps=5)
    with pytest.raises(RuntimeError, match="boom"):  # Lightning calls on_exception(trainer, module, exception)
        train(config, tmp_path / "run", progress=False, callbacks=[Boom(), bar])
    assert bar.bar is None


def test_resume_and_overwrite_together_are_refused(tiny_config, tmp_path):
    from odevideo.errors import ConfigError

    with pytest.raises(ConfigError, match="give one of them"):
        train(tiny_config(), tmp_path / "run", resume=True, overwrite=True, progress=False)


def test_auto_precision_takes_bf16_only_where_the_device_computes_it_natively(monkeypatch):
    monkeypatch.setattr(run_mod, "native_bf16", lambda device: device == "cpu")
    assert resolve_precision("auto", "cpu") == "bf16-mixed"
    monkeypatch.setattr(run_mod, "native_bf16", lambda device: False)
    assert resolve_precision("auto", "cpu") == "32-true"
    assert resolve_precision("16-mixed", "cpu") == "16-mixed"
    assert resolve_precision("auto", "mps") == "32-true"


def test_native_bf16_reads_the_cpu_flags(monkeypatch, tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    monkeypatch.setattr(run_mod, "Path", lambda _: cpuinfo)
    cpuinfo.write_text("model name\t: AMD EPYC\nflags\t\t: fpu avx2 avx512f\n")
    assert not run_mod.native_bf16("cpu")
    cpuinfo.write_text("model name\t: Intel Xeon\nflags\t\t: fpu avx2 avx512f avx512_bf16 amx_bf16\n")
    assert run_mod.native_bf16("cpu")


def test_the_run_records_the_precision_auto_resolved_to(tiny_config, tmp_path):
    config = tiny_config()
    config.train.precision, config.train.max_steps, config.train.max_minutes = "auto", 1, None
    result = train(config, tmp_path / "run", progress=False)
    resolved = load_checkpoint(result.last).config.train.precision
    assert resolved in ("bf16-mixed", "32-true") and resolved == resolve_precision("auto", "auto")
    assert f"precision: {resolved}" in (tmp_path / "run" / "config.yaml").read_text()


def test_training_with_irregular_sampling_runs(tiny_config, tmp_path):
    config = tiny_config()
    config.data.irregular = 1.0
    config.train.max_steps, config.train.max_minutes, config.train.val_every = 3, None, 3
    result = train(config, tmp_path / "run", progress=False)
    assert result.steps == 3 and result.best.is_file()
    assert torch.isfinite(torch.tensor(result.val_mse))
