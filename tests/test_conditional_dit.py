"""The conditional DiT: it reads the noisy sequence only where frames are missing and the clean one only where they
are observed, it rebuilds from its config, and training on random masks makes it learn the conditional score."""

from __future__ import annotations

import pytest
import torch

from gptheory import GaussianProcess
from gptheory.conditional_dit import ConditionalDiT
from gptheory.denoiser import build_model, from_config
from gptheory.imputers import exact_conditional_score
from gptheory.masks import forecast_mask
from gptheory.recipe import TrainConfig
from gptheory.train import train, training_set

SIZE = {"N": 6, "d": 3, "hidden": 24, "depth": 2, "heads": 2}


def _model(prediction: str = "eps") -> ConditionalDiT:
    net = build_model(5, arch="conditional-dit", prediction=prediction, **SIZE)
    with torch.no_grad():  # the output layer starts at zero: give it weights so the output depends on the input
        net.out.weight.normal_(generator=torch.Generator().manual_seed(1))
        net.adaLN.weight.normal_(std=0.1, generator=torch.Generator().manual_seed(2))
    return net.eval()


@pytest.mark.parametrize("prediction", ["eps", "v"])
def test_the_output_reads_noisy_frames_where_missing_and_clean_ones_where_observed(prediction):
    net = _model(prediction)
    g = torch.Generator().manual_seed(0)
    x, x_obs, t = torch.randn(4, 6, 3, generator=g), torch.randn(4, 6, 3, generator=g), torch.rand(4, generator=g)
    observed = forecast_mask(6, 2)
    out = net(x, t, x_obs, observed)
    x2, obs2 = x.clone(), x_obs.clone()
    x2[:, :2] += 5.0  # the noisy input at observed frames
    obs2[:, 2:] -= 5.0  # the clean input at missing frames
    if prediction == "eps":
        assert torch.allclose(net(x2, t, obs2, observed), out, atol=1e-6)
    else:  # eps_hat = sigma_t x_t + alpha_t F: the raw output F is what ignores them
        assert torch.allclose(net(x2, t, obs2, observed, raw=True), net(x, t, x_obs, observed, raw=True), atol=1e-6)
    moved = x_obs.clone()
    moved[:, 0] += 1.0  # an observed frame does move the output
    assert not torch.allclose(net(x, t, moved, observed), out, atol=1e-4)


def test_masks_of_frames_and_of_entries_agree_and_the_config_rebuilds_the_network():
    net = _model()
    x, t = torch.randn(3, 6, 3), torch.full((3,), 0.4)
    frames = forecast_mask(6, 3)
    a = net(x, t, x, frames)
    assert torch.equal(a, net(x, t, x, frames[None].expand(3, 6)))
    assert torch.equal(a, net(x, t, x, frames[None, :, None].expand(3, 6, 3)))
    twin = from_config(net.config())
    twin.load_state_dict(net.state_dict())
    assert isinstance(twin, ConditionalDiT) and torch.equal(twin.eval()(x, t, x, frames), a)
    assert net.config()["arch"] == "conditional-dit"


def test_its_score_is_minus_x_at_observed_entries_and_minus_eps_over_sigma_elsewhere():
    net = _model()
    x_obs, observed = torch.randn(1, 6, 3), forecast_mask(6, 4)
    fn = net.conditional_score_fn(x_obs, observed)
    x, t = torch.randn(5, 6, 3), torch.full((5,), 0.3)
    s = fn(x, t)
    assert torch.equal(s[:, :4], -x[:, :4])
    sigma = net.schedule.sigma(torch.tensor(0.3, dtype=torch.float64)).float()
    assert torch.allclose(s[:, 4:], -net(x, t, x_obs.expand(5, -1, -1), observed)[:, 4:] / sigma, atol=1e-6)


def test_training_on_random_masks_learns_the_conditional_denoiser():
    """The excess validation loss over the exact conditional denoiser falls well below where it starts."""
    gp = GaussianProcess(6, 3, nu=1.4, ell=2.2, seed=8)
    net = build_model(1, arch="conditional-dit", **SIZE)
    cfg = TrainConfig(steps=600, batch_size=64, lr=3e-3, warmup=20, t0=0.01, t_sampling="log_snr", precision="fp32",
                      patience=50, eval_every=100, masking="mixed", seed=0)  # fmt: skip
    res = train(net, training_set(gp, 512, seed=1), cfg, progress=False, validation=training_set(gp, 128, seed=2),
                exact_score=exact_conditional_score(gp, net.schedule))  # fmt: skip
    losses = [v for _, v in res.validation]
    assert losses[-1] < 0.5 * losses[0], losses
    assert min(losses) > -0.05  # an excess over the exact denoiser: about 0 at best, never far below


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda n: n(torch.randn(2, 6, 3), 0.5), r"needs x_obs and observed: model\(x, t, x_obs, observed\)"),
        (lambda n: n(torch.randn(2, 6, 3), 0.5, torch.randn(2, 6, 3), torch.ones(6)), r"observed must be a boolean"),
        (
            lambda n: n(torch.randn(2, 6, 3), 0.5, torch.randn(2, 6, 3), torch.ones(5, dtype=torch.bool)),
            r"observed must have shape \(N,\) = \(6,\), \(batch, N\) = \(2, 6\) or .* got \(5,\)",
        ),
        (
            lambda n: n(torch.randn(2, 6, 3), 0.5, torch.randn(3, 6, 3), forecast_mask(6, 2)),
            r"x_obs must be a floating-point tensor shaped as x, \(2, 6, 3\), got \(3, 6, 3\)",
        ),
        (
            lambda n: n(torch.randn(2, 6, 3), 0.5, torch.randn(2, 5, 3), forecast_mask(6, 2)),
            r"x_obs must be a .*got \(2, 5, 3\)",
        ),
    ],
)
def test_bad_input_names_the_parameter(call, match):
    with pytest.raises(ValueError, match=match):
        call(_model())
