"""Checks a student runs on an answer to one of the book's exercises.

    from gptheory.book.exercises import check
    check("ex-gp-ar1", lambda rho: ...)   # prints whether the answer is right, and why

Each check compares the answer with an independent computation (a numerical inverse, a spectral sum, a
root search), not with a stored number, and says what it compared. ``check(label, None)`` -- an answer
cell left empty -- prints what is asked for and returns ``None``, so a student notebook runs top to
bottom before any answer is written. The student notebooks and the student edition call the check in
the answer cell of every exercise listed in ``CHECKS``.

Adding a check: write ``check_<name>(answer) -> (ok, message)`` in :mod:`gptheory.book.answers` (the independent
computations), register it in ``CHECKS`` under the
exercise's label with a one-line description of the expected answer and a reference solution, and
``tests/test_exercises.py`` checks that it passes on the reference and fails on a wrong answer.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import answers


@dataclass(frozen=True)
class Check:
    """One exercise's check: ``verify(answer) -> (ok, message)``; ``asks`` says what the answer is."""

    label: str
    asks: str
    verify: Callable[[Any], tuple[bool, str]]
    reference: Callable[[], Any]  # a correct answer (the tests check that it passes)

    def answer_cell(self, variable: str = "answer", solution: str = "") -> str:
        """The code a student notebook puts in the exercise's answer cell: ``variable`` bound to ``None``, then checked.

        ``solution`` (code, for an assignment's solution cell) goes right after the binding, to bind the answer.
        """
        bind = f"{variable} = None  # {self.asks}\n" + (f"{solution}\n" if solution else "")
        return f"{bind}\nfrom gptheory.book.exercises import check\n\ncheck({self.label!r}, {variable})"


CHECKS: dict[str, Check] = {
    c.label: c
    for c in [
        Check(
            "ex-gp-ar1",
            "a function of rho: the off-diagonal entry of Gamma^{-1}",
            answers.check_ar1,
            lambda: lambda rho: -rho / (1 - rho**2),
        ),
        Check(
            "ex-gp-kappa",
            "a function of ell: the limit of kappa(Gamma) as N grows",
            answers.check_ou_kappa,
            lambda: lambda ell: ((1 + math.exp(-1 / ell)) / (1 - math.exp(-1 / ell))) ** 2,
        ),
        Check(
            "ex-score-condition",
            "a function (lam_min, lam_max, alpha, sigma): the condition number",
            answers.check_diffused_kappa,
            lambda: lambda lo, hi, a, s: (a**2 * hi + s**2) / (a**2 * lo + s**2),
        ),
        Check(
            "ex-gradient_descent-1",
            "a function of kappa: the contraction factor per step with eta*",
            answers.check_best_step,
            lambda: lambda kappa: (kappa - 1) / (kappa + 1),
        ),
        Check(
            "ex-truncation-1",
            "an integer: the smallest J the integral bound certifies",
            answers.check_integral_band,
            lambda: 37,
        ),
        Check(
            "ex-truncation-2",
            "a number: the largest ell with a diagonally dominant OU kernel",
            answers.check_dominance,
            lambda: 1 / math.log(3),
        ),
        Check(
            "ex-dit-learns-3",
            "a function (a, b): the expected time-time share at initialisation",
            answers.check_time_share,
            lambda: lambda a, b: b**2 / (a + b) ** 2,
        ),
        Check(
            "ex-sample-complexity-1",
            "a number: the largest t0 with KL(P || P_t0) <= 0.01 nats",
            answers.check_early_stop_t0,
            lambda: answers.reference_early_stop_t0(),
        ),
        Check(
            "ex-attention-learned-1",
            "a number: the slope of log(fitted ell) on log(ell) for the target maps themselves",
            answers.check_bandwidth_slope,
            lambda: 1.0,
        ),
        Check(
            "ex-imputation-1",
            "a function (N, k, ell): the (N - k, k) kriging weights of forecasting with the exponential kernel",
            answers.check_markov_weights,
            lambda: (
                lambda N, k, ell: np.array(
                    [[math.exp(-(h + 1) / ell) if j == k - 1 else 0.0 for j in range(k)] for h in range(N - k)]
                )
            ),  # fmt: skip
        ),
        Check(
            "ex-imputation-2",
            "a function (mu, sd, y): the CRPS of N(mu, sd^2) at y",
            answers.check_gaussian_crps,
            answers.reference_gaussian_crps,
        ),  # fmt: skip
        Check(
            "ex-imputation-3",
            "a function of q: the fewest draws with a central interval of level >= q",
            answers.check_min_draws,
            lambda: lambda q: math.ceil(2 / (1 - q) - 1 - 1e-9),
        ),  # fmt: skip
        Check(
            "ex-architecture-1",
            "an odd integer: the smallest kernel size of a one-level UNet1D that spans every gap of 32 frames",
            answers.check_unet_kernel,
            lambda: 5,
        ),
    ]
}


def verdict(label: str, answer: Any) -> tuple[bool | None, str]:
    """``(ok, message)`` for ``answer`` to the exercise ``label``; ``ok`` is None while ``answer`` is None."""
    if label not in CHECKS:
        raise KeyError(f"no check for exercise {label!r}; exercises with checks: {', '.join(CHECKS)}")
    c = CHECKS[label]
    if answer is None:
        return None, f"no answer yet.\n  Expected: {c.asks}."
    try:
        ok, message = c.verify(answer)
    except (TypeError, ValueError, ArithmeticError) as err:
        ok, message = False, f"the answer could not be checked: {err}"
    return ok, f"{'correct' if ok else 'not yet'} -- {message}"


def check(label: str, answer: Any) -> None:
    """Check ``answer`` to the exercise ``label`` and print whether it is right, and why.

    Prints what is asked while ``answer`` is None. Returns nothing, so the call can end a cell without
    leaving a value under it; :func:`verdict` returns the outcome.
    """
    print(f"{label}: {verdict(label, answer)[1]}")
