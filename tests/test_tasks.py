"""Continuous-time tasks: exact ground truth and the time-aware baselines."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from odevideo.data.moving_mnist import MovingMNIST
from odevideo.tasks import TASKS, evaluate_task, task_data, time_baseline


def test_baselines_reproduce_the_context_at_context_times_and_blend_between():
    context = torch.rand(2, 3, 1, 4, 4)
    t_ctx = torch.tensor([[0.0, 1.0, 3.0], [0.5, 2.0, 2.5]])
    for name in ("nearest", "linear"):
        torch.testing.assert_close(time_baseline(name, context, t_ctx, t_ctx), context)
    t_q = torch.tensor([[2.0, 2.5, 5.0], [0.5, 2.25, 9.0]])
    linear = time_baseline("linear", context, t_ctx, t_q)
    torch.testing.assert_close(linear[0, 0], 0.5 * context[0, 1] + 0.5 * context[0, 2])
    torch.testing.assert_close(linear[0, 1], 0.25 * context[0, 1] + 0.75 * context[0, 2])
    torch.testing.assert_close(linear[:, 2], context[:, 2])  # beyond the window: the last frame
    nearest = time_baseline("nearest", context, t_ctx, t_q)
    torch.testing.assert_close(nearest[0, 1], context[0, 2])
    torch.testing.assert_close(nearest[1, 1], context[1, 1])  # a tie goes to the earlier frame
    assert time_baseline("zeros", context, t_ctx, t_q).abs().sum() == 0
    with pytest.raises(ValueError, match="unknown baseline"):
        time_baseline("cubic", context, t_ctx, t_q)


@pytest.mark.parametrize("name", list(TASKS))
def test_task_frames_are_the_sequences_rendered_at_the_task_times(name):
    gen = MovingMNIST("test", digits=1, size=32)
    data = task_data(TASKS[name], gen, n=3)
    t_ctx, t_q = data["t_context"], data["t_query"]
    assert (t_ctx[:, 1:] > t_ctx[:, :-1]).all() and (t_q[:, 1:] > t_q[:, :-1]).all()
    for i in range(3):
        np.testing.assert_array_equal(data["target"][i, :, 0].numpy(), gen.render_uint8([i], t_q[i].numpy())[0])
        np.testing.assert_array_equal(data["context"][i, :, 0].numpy(), gen.render_uint8([i], t_ctx[i].numpy())[0])


def test_task_times():
    idx = np.arange(4)
    assert TASKS["interpolation"].times(idx)[1][0].tolist() == [1, 3, 5, 7, 9, 11, 13, 15, 17]
    assert len(TASKS["fruc_x2"].times(idx)[1][0]) == 9 and len(TASKS["fruc_x4"].times(idx)[1][0]) == 27
    t_ctx, t_q = TASKS["irregular_context"].times(idx)
    assert (t_ctx[:, 0] == 0).all() and (t_ctx[:, -1] == 9).all() and not np.allclose(t_ctx[0], t_ctx[1])
    assert t_q[0].tolist() == list(range(10, 20))


def test_perfect_linear_world_scores_zero_for_the_linear_baseline():
    # Frames that change linearly in time: the linear blend is exact, nearest is not.
    base, slope = torch.rand(2, 1, 1, 16, 16) * 0.5, torch.rand(2, 1, 1, 16, 16) * 0.1  # stays in [0, 1]
    t_ctx, t_q = torch.arange(0.0, 6.0, 2.0).expand(2, -1), torch.tensor([1.0, 3.0]).expand(2, -1)
    data = {"context": base + slope * t_ctx[..., None, None, None], "target": base + slope * t_q[..., None, None, None],
            "t_context": t_ctx, "t_query": t_q}
    res = evaluate_task(data, methods=("linear", "nearest"))
    assert res["linear"]["mse"] == pytest.approx(0.0, abs=1e-10) and res["nearest"]["mse"] > 0
    assert res["linear"]["per_time"]["t"] == [1.0, 3.0]
