"""Tests for gptheory.convergence: patience on a fixed validation loss, training that stops when it has converged
(and resumes to the same stop), and the memorisation check."""

from __future__ import annotations

import pytest
import torch

from gptheory.convergence import Stopper, ValidationLoss, memorisation, quantiles
from gptheory.denoiser import build_model
from gptheory.gp import GaussianProcess
from gptheory.recipe import TimeSampler
from gptheory.streams import generator
from gptheory.train import TrainConfig, train, training_set

pytestmark = pytest.mark.usefixtures("one_thread")

N, d = 8, 2
MODEL = {"N": N, "d": d, "hidden": 16, "depth": 2, "heads": 2}
GP = GaussianProcess(N, d, nu=2.0, ell=3.0)


def cfg(**kw) -> TrainConfig:
    base = {"steps": 400, "batch_size": 16, "lr": 2e-3, "warmup": 3, "log_every": 5, "seed": 3, "precision": "fp32"}
    return TrainConfig(**{**base, "patience": 2, "eval_every": 10, **kw})


def test_stopper_halves_the_rate_on_each_plateau_and_stops_below_the_floor_rate():
    s = Stopper(patience=2, min_delta=0.01, min_lr_ratio=0.2)
    assert not any(s.update(k, 1.0 / (k + 1)) for k in range(10))  # always progressing by more than 1%: never stops
    assert s.scale == 1.0 and s.lr_scale == 1.0 and s.reference == 0.1
    assert not s.update(10, 0.095)  # below the reference by less than min_delta * scale: the best moves, patience not
    assert s.best == 0.095 and s.best_step == 10 and s.since == 1 and s.reference == 0.1
    assert not s.update(11, 0.089) and s.since == 0 and s.reference == 0.089  # small falls add up until they count
    assert not s.update(12, 1.0) and not s.update(13, 1.0) and s.lr_scale == 0.5  # a plateau: halve the rate
    assert not s.update(14, 1.0) and not s.update(15, 1.0) and s.lr_scale == 0.25
    assert not s.update(16, 1.0) and s.update(17, 1.0)  # 0.125 would be below min_lr_ratio: converged
    assert s.best_step == 11
    again = Stopper(2, 0.01, 0.2)
    again.load(s.state())
    assert again.history == s.history and again.lr_scale == s.lr_scale and again.reference == s.reference
    excess = Stopper(1, 0.1, 0.5)
    excess.update(1, 0.02, scale=0.9)  # an excess loss: the threshold is min_delta times the exact loss's scale
    assert not excess.update(2, 0.02 - 0.05) and excess.scale == 0.9 and excess.lr_scale == 0.5  # 0.05 < 0.09


def test_validation_loss_is_a_fixed_function_of_the_weights():
    x = training_set(GP, 32, seed=1)
    t = torch.tensor([0.01, 0.1, 0.5])
    loss = ValidationLoss(x, t, generator(0, "validation_noise"), "cpu")
    model = build_model(0, **MODEL).eval()
    assert loss(model) == loss(model)
    assert loss(model) == pytest.approx(1.0, rel=0.15)  # a zero-initialised output: the loss of predicting 0
    assert torch.allclose(quantiles(4), torch.tensor([0.125, 0.375, 0.625, 0.875], dtype=torch.float64))


def test_a_network_that_cannot_improve_stops_after_patience_checks_and_a_cap_is_a_cap():
    data, val = training_set(GP, 40, seed=0), training_set(GP, 16, seed=1)
    res = train(build_model(0, **MODEL), data, cfg(lr=1e-9), progress=False, validation=val)
    # the first check sets the best; then every two checks without an improvement halve the rate, 1 -> 1/16, and the
    # next halving would go below min_lr_ratio = 0.05: 1 + 5 * 2 checks
    assert res.stop_reason == "converged" and res.steps == 110
    assert [s for s, _ in res.validation] == list(range(10, 111, 10))
    capped = train(build_model(0, **MODEL), data, cfg(steps=20, patience=50), progress=False, validation=val)
    assert capped.stop_reason == "cap" and capped.steps == 20
    with pytest.raises(ValueError, match="patience=2 needs held-out validation sequences"):
        train(build_model(0, **MODEL), data, cfg(), progress=False)


def test_the_network_sampled_from_is_the_best_validated_one():
    data, val = training_set(GP, 40, seed=0), training_set(GP, 16, seed=1)
    res = train(build_model(0, **MODEL), data, cfg(steps=60, patience=50), progress=False, validation=val)
    losses = dict(res.validation)
    assert res.best_step == min(losses, key=losses.get)
    t = TimeSampler(res.ema.schedule, res.config.t0, res.config.t_sampling)(quantiles(8))  # rebuilt as train does
    loss = ValidationLoss(val, t, generator(3, "validation_noise"), "cpu")
    assert loss(res.ema) == pytest.approx(losses[res.best_step], rel=1e-5)


def test_an_interrupted_run_stops_where_the_uninterrupted_one_did(tmp_path):
    data, val = training_set(GP, 40, seed=0), training_set(GP, 16, seed=1)
    c = cfg(steps=300, patience=1, eval_every=10, min_delta=0.05)
    whole = train(build_model(0, **MODEL), data, c, progress=False, validation=val)
    ck = tmp_path / "run.pt"
    train(build_model(0, **MODEL), data, c, checkpoint=ck, stop_at=whole.steps // 2, progress=False, validation=val)
    resumed = train(build_model(0, **MODEL), data, c, checkpoint=ck, progress=False, validation=val)
    assert (resumed.steps, resumed.stop_reason, resumed.validation) == (
        whole.steps,
        whole.stop_reason,
        whole.validation,
    )
    ea, eb = whole.ema.state_dict(), resumed.ema.state_dict()
    assert all(torch.equal(ea[k], eb[k]) for k in ea)


def test_memorisation_tells_copies_from_fresh_draws():
    train_set = GP.sample(300, generator=torch.Generator().manual_seed(0))
    heldout = GP.sample(300, generator=torch.Generator().manual_seed(1))
    fresh = GP.sample(200, generator=torch.Generator().manual_seed(2))
    copies = train_set[:200] + 1e-3 * torch.randn(200, N, d, generator=torch.Generator().manual_seed(3))
    copied = memorisation(copies, train_set, heldout)
    assert copied.ratio < 0.05 and copied.copies == 1.0
    half = memorisation(torch.cat([copies[:20], fresh[20:]]), train_set, heldout)  # a copied tenth: the median
    assert half.ratio > 0.9 and 0.08 < half.copies < 0.2  # does not see it, the share does
    # fresh draws: both medians are of the same law; 200 draws pin a median to a few per cent
    assert memorisation(fresh, train_set, heldout).ratio == pytest.approx(1.0, abs=0.1)


def test_missing_error_sums_over_the_missing_entries_only():
    from gptheory.convergence import missing_error

    pred, target = torch.zeros(2, 3, 2), torch.ones(2, 3, 2)
    target[0, 0] = 100.0  # observed in sequence 0: not counted
    observed = torch.tensor([[True, False, False], [False, False, True]])
    err, count = missing_error(pred, target, observed)
    assert count == 8 and float(err) == 8.0
