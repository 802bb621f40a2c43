"""Training: the time budget stops a run and anneals the learning rate; the run directory is complete."""

import pytest
import torch

from odevideo.train.checkpoint import load_checkpoint
from odevideo.train.module import TimeBudget, VideoODEModule, objective_loss
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


@pytest.mark.parametrize("objective", ["prediction", "reconstruction"])
def test_objective_sorts_interleaved_irregular_targets_per_sample(objective):
    torch.manual_seed(0)
    model = VideoODEModule(tiny_config()).model.eval()
    frames = torch.rand(2, 5, 1, 32, 32)
    times = torch.tensor([[0.0, 0.5, 2.0, 1.0, 3.5], [0.0, 1.5, 1.75, 0.25, 2.5]])  # targets interleave
    loss, _, out, target = objective_loss(model, frames, times, n_context=3, objective=objective, loss="mse",
                                          kl_weight=0.0)
    n_query = 3 if objective == "reconstruction" else 5
    for i in range(2):
        order = times[i, :n_query].argsort()
        want = model(frames[i:i + 1, :3], times[i, :3], times[i, order])
        torch.testing.assert_close(out.logits[i], want.logits[0])
        torch.testing.assert_close(target[i], frames[i, order])


def test_training_with_irregular_sampling_runs(tmp_path):
    config = tiny_config()
    config.data.batch_size, config.data.val_size, config.data.irregular = 2, 4, 1.0
    config.train.max_steps, config.train.val_every = 3, 3
    result = train(config, tmp_path / "run", progress=False)
    assert result.steps == 3 and result.best.is_file()
