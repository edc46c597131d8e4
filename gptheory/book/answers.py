"""What the exercise checks compare a student's answer with: for each exercise an independent computation (a
numerical inverse, a spectral sum, a root search, a defining integral), never a stored number, and a message that
says what was compared. :mod:`gptheory.book.exercises` registers them under the exercises' labels.

Each ``check_<name>(answer) -> (ok, message)``; ``reference_*`` give reference solutions.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.special import gamma as gamma_fn
from scipy.special import gammaincc

from ..gp import kernel_matrix


def _function(answer: Any, what: str) -> Callable:
    if not callable(answer):
        raise TypeError(f"the answer should be {what} (a Python function), got {type(answer).__name__}")
    return answer


def _compare(name: str, points: list, yours: list[float], expected: list[float], rtol: float) -> tuple[bool, str]:
    for p, y, e in zip(points, yours, expected, strict=True):
        if not (np.isfinite(y) and abs(y - e) <= rtol * abs(e)):
            return False, f"at {name} = {p:g} your answer gives {y:.6g}, the check computes {e:.6g}"
    shown = ", ".join(f"{name}={p:g}: {e:.4g}" for p, e in zip(points, expected, strict=True))
    return True, f"matches to relative {rtol:g} ({shown})"


def check_ar1(answer: Any) -> tuple[bool, str]:
    f = _function(answer, "a function of rho giving the off-diagonal entry of Gamma^{-1}")
    ells = [1.0, 3.0, 8.0]
    expected = [float(np.linalg.inv(kernel_matrix(12, 1.0, ell).double().numpy())[4, 5]) for ell in ells]
    return _compare(
        "rho", [math.exp(-1 / ell) for ell in ells], [float(f(math.exp(-1 / e))) for e in ells], expected, 1e-6
    )


def _ou_spectral_density(omega: float, ell: float, hmax: int = 20_000) -> float:
    h = np.arange(-hmax, hmax + 1)
    return float(np.sum(np.exp(-np.abs(h) / ell) * np.cos(omega * h)))


def check_ou_kappa(answer: Any) -> tuple[bool, str]:
    f = _function(answer, "a function of ell giving the large-N limit of kappa(Gamma)")
    ells = [2.0, 4.0, 16.0]
    expected = [_ou_spectral_density(0.0, ell) / _ou_spectral_density(math.pi, ell) for ell in ells]
    ok, msg = _compare("ell", ells, [float(f(ell)) for ell in ells], expected, 1e-6)
    return ok, msg + ("; that is S(0)/S(pi), which grows like 4 ell^2" if ok else "")


def check_best_step(answer: Any) -> tuple[bool, str]:
    f = _function(answer, "a function of kappa giving the contraction factor per step with the best constant step")
    kappas = [2.0, 10.0, 1000.0]
    expected = []
    for kappa in kappas:  # the spectral radius of I - eta M over [1, kappa], minimised over eta by a grid search
        eta = np.linspace(1e-4, 2 / kappa, 200_001)
        expected.append(float(np.min(np.maximum(np.abs(1 - eta), np.abs(1 - eta * kappa)))))
    return _compare("kappa", kappas, [float(f(k)) for k in kappas], expected, 1e-3)


def check_diffused_kappa(answer: Any) -> tuple[bool, str]:
    f = _function(answer, "a function (lam_min, lam_max, alpha, sigma) giving kappa(alpha^2 Gamma⊗Sigma + sigma^2 I)")
    rng = np.random.default_rng(0)
    cases, yours, expected = [], [], []
    for k in range(4):
        lam = np.sort(rng.uniform(1e-3, 5.0, size=6))
        alpha, sigma = math.exp(-0.3 * (k + 1)), math.sqrt(1 - math.exp(-0.6 * (k + 1)))
        ev = np.linalg.eigvalsh(np.diag(alpha**2 * lam) + sigma**2 * np.eye(6))
        cases.append(k)
        yours.append(float(f(lam[0], lam[-1], alpha, sigma)))
        expected.append(float(ev.max() / ev.min()))
    return _compare("case", cases, yours, expected, 1e-9)


def _tail_bound(J: int, nu: float, ell: float) -> float:
    x = (J / ell) ** nu
    return 2 * (math.exp(-x) + ell / nu * gammaincc(1 / nu, x) * gamma_fn(1 / nu))


def check_integral_band(answer: Any) -> tuple[bool, str]:
    expected = next(J for J in range(1, 100_000) if _tail_bound(J, 1.0, 4.0) <= 1e-3)
    if not isinstance(answer, (int, np.integer)) or isinstance(answer, bool):
        raise TypeError(f"the answer should be a whole number of frames J, got {answer!r}")
    if answer == expected:
        return True, f"J = {expected} is the smallest band with bound {_tail_bound(expected, 1.0, 4.0):.3g} <= 1e-3"
    side = "large" if answer > expected else "small"
    return False, f"J = {answer} is too {side}: the bound at J is {_tail_bound(int(answer), 1.0, 4.0):.3g}"


def check_dominance(answer: Any) -> tuple[bool, str]:
    value = float(answer)
    # largest ell with 2 sum_{h>=1} rho^h <= 1, by bisection on the numerical row sum
    lo, hi = 0.1, 5.0
    for _ in range(100):
        mid = (lo + hi) / 2
        row = 2 * sum(math.exp(-h / mid) for h in range(1, 5000))
        lo, hi = (mid, hi) if row <= 1 else (lo, mid)
    ok = abs(value - lo) <= 1e-6 * lo
    return ok, (
        f"ell = {lo:.6f}: there the off-diagonal row sum reaches 1"
        if ok
        else f"your ell = {value:.6g}, the row sum reaches 1 at ell = {lo:.6f}"
    )


def check_time_share(answer: Any) -> tuple[bool, str]:
    f = _function(answer, "a function (a, b) giving the expected time-time share of W_q^T W_k")
    rng = np.random.default_rng(0)
    widths = [(8, 8), (24, 8), (4, 28)]
    expected = []
    for a, b in widths:  # Monte Carlo over i.i.d. Gaussian weights, then the share of the squared norm
        shares = []
        for _ in range(400):
            Wq, Wk = rng.standard_normal((a + b, a + b)), rng.standard_normal((a + b, a + b))
            M = Wq.T @ Wk
            shares.append(np.sum(M[a:, a:] ** 2) / np.sum(M**2))
        expected.append(float(np.mean(shares)))
    return _compare("(a, b) case", list(range(len(widths))), [float(f(a, b)) for a, b in widths], expected, 0.05)


def check_early_stop_t0(answer: Any) -> tuple[bool, str]:
    import torch

    from ..gp import GaussianProcess
    from ..metrics import gaussian_kl
    from ..schedules import DDPMSchedule

    t = float(answer)
    gp, sched = GaussianProcess(16, 4, nu=1.0, ell=4.0, seed=0), DDPMSchedule()
    C = gp.covariance()
    zero, eye = torch.zeros(C.shape[0], dtype=C.dtype), torch.eye(C.shape[0], dtype=C.dtype)

    def kl(t0: float) -> float:  # dense, by Cholesky: independent of the eigenbasis formula of the chapter
        a, s = sched.alpha(t0), sched.sigma(t0)
        return gaussian_kl(zero, C, zero, a**2 * C + s**2 * eye)

    lo, hi = 1e-8, 1.0
    for _ in range(50):
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if kl(mid) <= 0.01 else (lo, mid)
    if abs(t - lo) <= 0.02 * lo:
        return True, f"KL(P || P_t0) = {kl(t):.4g} nats at your t0 = {t:.4g}; the threshold is {lo:.4g}"
    return False, f"at t0 = {t:.4g} the dense KL is {kl(t):.4g} nats; the largest t0 with KL <= 0.01 is {lo:.4g}"


def check_bandwidth_slope(answer: Any) -> tuple[bool, str]:
    import torch
    from scipy.optimize import minimize_scalar

    from ..attention import kernel_attention

    ells = np.array([1.0, 2.0, 4.0, 8.0])
    fits = []
    for ell in ells:  # a continuous fit, independent of the grid search of analysis.fitted_bandwidth
        target = kernel_attention(kernel_matrix(32, 2.0, float(ell)))

        def misfit(log_e: float, target: torch.Tensor = target) -> float:
            return float((kernel_attention(kernel_matrix(32, 2.0, math.exp(log_e))) - target).norm())

        fits.append(math.exp(minimize_scalar(misfit, bounds=(math.log(0.1), math.log(128)), method="bounded").x))
    expected = float(np.polyfit(np.log(ells), np.log(fits), 1)[0])
    y = float(answer)
    if abs(y - expected) <= 0.02:
        return True, f"slope {y:.4f}; a continuous fit of the same targets gives {expected:.4f}"
    return False, f"your slope is {y:.4g}; fitting the target maps themselves gives {expected:.4f}"


def _probed_max_gap(kernel_size: int, N: int = 128) -> int:
    """The largest gap ``|i - j|`` over which output frame ``i`` of a one-level :class:`gptheory.unet.UNet1D` depends
    on input frame ``j``, found with gradients (random non-zero weights; rows in the middle of a long sequence)."""
    import torch

    from ..unet import UNet1D

    m = UNet1D(N, 1, channels=8, levels=1, kernel_size=kernel_size).double()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(0.3 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    x = torch.randn(1, N, 1, dtype=torch.float64, requires_grad=True)
    out = m(x, 0.5, raw=True)[0, :, 0]
    gap = 0
    for i in (N // 2, N // 2 + 1):  # both parities of the up-sampling
        (grad,) = torch.autograd.grad(out[i], x, retain_graph=True)
        gap = max(gap, max(abs(j - i) for j in grad[0, :, 0].nonzero().flatten().tolist()))
    return gap


def check_unet_kernel(answer: Any) -> tuple[bool, str]:
    k = int(answer)
    if k != answer or k < 1 or k % 2 == 0:
        return False, f"the kernel size must be an odd positive integer, got {answer!r}"
    reach = _probed_max_gap(k)
    if reach < 31:
        return False, f"with kernel size {k} the network spans gaps up to {reach} only (a gradient probe); 31 needed"
    if k > 1 and _probed_max_gap(k - 2) >= 31:
        return False, f"kernel size {k} spans gaps up to {reach}, but {k - 2} already spans {_probed_max_gap(k - 2)}"
    return True, f"kernel size {k} spans gaps up to {reach} (a gradient probe), {k - 2} only {_probed_max_gap(k - 2)}"


def reference_early_stop_t0() -> float:
    """The threshold from the chapter's eigenbasis formula (:func:`gptheory.early_stopping.early_stopping_gap`)."""
    import torch

    from ..early_stopping import early_stopping_gap
    from ..gp import GaussianProcess
    from ..schedules import DDPMSchedule

    gp, sched = GaussianProcess(16, 4, nu=1.0, ell=4.0, seed=0), DDPMSchedule()
    lo, hi = 1e-8, 1.0
    for _ in range(50):
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if early_stopping_gap(gp, torch.tensor([mid]), sched).kl[0] <= 0.01 else (lo, mid)
    return lo


def check_markov_weights(answer: Any) -> tuple[bool, str]:
    f = _function(answer, "a function (N, k, ell) giving the (N - k, k) forecasting weights")
    for N, k, ell in ((8, 3, 2.0), (12, 5, 0.7), (20, 1, 6.0)):
        G = kernel_matrix(N, 1.0, ell).double().numpy()  # solved numerically, independent of the closed form
        want = np.linalg.solve(G[:k, :k], G[:k, k:]).T
        got = np.asarray(f(N, k, ell), dtype=float)
        if got.shape != want.shape or not np.allclose(got, want, atol=1e-9):
            return (
                False,
                f"at N={N}, k={k}, ell={ell:g} your weights differ from Gamma_mo Gamma_oo^-1 solved numerically",
            )
    return True, "matches Gamma_mo Gamma_oo^-1 at three (N, k, ell): only the last observed frame carries weight"


def check_gaussian_crps(answer: Any) -> tuple[bool, str]:
    f = _function(answer, "a function (mu, sd, y) giving the CRPS of N(mu, sd^2) at y")
    from scipy import integrate, stats

    cases = [(0.0, 1.0, 0.3), (2.0, 0.5, 0.1), (-1.0, 3.0, 4.0)]
    for mu, sd, y in cases:  # the definition: the integral of (F(x) - 1{x >= y})^2 over x
        lo, hi = min(mu - 12 * sd, y), max(mu + 12 * sd, y)
        below, above = stats.norm(mu, sd).cdf, stats.norm(mu, sd).sf
        want = integrate.quad(lambda x, F=below: F(x) ** 2, lo, y, points=[mu], limit=200)[0]
        want += integrate.quad(lambda x, S=above: S(x) ** 2, y, hi, points=[mu], limit=200)[0]
        got = float(f(mu, sd, y))
        if not abs(got - want) <= 1e-7 * max(1.0, want):
            return False, f"at mu={mu:g}, sd={sd:g}, y={y:g} your CRPS is {got:.6g}, the integral gives {want:.6g}"
    return True, "matches the defining integral at three points"


def check_min_draws(answer: Any) -> tuple[bool, str]:
    f = _function(answer, "a function of the level q giving the fewest draws whose central interval has level >= q")
    for q in (0.5, 0.9, 0.95, 0.99):
        n = next(n for n in range(1, 10_000) if (n + 1 - 2) / (n + 1) >= q - 1e-12)  # i = 1: the widest interval
        if int(f(q)) != n:
            return False, f"at q={q:g} your answer is {f(q)}, the fewest draws is {n}"
    return True, "matches at q = 0.5, 0.9, 0.95, 0.99: n + 1 >= 2 / (1 - q)"


def reference_gaussian_crps() -> Callable[[float, float, float], float]:
    """The package's closed form (:func:`gptheory.posterior.crps_gaussian`) as a function of three floats."""
    import torch

    from ..posterior import crps_gaussian

    return lambda mu, sd, y: float(crps_gaussian(*(torch.tensor(v, dtype=torch.float64) for v in (mu, sd, y))))
