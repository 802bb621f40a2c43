"""Training: the time budget stops a run and anneals the learning rate; the run directory is complete."""

import pytest

from odevideo.train.checkpoint import load_checkpoint
from odevideo.train.module import TimeBudget, VideoODEModule
from odevideo.train.run import train
from tests.test_model import tiny_config


@pytest.mark.parametrize("clock", ["wall", "process"])
def test_time_budget_stops_training_before_max_steps(tmp_path, clock):
    config = tiny_config()
    config.data.batch_size, config.data.val_size = 2, 4
    config.train.max_steps, config.train.max_minutes, config.train.clock = 100_000, 0.03, clock
    config.train.val_every = 50
    result = train(config, tmp_path / "run", progress=False)
    assert 0 < result.steps < 100_000
    assert result.best.is_file() and result.last.is_file()
    assert load_checkpoint(result.last).step == result.steps


def test_budget_fraction_drives_the_cosine_schedule(monkeypatch):
    config = tiny_config()
    config.train.warmup_steps, config.train.max_steps = 0, 1000
    module = VideoODEModule(config)
    budget = TimeBudget(minutes=1.0)
    now = [100.0]
    monkeypatch.setattr(budget, "_now", lambda: now[0])
    budget.on_train_start(None, module)

    class FakeTrainer:
        callbacks = [budget]

    module._trainer = FakeTrainer()
    assert module.budget_used(10) == pytest.approx(0.01)  # steps lead while little time has passed
    now[0] += 30.0
    assert module.budget_used(10) == pytest.approx(0.5)  # then time does
    now[0] += 60.0
    assert module.budget_used(10) == 1.0
    budget.spent_before = 0.0
    assert budget.state_dict()["spent"] == pytest.approx(90.0)
