"""The student checks: right on the reference solutions, wrong on typical mistakes, quiet on empty answers."""

from __future__ import annotations

import math

import pytest

from gptheory.book import answers
from gptheory.book.exercises import CHECKS, check, verdict

WRONG = {
    "ex-gp-ar1": lambda rho: -rho,  # forgot the 1 / (1 - rho^2)
    "ex-gp-kappa": lambda ell: 4 * ell,  # the linear growth the chapter once claimed
    "ex-score-condition": lambda lo, hi, a, s: hi / lo,  # the condition number without the noise
    "ex-gradient_descent-1": lambda kappa: 1 - 1 / kappa,  # the rate of eta = 1/L, not of the best step
    "ex-truncation-1": 36,  # one frame short
    "ex-truncation-2": 1 / math.log(2),  # the PSD boundary of the J = 2 band, not diagonal dominance
    "ex-dit-learns-3": lambda a, b: b / (a + b),  # the share of widths, not of squared weights
    "ex-sample-complexity-1": 3.76e-4,  # the threshold of the lemma-form bound, not of the exact KL
    "ex-attention-learned-1": 0.0,  # a width fixed by the position code, not the perfect learner's slope
    "ex-architecture-1": 3,  # the default kernel: its one-level network reaches only 21 frames
    "ex-imputation-1": lambda N, k, ell: [[math.exp(-(h + 1) / ell)] * k for h in range(N - k)],  # every frame
    "ex-imputation-2": lambda mu, sd, y: abs(y - mu),  # the absolute error: the CRPS of a point forecast
    "ex-imputation-3": lambda q: math.ceil(1 / (1 - q)),  # one tail counted, not two
}


def test_every_check_has_a_wrong_answer_here():
    assert set(WRONG) == set(CHECKS)


@pytest.mark.parametrize("label", sorted(CHECKS))
def test_check_accepts_the_reference_solution(label, capsys):
    assert verdict(label, CHECKS[label].reference())[0] is True
    check(label, CHECKS[label].reference())
    assert f"{label}: correct" in capsys.readouterr().out


@pytest.mark.parametrize("label", sorted(CHECKS))
def test_check_rejects_a_wrong_answer_and_says_why(label, capsys):
    assert verdict(label, WRONG[label])[0] is False
    assert check(label, WRONG[label]) is None  # a cell ending in the call shows no value
    out = capsys.readouterr().out
    assert "not yet" in out and len(out) > len(label) + 20


@pytest.mark.parametrize("label", sorted(CHECKS))
def test_empty_answer_cell_runs_and_says_what_is_asked(label, capsys):
    assert verdict(label, None)[0] is None
    check(label, None)
    assert CHECKS[label].asks in capsys.readouterr().out


def test_answer_cell_binds_its_variable_then_the_solution_and_checks_it():
    assert CHECKS["ex-gp-ar1"].answer_cell().endswith("check('ex-gp-ar1', answer)")  # the student notebooks'
    cell = CHECKS["ex-gp-ar1"].answer_cell("answer_gp_ar1", "answer_gp_ar1 = 1")  # an assignment's solution cell
    assert cell.startswith("answer_gp_ar1 = None  # a function of rho") and "\nanswer_gp_ar1 = 1\n" in cell
    assert cell.endswith("check('ex-gp-ar1', answer_gp_ar1)")


def test_wrong_kind_of_answer_is_reported_not_raised():
    ok, message = verdict("ex-gp-ar1", 0.5)  # a number where a function of rho is asked
    assert ok is False and "function" in message
    assert verdict("ex-truncation-1", 36.6)[0] is False


def test_unknown_exercise_names_the_known_ones():
    with pytest.raises(KeyError, match="ex-gp-ar1"):
        verdict("ex-nope", 1)


def test_every_check_compares_with_a_computation_of_the_answers_module():
    assert all(c.verify.__module__ == answers.__name__ for c in CHECKS.values())


def test_the_gaussian_crps_reference_is_the_packages_closed_form():
    import torch

    from gptheory.posterior import crps_gaussian

    f64 = {"dtype": torch.float64}
    got = crps_gaussian(torch.tensor([0.5], **f64), torch.tensor([2.0], **f64), torch.tensor([1.7], **f64))
    assert float(got) == pytest.approx(CHECKS["ex-imputation-2"].reference()(0.5, 2.0, 1.7), rel=1e-12)
