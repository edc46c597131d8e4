"""The exact conditional law (gptheory.conditional) against dense Gaussian conditioning on the full (N d, N d)
covariance, against torch.distributions and autograd, and by Monte Carlo: posterior draws have the posterior's
moments and the posterior's intervals cover truths drawn from the prior at their nominal rate."""

from __future__ import annotations

import math

import pytest
import scipy.stats
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from gptheory import DDPMSchedule, GaussianProcess, OUSchedule, kernel_matrix, prior, sample
from gptheory.conditional import MAX_DENSE, Conditional
from gptheory.masks import forecast_mask, interpolation_mask

OU = OUSchedule()
F64 = torch.float64
TIMES = (1e-3, 0.05, 0.5, 3.0)
Z90 = scipy.stats.norm.ppf(0.95)  # the nominal 90% interval is mean +- Z90 sd


def _gp(N: int, d: int, nu: float, ell: float, seed: int) -> GaussianProcess:
    mu = torch.randn(N, d, generator=torch.Generator().manual_seed(100 + seed), dtype=F64)
    return GaussianProcess(N, d, nu=nu, ell=ell, mu=mu, seed=seed)


# frame-wise: (N, d, nu, ell, mask); forecasting and interpolation, every kernel shape, N d <= 60
FRAMEWISE = {
    "forecast-N7-d3-nu1": ((7, 3, 1.0, 2.5), lambda N: forecast_mask(N, 3)),
    "interp-N9-d2-nu1.5": ((9, 2, 1.5, 2.0), lambda N: interpolation_mask(N, [0, 4, 8])),
    "interp-N6-d4-nu2": ((6, 4, 2.0, 1.0), lambda N: interpolation_mask(N, [1, 2, 5])),
    "forecast-N12-d1-nu0.5": ((12, 1, 0.5, 3.0), lambda N: forecast_mask(N, 1)),
    "interp-N5-d5-nu1.8": ((5, 5, 1.8, 1.2), lambda N: interpolation_mask(N, torch.tensor([2]))),
}
ENTRYWISE = {"N6-d3-nu1": (6, 3, 1.0, 2.0), "N4-d5-nu2": (4, 5, 2.0, 1.0), "N10-d2-nu1.5": (10, 2, 1.5, 3.0)}


def _framewise(name: str) -> Conditional:
    (N, d, nu, ell), mask = FRAMEWISE[name]
    return Conditional(_gp(N, d, nu, ell, seed=N + d), mask(N))


def _entrywise(name: str) -> Conditional:
    N, d, nu, ell = ENTRYWISE[name]
    mask = torch.rand(N, d, generator=torch.Generator().manual_seed(N * d)) < 0.5
    c = Conditional(_gp(N, d, nu, ell, seed=N * d), mask)
    assert not c.framewise  # a genuinely entry-wise mask
    return c


def _dense(c: Conditional, x_obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference: the conditioning formula on the full covariance, rebuilt from the kernel, by LU solves."""
    gp = c.gp
    C = torch.kron(kernel_matrix(gp.N, gp.nu, gp.ell), gp.Sigma)
    m, o = c.missing_entries.flatten(), c.observed_entries.flatten()
    x = x_obs.reshape(x_obs.shape[0], -1)
    mu = gp.mu.flatten()
    mean = mu[m] + torch.linalg.solve(C[o][:, o], (x[:, o] - mu[o]).T).T @ C[m][:, o].T
    cov = C[m][:, m] - C[m][:, o] @ torch.linalg.solve(C[o][:, o], C[o][:, m])
    return mean, 0.5 * (cov + cov.T)


def _dense_score(c: Conditional, x_t: torch.Tensor, t: float, schedule, x_obs: torch.Tensor) -> torch.Tensor:
    mean, cov = _dense(c, x_obs)
    a, s = schedule.alpha(torch.tensor(t, dtype=F64)), schedule.sigma(torch.tensor(t, dtype=F64))
    M = a**2 * cov + s**2 * torch.eye(c.n_missing, dtype=F64)
    return -torch.linalg.solve(M, (x_t[:, c.missing_entries] - a * mean).T).T


def _close(a: torch.Tensor, b: torch.Tensor, tol: float = 1e-10) -> None:
    err = (a - b).abs().max().item()
    assert err <= tol * b.abs().max().item(), f"max |a - b| = {err:.3g}, max |b| = {b.abs().max().item():.3g}"


def _all_cases() -> list[Conditional]:
    return [_framewise(k) for k in FRAMEWISE] + [_entrywise(k) for k in ENTRYWISE]


# ------------------------------------------------------------------------------------------------ masks
def test_forecast_and_interpolation_masks():
    assert forecast_mask(5, 2).tolist() == [True, True, False, False, False]
    assert interpolation_mask(6, [0, 3, 5]).tolist() == [True, False, False, True, False, True]
    assert interpolation_mask(4, torch.tensor([2])).dtype == torch.bool


# ------------------------------------------------------------------------------------------------ against dense
@pytest.mark.parametrize("name", FRAMEWISE)
def test_framewise_structured_formulas_agree_with_dense_conditioning(name):
    c = _framewise(name)
    assert c.framewise and c.Gamma_c is not None and c.rank == int(c.observed.sum())
    gen = torch.Generator().manual_seed(7)
    x_obs, x_t = c.gp.sample(4, generator=gen), 1.5 * c.gp.sample(4, generator=gen)
    mean, cov = _dense(c, x_obs)
    full = c.mean(x_obs)
    _close(full[:, c.missing_entries], mean)
    assert torch.equal(full[:, c.observed_entries], x_obs[:, c.observed_entries])  # observations kept as they are
    _close(c.covariance(), cov)
    _close(c.variance()[c.missing_entries], torch.diagonal(cov))
    assert not c.variance()[c.observed_entries].any()
    for schedule in (OU, DDPMSchedule()):
        for t in TIMES:
            t = min(t, schedule.T)
            s = c.score(x_t, t, schedule, x_obs)
            _close(s[:, c.missing_entries], _dense_score(c, x_t, t, schedule, x_obs))
            assert not s[:, c.observed_entries].any()
    ts = torch.tensor(TIMES, dtype=F64)  # one time per sequence
    s = c.score(x_t, ts, OU, x_obs)
    for k, t in enumerate(TIMES):
        _close(s[k : k + 1, c.missing_entries], _dense_score(c, x_t[k : k + 1], t, OU, x_obs[k : k + 1]))
    ev = torch.linalg.eigvalsh(cov)
    assert c.condition_number() == pytest.approx((ev.max() / ev.min()).item(), rel=1e-6)
    a2, s2 = OU.alpha(0.5).item() ** 2, OU.sigma(0.5).item() ** 2
    assert c.condition_number(0.5, OU) == pytest.approx(((a2 * ev.max() + s2) / (a2 * ev.min() + s2)).item(), rel=1e-9)


@pytest.mark.parametrize("name", ENTRYWISE)
def test_entrywise_dense_conditioning_agrees_with_an_independent_reference(name):
    c = _entrywise(name)
    gen = torch.Generator().manual_seed(8)
    x_obs, x_t = c.gp.sample(3, generator=gen), c.gp.sample(3, generator=gen)
    mean, cov = _dense(c, x_obs)
    _close(c.mean(x_obs)[:, c.missing_entries], mean)
    _close(c.covariance(), cov)
    for t in TIMES:
        _close(c.score(x_t, t, OU, x_obs)[:, c.missing_entries], _dense_score(c, x_t, t, OU, x_obs))
    ev = torch.linalg.eigvalsh(cov)
    assert c.condition_number() == pytest.approx((ev.max() / ev.min()).item(), rel=1e-6)


@settings(max_examples=30, deadline=None)
@given(
    N=st.integers(2, 10),
    d=st.integers(1, 5),
    nu=st.floats(0.3, 2.0),
    ell=st.floats(0.3, 4.0),
    t=st.floats(1e-3, 10.0),
    framewise=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_the_score_agrees_with_dense_conditioning_on_random_processes_and_masks(N, d, nu, ell, t, framewise, seed):
    """Processes and masks no other test names. The precondition: an observed block conditioned well enough
    (kappa < 1e5) that two algorithms can agree to 1e-10 at all."""
    gen = torch.Generator().manual_seed(seed)
    mask = torch.rand((N,) if framewise else (N, d), generator=gen) < 0.5
    assume(0 < int(mask.sum()) < mask.numel())
    c = Conditional(_gp(N, d, nu, ell, seed=seed), mask)
    C = torch.kron(c.gp.Gamma, c.gp.Sigma)
    o = c.observed_entries.flatten()
    assume(torch.linalg.cond(C[o][:, o]).item() < 1e5)
    x_obs, x_t = c.gp.sample(2, generator=gen), c.gp.sample(2, generator=gen)
    _close(c.score(x_t, t, OU, x_obs)[:, c.missing_entries], _dense_score(c, x_t, t, OU, x_obs))


def test_an_entry_mask_of_whole_rows_is_the_frame_mask():
    gp = _gp(8, 3, 1.5, 2.0, seed=1)
    frames = interpolation_mask(8, [1, 6])
    a, b = Conditional(gp, frames), Conditional(gp, frames[:, None].expand(8, 3))
    assert a.framewise and b.framewise
    x = gp.sample(2, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a.mean(x), b.mean(x)) and torch.equal(a.score(x, 0.3, OU, x), b.score(x, 0.3, OU, x))


@pytest.mark.parametrize("c", _all_cases()[::2], ids=lambda c: repr(c.gp))
def test_log_prob_matches_torch_distributions_and_its_gradient_is_the_score(c):
    gen = torch.Generator().manual_seed(9)
    x_obs, x_t = c.gp.sample(3, generator=gen), c.gp.sample(3, generator=gen)
    mean, cov = _dense(c, x_obs)
    t = torch.tensor([0.01, 0.4, 2.0], dtype=F64)
    a, s = OU.alpha(t), OU.sigma(t)
    for k in range(3):
        law = torch.distributions.MultivariateNormal(
            a[k] * mean[k], a[k] ** 2 * cov + s[k] ** 2 * torch.eye(len(cov), dtype=F64)
        )
        want = law.log_prob(x_t[k][c.missing_entries])
        assert c.log_prob(x_t[k : k + 1], t[k : k + 1], OU, x_obs[k : k + 1]).item() == pytest.approx(
            want.item(), rel=1e-10
        )
    xr = x_t.clone().requires_grad_(True)
    c.log_prob(xr, t, OU, x_obs).sum().backward()
    _close(xr.grad, c.score(x_t, t, OU, x_obs))


def test_observing_more_frames_never_widens_the_posterior():
    gp = _gp(10, 2, 1.0, 3.0, seed=4)
    v = [Conditional(gp, forecast_mask(10, k)).variance() for k in (2, 4, 6)]
    assert (v[1] <= v[0] + 1e-14).all() and (v[2] <= v[1] + 1e-14).all()
    assert (v[0] <= torch.diagonal(gp.Sigma) + 1e-14).all()  # nor beyond the prior's variance


# ------------------------------------------------------------------------------------------------ Monte Carlo
DRAWS = 20000


@pytest.mark.parametrize("c", [_framewise("interp-N9-d2-nu1.5"), _entrywise("N6-d3-nu1")], ids=lambda c: repr(c))
def test_posterior_draws_have_the_posterior_mean_and_covariance(c):
    gen = torch.Generator().manual_seed(11)
    x_obs = c.gp.sample(1, generator=gen)
    draws = c.sample(x_obs.expand(DRAWS, -1, -1), generator=gen)
    assert torch.equal(draws[:, c.observed_entries], x_obs[:, c.observed_entries].expand(DRAWS, -1))
    mean, cov = _dense(c, x_obs)
    r = draws[:, c.missing_entries] - mean  # (DRAWS, p)
    p, n = c.n_missing, DRAWS
    L = torch.linalg.cholesky(cov)
    w = torch.linalg.solve_triangular(L, r.T, upper=False).T  # whitened: standard normal under the right law
    # mean: n |w_bar|^2 ~ chi2(p) exactly
    assert n * (w.mean(0) ** 2).sum().item() < scipy.stats.chi2.ppf(1 - 1e-4, p)
    # covariance (mean known): n (tr S - log det S - p) ~ chi2(p (p + 1) / 2) for large n (likelihood ratio)
    S = w.T @ w / n
    lr = n * (torch.trace(S) - torch.logdet(S) - p).item()
    assert lr < scipy.stats.chi2.ppf(1 - 1e-4, p * (p + 1) // 2)
    # seeded: the same generator state gives the same draws
    again = c.sample(x_obs.expand(5, -1, -1), generator=torch.Generator().manual_seed(3))
    assert torch.equal(again, c.sample(x_obs.expand(5, -1, -1), generator=torch.Generator().manual_seed(3)))


def _binomial_ok(hits: torch.Tensor, level: float, n: int) -> bool:
    return abs(hits.double().mean().item() - level) <= 4 * math.sqrt(level * (1 - level) / n)


COVERAGE = {
    "forecast-N7-d3-nu1": lambda: _framewise("forecast-N7-d3-nu1"),
    "entrywise-N4-d5-nu2": lambda: _entrywise("N4-d5-nu2"),
    "cpu-process-N32-nu2-ell4": lambda: Conditional(GaussianProcess(32, 1, nu=2.0, ell=4.0), forecast_mask(32, 16)),
}


@pytest.mark.parametrize("name", COVERAGE)
def test_the_posteriors_nominal_90_percent_intervals_cover_at_090(name):
    """Truths drawn from the prior, the posterior from their observed part: each coordinate's interval covers with
    probability 0.9 over the DRAWS independent sequences (a binomial count); the mean over coordinates varies no more
    than the most variable coordinate, so the same 4 standard errors bound it."""
    c = COVERAGE[name]()
    x = c.gp.sample(DRAWS, generator=torch.Generator().manual_seed(12))
    sd = c.variance().sqrt()
    hits = ((x - c.mean(x)).abs() <= Z90 * sd)[:, c.missing_entries]  # (DRAWS, n_missing)
    for j in range(hits.shape[1]):
        assert _binomial_ok(hits[:, j], 0.9, DRAWS), f"coordinate {j}: coverage {hits[:, j].double().mean():.4f}"
    assert _binomial_ok(hits, 0.9, DRAWS)
    if c.condition_number() < 1e8:  # the posterior's 90% ellipsoid: Mahalanobis^2 ~ chi2(n_missing)
        r = (x - c.mean(x))[:, c.missing_entries]
        d2 = (r * torch.linalg.solve(c.covariance(), r.T).T).sum(1)
        assert _binomial_ok(d2 <= scipy.stats.chi2.ppf(0.9, c.n_missing), 0.9, DRAWS)


def test_an_ill_conditioned_kernel_gives_a_finite_positive_semidefinite_posterior():
    c = COVERAGE["cpu-process-N32-nu2-ell4"]()  # Gamma_oo's condition number is about 5e10
    assert c.rank == 16 and math.isfinite(c.condition_number()) and c.condition_number() > 1e10
    assert torch.isfinite(c.mean(c.gp.sample(3))).all() and (c.spectrum() >= 0).all()
    v = c.variance()[16:, 0]
    assert (v > 0).all() and (v <= 1 + 1e-12).all() and (v[1:] >= v[:-1]).all()  # grows with the horizon


def test_a_coarser_pseudo_inverse_keeps_fewer_directions_and_only_widens_the_posterior():
    gp = GaussianProcess(32, 2, nu=2.0, ell=4.0)
    fine, coarse = (Conditional(gp, forecast_mask(32, 16), rtol=r) for r in (1e-13, 1e-6))
    assert coarse.rank < fine.rank == 16
    assert (coarse.variance() >= fine.variance() - 1e-12).all()
    assert (coarse.variance() > fine.variance() + 1e-9).any()


# ------------------------------------------------------------------------------------------------ the sampler
def test_score_fn_drives_the_sampler_over_whole_sequences():
    c = _framewise("interp-N6-d4-nu2")
    N, d = c.gp.N, c.gp.d
    x_obs = c.gp.sample(1, generator=torch.Generator().manual_seed(13))
    x_T = prior(16, N, d, generator=torch.Generator().manual_seed(14))
    other = torch.where(c.observed_entries, x_T + 5.0, x_T)  # the same start but at the observed entries
    fn = c.score_fn(x_obs, OU)
    a, b = (sample(fn, x, OU, steps=8, t0=1e-2, method="euler", progress=False) for x in (x_T, other))
    assert torch.equal(a[:, c.observed_entries], x_T[:, c.observed_entries])  # the ODE leaves them where they start
    assert torch.equal(a[:, c.missing_entries], b[:, c.missing_entries])  # the missing part never reads them
    out = c.keep_observed(a, x_obs)
    assert torch.equal(out[:, c.observed_entries], x_obs[:, c.observed_entries].expand(16, -1))
    assert torch.equal(out[:, c.missing_entries], a[:, c.missing_entries])


# ------------------------------------------------------------------------------------------------ bad input
GP = _gp(5, 2, 1.0, 2.0, seed=0)
COND = Conditional(GP, forecast_mask(5, 2))
X = torch.zeros(3, 5, 2, dtype=F64)
BIG = GaussianProcess(64, 33)  # N d = 2112 > MAX_DENSE
ENTRY = torch.zeros(64, 33, dtype=torch.bool)
ENTRY[0, 0] = True
BAD = {
    "gp": (lambda: Conditional("gp", forecast_mask(5, 2)), r"gp must be a gptheory.GaussianProcess, got str"),
    "all": (lambda: Conditional(GP, torch.ones(5, dtype=torch.bool)), r"observed must observe .* everything"),
    "none": (lambda: Conditional(GP, torch.zeros(5, 2, dtype=torch.bool)), r"observed must .* observing nothing"),
    "ragged": (lambda: Conditional(GP, [[True], [True, False]]), r"observed must be a boolean mask"),
    "ints": (
        lambda: Conditional(GP, torch.tensor([1, 1, 0, 0, 0])),
        r"observed must be a boolean mask .*got dtype torch.int64",
    ),
    "short": (lambda: Conditional(GP, torch.ones(4, dtype=torch.bool)), r"observed must have shape \(N,\) = \(5,\)"),
    "wide": (lambda: Conditional(GP, torch.ones(5, 3, dtype=torch.bool)), r"observed must have shape .* got \(5, 3\)"),
    "dense": (lambda: Conditional(BIG, ENTRY), rf"observed: an entry-wise .* up to N d = {MAX_DENSE}, got N d = 2112"),
    "rtol": (lambda: Conditional(GP, forecast_mask(5, 2), rtol=1.0), r"rtol must be a real number in \[0, 1\)"),
    "k=0": (lambda: forecast_mask(5, 0), r"k must be an integer in \[1, N - 1\] = \[1, 4\] .*got 0"),
    "k=N": (lambda: forecast_mask(5, 5), r"k must be an integer in \[1, N - 1\] = \[1, 4\] .*got 5"),
    "k float": (lambda: forecast_mask(5, 2.0), r"k must be an integer .*got 2.0"),
    "N=1": (lambda: forecast_mask(1, 1), r"N must be at least 2"),
    "N=0": (lambda: interpolation_mask(0, [0]), r"N must be a positive integer"),
    **{
        f"frames={f}": (
            lambda f=f: interpolation_mask(5, f),
            r"frames must be distinct integers in \[0, N - 1\] = \[0, 4\]",
        )
        for f in ([], [5], [-1], [1, 1], [0, 1, 2, 3, 4], [1.5])
    },
    "x_obs shape": (
        lambda: COND.mean(torch.zeros(3, 6, 2)),
        r"x_obs must have shape \(batch, N, d\) = \(batch, 5, 2\)",
    ),
    "x_obs nan": (lambda: COND.sample(torch.full((5, 2), math.nan)), r"x_obs must be finite"),
    "batch": (
        lambda: COND.score(X, 0.5, OU, torch.zeros(2, 5, 2)),
        r"x_obs must have batch 1 or 3 \(the batch of x_t\)",
    ),
    "t=0": (lambda: COND.score(X, 0.0, OU, X), r"t must be in \(0, 10\]"),
    "t>T": (lambda: COND.log_prob(X, 11.0, OU, X), r"t must be in \(0, 10\]"),
    "schedule": (lambda: COND.score(X, 0.5, "ou", X), r"schedule must be a gptheory Schedule"),
    "score_fn": (lambda: COND.score_fn(X, None), r"schedule must be a gptheory Schedule"),
    "t alone": (lambda: COND.condition_number(0.5), r"t and schedule must be given together"),
    "t many": (lambda: COND.condition_number(torch.tensor([0.5, 0.6]), OU), r"t must be a single time"),
    "keep": (lambda: COND.keep_observed(X, torch.zeros(2, 5, 2)), r"x_obs must have batch 1 or 3 \(the batch of x\)"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_input_raises_naming_the_parameter(case):
    call, match = BAD[case]
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("framewise", [True, False])
def test_the_law_at_t_is_the_posterior_pushed_through_the_forward_process(framewise):
    gp = GaussianProcess(6, 3, nu=1.3, ell=1.7, seed=11)  # a process no other test uses
    mask = (
        interpolation_mask(6, [0, 4])
        if framewise
        else torch.rand(6, 3, generator=torch.Generator().manual_seed(2)) < 0.5
    )
    cond, ou = Conditional(gp, mask), OUSchedule()
    at = cond.at(0.3, ou)
    a, s2 = math.exp(-0.15), 1 - math.exp(-0.3)
    x_obs = gp.sample(4, generator=torch.Generator().manual_seed(3))
    miss = cond.missing_entries
    assert torch.allclose(at.mean(x_obs)[:, miss], a * cond.mean(x_obs)[:, miss], atol=1e-12)
    eye = torch.eye(cond.n_missing, dtype=torch.float64)
    assert torch.allclose(at.covariance(), a**2 * cond.covariance() + s2 * eye, atol=1e-12)
    assert torch.allclose(at.variance()[miss], torch.diagonal(at.covariance()), atol=1e-12)
    assert torch.allclose(at.spectrum().flatten().sort().values, torch.linalg.eigvalsh(at.covariance()), atol=1e-10)
    assert at.condition_number() == pytest.approx(cond.condition_number(0.3, ou), rel=1e-9)
    # its draws are the observed entries as given and the diffused posterior elsewhere
    draws = at.sample(x_obs[:1].expand(40000, -1, -1), generator=torch.Generator().manual_seed(4))
    assert torch.equal(draws[:, ~miss], x_obs[:1].expand(40000, -1, -1)[:, ~miss])
    emp = torch.cov(draws[:, miss].T)
    assert (emp - at.covariance()).abs().max() < 6 * at.covariance().diagonal().max() / 40000**0.5
    with pytest.raises(ValueError, match="already at t=0.3"):
        at.at(0.1, ou)
    with pytest.raises(ValueError, match="has no score here"):
        at.score(x_obs, 0.5, ou, x_obs)
    with pytest.raises(ValueError, match=r"t must be a real number in \(0, 10\]"):
        cond.at(0.0, ou)
