"""The losses: the KL term against its closed form, the pixel losses, and the objectives' choice of frames."""

import pytest
import torch
from torch.distributions import Normal, kl_divergence
from torch.nn import functional as F

from odevideo.losses import kl_to_standard_normal, objective_loss, pixel_loss


def test_kl_matches_the_closed_form_of_torch_distributions():
    mean, logvar = torch.randn(3, 4, 2, 2, dtype=torch.float64), torch.randn(3, 4, 2, 2, dtype=torch.float64)
    want = kl_divergence(Normal(mean, (0.5 * logvar).exp()), Normal(0.0, 1.0)).flatten(1).sum(1).mean()
    torch.testing.assert_close(kl_to_standard_normal(mean, logvar), want)
    assert float(kl_to_standard_normal(torch.zeros(2, 5), torch.zeros(2, 5))) == 0.0


def test_pixel_losses_by_hand():
    logits, target = torch.tensor([0.0, 2.0]), torch.tensor([1.0, 0.0])
    torch.testing.assert_close(pixel_loss(logits, target, "mse"),
                               ((0.5 - 1.0) ** 2 + torch.sigmoid(torch.tensor(2.0)) ** 2) / 2)
    torch.testing.assert_close(pixel_loss(logits, target, "bce"), F.binary_cross_entropy(torch.sigmoid(logits), target))
    with pytest.raises(ValueError, match="unknown pixel loss"):
        pixel_loss(logits, target, "l1")


def test_the_kl_term_enters_only_for_variational_models(tiny_config):
    frames, times = torch.rand(2, 5, 1, 32, 32), torch.arange(5.0)
    for variational in (False, True):
        model = tiny_config(variational=variational).build_model().eval()
        total, recon, out, _ = objective_loss(model, frames, times, n_context=3, objective="prediction",
                                              loss="bce", kl_weight=0.5)
        kl = 0.0 if not variational else 0.5 * kl_to_standard_normal(out.z0_mean, out.z0_logvar)
        torch.testing.assert_close(total, recon + kl)


@pytest.mark.parametrize("objective", ["prediction", "reconstruction"])
def test_objective_sorts_interleaved_irregular_targets_per_sample(tiny_config, objective):
    model = tiny_config().build_model().eval()
    frames = torch.rand(2, 5, 1, 32, 32)
    times = torch.tensor([[0.0, 0.5, 2.0, 1.0, 3.5], [0.0, 1.5, 1.75, 0.25, 2.5]])  # targets interleave
    _, _, out, target = objective_loss(model, frames, times, n_context=3, objective=objective, loss="mse",
                                       kl_weight=0.0)
    n_query = 3 if objective == "reconstruction" else 5
    assert out.logits.shape[1] == n_query
    for i in range(2):
        order = times[i, :n_query].argsort()
        want = model(frames[i:i + 1, :3], times[i, :3], times[i, order])
        torch.testing.assert_close(out.logits[i], want.logits[0])
        torch.testing.assert_close(target[i], frames[i, order])


def test_a_learned_prior_reads_the_targets_and_its_kl_enters_the_loss(tiny_config):
    frames, times = torch.rand(2, 5, 1, 32, 32), torch.arange(5.0)
    model = tiny_config(noise_dim=2).build_model().train()
    total, recon, out, target = objective_loss(model, frames, times, n_context=3, objective="prediction",
                                               loss="bce", kl_weight=0.5)
    assert out.kl is not None and out.kl.shape == (2,) and bool((out.kl > 0).all())
    torch.testing.assert_close(total, recon + 0.5 * out.kl.mean())
    total.backward()
    assert model.posterior.weight.grad.abs().sum() > 0 and model.prior.weight.grad.abs().sum() > 0
