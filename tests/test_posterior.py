"""The metrics of conditional samples against the exact posterior (gptheory.posterior): exact posterior draws are a
perfect generator, so each metric of theirs sits at its floor within its Monte Carlo error, their coverage is nominal
and their PIT uniform; a generator shifted by one posterior sd or with twice the variance is detected by each metric;
the CRPS estimators agree with brute force, with the closed form and with a numerical integral, and are proper.

Every tolerance is a number of standard errors (4) of a quantity that is an average over independent sequences."""

from __future__ import annotations

import math
from functools import cache

import pytest
import scipy.integrate
import scipy.stats
import torch

from gptheory import GaussianProcess
from gptheory.conditional import Conditional
from gptheory.masks import forecast_mask, interpolation_mask
from gptheory.metrics import gaussian_w2
from gptheory.posterior import (
    LEVELS,
    coverage,
    crps,
    crps_gaussian,
    crps_samples,
    ellipsoid_coverage,
    gaussian_w2_to_posterior,
    mean_error,
    normalised_crps,
    pit,
    posterior_draws,
)

F64 = torch.float64
SE = 4  # standard errors allowed


def _gp(N: int, d: int, nu: float, ell: float, seed: int) -> GaussianProcess:
    mu = torch.randn(N, d, generator=torch.Generator().manual_seed(200 + seed), dtype=F64)
    return GaussianProcess(N, d, nu=nu, ell=ell, mu=mu, seed=seed)


def _entrywise() -> Conditional:
    mask = torch.rand(6, 3, generator=torch.Generator().manual_seed(5)) < 0.5
    c = Conditional(_gp(6, 3, 1.0, 2.0, seed=3), mask)
    assert not c.framewise
    return c


# a frame-wise forecast, a frame-wise interpolation, an entry-wise mask; N d <= 60
CASES = {
    "forecast-N7-d3": lambda: Conditional(_gp(7, 3, 1.0, 2.5, seed=1), forecast_mask(7, 3)),
    "interp-N9-d2": lambda: Conditional(_gp(9, 2, 1.5, 2.0, seed=2), interpolation_mask(9, [0, 4, 8])),
    "entrywise-N6-d3": _entrywise,
}
MOMENTS = (60, 200)  # (sequences, draws each): 12000 draws, plus the W2 floor's 32 x 200
CALIBRATION = (500, 39)  # 19500 draws; at n = 39 the order-statistic intervals are exactly 0.5, 0.9, 0.95
TRUTHS = 10000  # truths for the posterior's closed forms (no draws)


@cache
def _case(name: str) -> Conditional:
    return CASES[name]()


@cache
def _data(name: str, sizes: tuple[int, int], seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Truths drawn from the prior and ``n`` exact posterior draws given each one's observed part: ``(x, truth)``."""
    c, (B, n) = _case(name), sizes
    g = torch.Generator().manual_seed(seed)
    truth = c.gp.sample(B, generator=g)
    return posterior_draws(c, truth, n, generator=g), truth


def _generator(name: str, sizes: tuple[int, int], bias: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Samples of a perfect generator (``exact``), of one shifted by one posterior sd in every missing coordinate
    (``shifted``), or of one with twice the posterior variance (``inflated``), and their truths."""
    c = _case(name)
    x, truth = _data(name, sizes, seed=sum(map(ord, name)) + sizes[0])
    m, sd = c.mean(truth), c.variance().sqrt()  # sd is 0 at the observed entries: they stay
    return {"exact": x, "shifted": x + sd, "inflated": m + math.sqrt(2) * (x - m)}[bias], truth


def _binomial_se(q: float, n: int) -> float:
    return math.sqrt(q * (1 - q) / n)


def _one_per_sequence(v: torch.Tensor) -> torch.Tensor:
    """Coordinate ``b mod p`` of sequence ``b``: independent values (coordinates of one sequence are not)."""
    return v[torch.arange(v.shape[0]), torch.arange(v.shape[0]) % v.shape[1]]


# ------------------------------------------------------------------------------------------------ a perfect generator
def test_posterior_draws_keep_the_observations_and_follow_the_seed():
    c = _case("interp-N9-d2")
    truth = c.gp.sample(3, generator=torch.Generator().manual_seed(0))
    x = posterior_draws(c, truth, 5, generator=torch.Generator().manual_seed(1))
    assert x.shape == (5, 3, 9, 2) and x.dtype == F64
    assert torch.equal(x[:, :, c.observed_entries], truth[:, c.observed_entries].expand(5, -1, -1))
    assert torch.equal(x, posterior_draws(c, truth, 5, generator=torch.Generator().manual_seed(1)))
    assert posterior_draws(c, truth[0], 4).shape == (4, 1, 9, 2)  # an (N, d) sequence is a batch of one


@pytest.mark.parametrize("name", CASES)
def test_mean_error_of_exact_draws_sits_at_its_closed_form_floor(name):
    """n |xbar - m_c|^2 = sum lam_i z_i^2 exactly: value^2 averages B such sums (mean floor^2, sd 2 floor sd)."""
    c, n = _case(name), MOMENTS[1]
    x, truth = _generator(name, MOMENTS, "exact")
    r = mean_error(x, c, truth)
    assert r.floor == pytest.approx(math.sqrt(torch.trace(c.covariance()).item() / (n * c.n_missing)), rel=1e-12)
    assert r.floor_se == 0
    assert abs(r.value**2 - r.floor**2) <= SE * 2 * r.floor * r.sd, r


@pytest.mark.parametrize("name", CASES)
def test_w2_of_exact_draws_sits_at_its_monte_carlo_floor(name):
    c = _case(name)
    x, truth = _generator(name, MOMENTS, "exact")
    r = gaussian_w2_to_posterior(x, c, truth, reps=32, seed=4)
    assert 0 < r.floor and 0 < r.sd < r.floor_se  # 60 sequences measured, 32 floor draws
    assert abs(r.value - r.floor) <= SE * math.hypot(r.sd, r.floor_se), r
    # seeded: the same seed gives the same floor; an explicit generator replaces the stream
    assert gaussian_w2_to_posterior(x, c, truth, reps=32, seed=4) == r
    again = gaussian_w2_to_posterior(x, c, truth, reps=32, generator=torch.Generator().manual_seed(9))
    assert again.value == r.value and again.floor != r.floor


def test_the_batched_w2_is_the_packages_gaussian_w2_per_sequence():
    c = _case("entrywise-N6-d3")
    x, truth = _generator("entrywise-N6-d3", MOMENTS, "inflated")
    x, truth = x[:, :3], truth[:3]
    value = gaussian_w2_to_posterior(x, c, truth, reps=2).value
    xm, miss = x[:, :, c.missing_entries], c.missing_entries
    each = [
        gaussian_w2(xm[:, b].mean(0), torch.cov(xm[:, b].T), c.mean(truth[b])[0][miss], c.covariance())
        for b in range(3)
    ]
    assert value == pytest.approx(sum(each) / 3, rel=1e-10)


@pytest.mark.parametrize("name", CASES)
def test_coverage_of_exact_draws_and_of_the_posterior_is_nominal(name):
    """A coordinate's hits over independent sequences are Bernoulli(q); the share over coordinates varies no more
    than its most variable coordinate, so 4 binomial standard errors bound it."""
    c, (B, n) = _case(name), CALIBRATION
    x, truth = _generator(name, CALIBRATION, "exact")
    r = coverage(x, c, truth, LEVELS)
    assert r.levels == LEVELS and r.samples.shape == r.posterior.shape == (B, 3)
    assert torch.allclose(r.expected, torch.tensor(LEVELS, dtype=F64), atol=1e-12)  # (n + 1)(1 - q) / 2 integer
    for k, q in enumerate(LEVELS):
        assert abs(r.samples[:, k].mean().item() - q) <= SE * _binomial_se(q, B), (q, r.samples.mean(0))
        assert abs(r.posterior[:, k].mean().item() - q) <= SE * _binomial_se(q, B)
    # the posterior's closed form on many truths (the samples argument only has to be valid here)
    many = c.gp.sample(TRUTHS, generator=torch.Generator().manual_seed(21))
    post = coverage(many.expand(n, -1, -1, -1), c, many, LEVELS).posterior.mean(0)
    for k, q in enumerate(LEVELS):
        assert abs(post[k].item() - q) <= SE * _binomial_se(q, TRUTHS), (q, post)
    # at other counts the expected coverage is the exchangeable rank's, (n + 1 - 2 i) / (n + 1), at least q
    assert coverage(x[:20], c, truth, [0.9]).expected.item() == pytest.approx(19 / 21)


@pytest.mark.parametrize("name", CASES)
def test_ellipsoid_coverage_of_exact_draws_and_of_the_posterior_is_nominal(name):
    """One hit per sequence: binomial. The samples' Hotelling ellipsoid is exact at n = 39 > p."""
    c, B = _case(name), CALIBRATION[0]
    x, truth = _generator(name, CALIBRATION, "exact")
    r = ellipsoid_coverage(x, c, truth, LEVELS)
    assert torch.equal(r.expected, torch.tensor(LEVELS, dtype=F64))
    many = c.gp.sample(TRUTHS, generator=torch.Generator().manual_seed(22))
    post = ellipsoid_coverage(many.expand(c.n_missing + 2, -1, -1, -1), c, many, LEVELS).posterior.mean(0)
    for k, q in enumerate(LEVELS):
        assert abs(r.samples[:, k].mean().item() - q) <= SE * _binomial_se(q, B), (q, r.samples.mean(0))
        assert abs(post[k].item() - q) <= SE * _binomial_se(q, TRUTHS), (q, post)


def test_ellipsoids_of_an_ill_conditioned_posterior_cover_at_their_level():
    c = Conditional(GaussianProcess(32, 1, nu=2.0, ell=4.0), forecast_mask(32, 16))  # kappa(C_c) ~ 1e13
    assert c.condition_number() > 1e12
    g = torch.Generator().manual_seed(23)
    truth = c.gp.sample(2000, generator=g)
    x = posterior_draws(c, truth[:200], 40, generator=g)
    samples = ellipsoid_coverage(x, c, truth[:200], [0.9]).samples.mean().item()
    post = ellipsoid_coverage(truth.expand(17, -1, -1, -1), c, truth, [0.9]).posterior.mean().item()
    assert abs(samples - 0.9) <= SE * _binomial_se(0.9, 200)
    assert abs(post - 0.9) <= SE * _binomial_se(0.9, 2000)


@pytest.mark.parametrize("name", CASES)
def test_pit_of_exact_draws_and_of_the_posterior_is_uniform(name):
    """One coordinate per sequence, so the values are independent: the samples' ranks n * PIT are uniform on
    0..n (40 values, 10 bins of 4: a chi-square test), the posterior's PIT on [0, 1] (Kolmogorov-Smirnov)."""
    c, (B, n) = _case(name), CALIBRATION
    x, truth = _generator(name, CALIBRATION, "exact")
    r = pit(x, c, truth)
    assert r.samples.shape == r.posterior.shape == (B, c.n_missing)
    ranks = (_one_per_sequence(r.samples) * n).round().long()
    counts = torch.bincount(ranks // 4, minlength=10)
    assert scipy.stats.chisquare(counts.numpy()).pvalue > 1e-3, counts
    many = c.gp.sample(TRUTHS, generator=torch.Generator().manual_seed(24))
    post = _one_per_sequence(pit(many[None], c, many).posterior)
    assert scipy.stats.kstest(post.numpy(), "uniform").pvalue > 1e-3


# ------------------------------------------------------------------------------------------------ CRPS
def test_crps_samples_is_the_brute_force_energy_form_over_distinct_pairs():
    g = torch.Generator().manual_seed(30)
    x, y = torch.randn(37, 5, 4, generator=g, dtype=F64), torch.randn(5, 4, generator=g, dtype=F64)
    x[3] = x[7]  # ties change nothing
    n = x.shape[0]
    pairs = (x[:, None] - x[None]).abs().sum((0, 1)) / (n * (n - 1))
    brute = (x - y).abs().mean(0) - 0.5 * pairs
    assert (crps_samples(x, y) - brute).abs().max().item() <= 1e-12


def test_crps_gaussian_is_the_integral_of_the_squared_cdf_difference():
    for mean, sd, y in ((0.3, 1.7, -1.2), (-2.0, 0.4, -1.9), (1.0, 2.5, 6.0)):

        def f(z, mean=mean, sd=sd, y=y):
            return (scipy.stats.norm.cdf(z, mean, sd) - (z >= y)) ** 2

        integral = scipy.integrate.quad(f, -math.inf, y)[0] + scipy.integrate.quad(f, y, math.inf)[0]
        assert crps_gaussian(torch.tensor(mean), torch.tensor(sd), torch.tensor(y)).item() == pytest.approx(integral)
    assert crps_gaussian(torch.tensor(1.0), torch.tensor(0.0), torch.tensor(-0.5)).item() == 1.5  # a point mass


@pytest.mark.parametrize("name", CASES)
def test_crps_of_many_exact_draws_is_the_posteriors_closed_form(name):
    """The estimator is a U-statistic whose first-order term averages |X - y| - E'|X - X'|, a difference of two
    1-Lipschitz functions of X: its sd is at most 2 sd / sqrt(n) (plus O(1/n))."""
    c, n = _case(name), 20000
    g = torch.Generator().manual_seed(31)
    truth = c.gp.sample(1, generator=g)
    r = crps(posterior_draws(c, truth, n, generator=g), c, truth)
    sd = c.variance()[c.missing_entries].sqrt()
    assert ((r.samples - r.posterior).abs() <= SE * 2 * sd / math.sqrt(n)).all()


def _expected_crps(shift: float, scale: float) -> float:
    """E CRPS(N(shift, scale^2), Y), Y ~ N(0, 1): E|N(shift, 1 + scale^2)| - scale / sqrt(pi)."""
    v = math.sqrt(1 + scale**2)
    a = shift / v
    return v * (2 * scipy.stats.norm.pdf(a) + a * (2 * scipy.stats.norm.cdf(a) - 1)) - scale / math.sqrt(math.pi)


@pytest.mark.parametrize("name", CASES)
def test_crps_is_proper_a_shifted_or_overdispersed_predictive_scores_worse(name):
    """On truths that follow the posterior, the posterior scores best. Sequences are independent, so the mean over
    them of each sequence's mean score difference has the standard error of B independent values; the difference is
    both significant (> 4 SE) and the exact expectation (within 4 SE). The posterior's own mean is sd / sqrt(pi)."""
    c = _case(name)
    truth = c.gp.sample(CALIBRATION[0], generator=torch.Generator().manual_seed(32))
    m, sd = c.mean(truth)[:, c.missing_entries], c.variance()[c.missing_entries].sqrt()
    y = truth[:, c.missing_entries]
    best = crps_gaussian(m, sd, y)
    best_se = best.mean(1).std().item() / math.sqrt(y.shape[0])
    assert abs(best.mean().item() - sd.mean().item() / math.sqrt(math.pi)) <= SE * best_se
    for shift, scale in ((1.0, 1.0), (0.0, math.sqrt(2)), (0.0, 1 / math.sqrt(2))):
        diff = (crps_gaussian(m + shift * sd, scale * sd, y) - best).mean(1)  # (B,)
        se = diff.std().item() / math.sqrt(diff.numel())
        exact = (_expected_crps(shift, scale) - _expected_crps(0.0, 1.0)) * sd.mean().item()
        assert diff.mean().item() > SE * se, (shift, scale, diff.mean().item(), se)
        assert abs(diff.mean().item() - exact) <= SE * se, (shift, scale, diff.mean().item(), exact, se)


def test_normalised_crps_moves_with_an_offset_the_crps_does_not_see():
    c = _case("forecast-N7-d3")
    x, truth = _generator("forecast-N7-d3", MOMENTS, "exact")
    r = crps(x, c, truth)
    y = truth[:, c.missing_entries]
    assert normalised_crps(r.samples, c, truth) == pytest.approx(r.samples.sum().item() / y.abs().sum().item())
    gp = c.gp
    offset = Conditional(GaussianProcess(gp.N, gp.d, nu=gp.nu, ell=gp.ell, mu=gp.mu + 10, Sigma=gp.Sigma), c.observed)
    moved = crps(x + 10, offset, truth + 10)
    assert torch.allclose(moved.samples, r.samples, atol=1e-10) and torch.allclose(moved.posterior, r.posterior)
    assert normalised_crps(moved.samples, offset, truth + 10) < normalised_crps(r.samples, c, truth) / 3


# ------------------------------------------------------------------------------------------------ biased generators
@pytest.mark.parametrize("bias", ["shifted", "inflated"])
@pytest.mark.parametrize("name", CASES)
def test_a_biased_generator_is_detected_by_every_metric(name, bias):
    """Each metric falls outside the band a perfect generator stays in (the tests above): 4 of its standard errors."""
    c = _case(name)
    x, truth = _generator(name, MOMENTS, bias)
    r = mean_error(x, c, truth)
    assert r.value**2 - r.floor**2 > SE * 2 * r.floor * r.sd, r
    r = gaussian_w2_to_posterior(x, c, truth, reps=32)
    assert r.value - r.floor > SE * math.hypot(r.sd, r.floor_se), r
    x, truth = _generator(name, CALIBRATION, bias)
    B = truth.shape[0]
    cov, ell = coverage(x, c, truth, [0.5]), ellipsoid_coverage(x, c, truth, [0.5])
    assert abs(cov.samples.mean().item() - 0.5) > SE * _binomial_se(0.5, B), cov.samples.mean()
    assert abs(ell.samples.mean().item() - 0.5) > SE * _binomial_se(0.5, B), ell.samples.mean()
    s = crps(x, c, truth)
    diff = (s.samples - s.posterior).mean(1)
    assert diff.mean().item() > SE * diff.std().item() / math.sqrt(B), diff.mean()
    ranks = (_one_per_sequence(pit(x, c, truth).samples) * x.shape[0]).round().long()
    assert scipy.stats.chisquare(torch.bincount(ranks // 4, minlength=10).numpy()).pvalue < 1e-3


# ------------------------------------------------------------------------------------------------ bad input
C = CASES["forecast-N7-d3"]()
X = torch.zeros(40, 2, 7, 3, dtype=F64)
T = torch.zeros(2, 7, 3, dtype=F64)
BAD = {
    "cond": (lambda: mean_error(X, "cond", T), r"cond must be a gptheory.conditional.Conditional, got str"),
    "x dims": (
        lambda: mean_error(X[0], C, T),
        r"x must have shape \(n_samples, batch, N, d\) = .*7, 3\) with batch >= 1, got \(2, 7, 3\)",
    ),
    "x N": (lambda: coverage(torch.zeros(40, 2, 6, 3), C, T), r"x must have shape .* got \(40, 2, 6, 3\)"),
    "x batch 0": (lambda: pit(X[:, :0], C, T[:0]), r"x must have shape .*with batch >= 1"),
    "x nan": (lambda: crps(torch.full_like(X, math.nan), C, T), r"x must be finite"),
    "x one draw": (lambda: gaussian_w2_to_posterior(X[:1], C, T), r"x must hold n_samples >= 2 .*got n_samples=1"),
    "crps one draw": (lambda: crps(X[:1], C, T), r"x must hold n_samples >= 2"),
    "x_obs batch": (lambda: mean_error(X, C, T[:1]), r"x_obs must have shape \(batch, N, d\) = \(2, 7, 3\)"),
    "truth shape": (lambda: pit(X, C, torch.zeros(2, 7, 2)), r"truth must have shape .* got \(2, 7, 2\)"),
    "levels 1": (lambda: coverage(X, C, T, [0.5, 1.0]), r"levels must be a real number in \(0, 1\), got 1.0"),
    "levels empty": (lambda: coverage(X, C, T, []), r"levels must be a non-empty sequence"),
    "levels scalar": (lambda: ellipsoid_coverage(X, C, T, 0.9), r"levels must be a non-empty sequence"),
    "levels n": (lambda: coverage(X[:20], C, T, [0.95]), r"levels: a central 0.95 .*n_samples >= 39, got n_samples=20"),
    "ellipsoid n": (lambda: ellipsoid_coverage(X[:12], C, T), r"x must hold n_samples > 12 \(the rank of C_c\)"),
    "reps": (lambda: gaussian_w2_to_posterior(X, C, T, reps=1), r"reps must be at least 2"),
    "seed": (lambda: gaussian_w2_to_posterior(X, C, T, seed=-1), r"seed must be a non-negative integer"),
    "generator": (lambda: gaussian_w2_to_posterior(X, C, T, generator=3), r"generator must be a torch.Generator"),
    "n_samples": (lambda: posterior_draws(C, T, 0), r"n_samples must be a positive integer"),
    "sd": (lambda: crps_gaussian(0.0, torch.tensor([1.0, -0.5]), 0.0), r"sd must be >= 0 .*minimum of -0.5"),
    "broadcast": (lambda: crps_gaussian(torch.zeros(3), 1.0, torch.zeros(4)), r"mean, sd and y must broadcast"),
    "samples shape": (
        lambda: crps_samples(torch.zeros(5, 3), torch.zeros(4)),
        r"x must have shape \(n_samples, \*y.shape\) = \(n_samples, 4\)",
    ),
    "samples one": (lambda: crps_samples(torch.zeros(1, 4), torch.zeros(4)), r"with n_samples >= 2, got \(1, 4\)"),
    "scores": (lambda: normalised_crps(torch.zeros(2, 5), C, T), r"scores must have shape \(batch, n_missing\)"),
    "zero truth": (lambda: normalised_crps(torch.ones(2, 12), C, T), r"truth must not be zero at every missing"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_input_raises_naming_the_parameter(case):
    call, match = BAD[case]
    with pytest.raises(ValueError, match=match):
        call()
