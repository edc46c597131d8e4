"""The student checks: right on the reference solutions, wrong on typical mistakes, quiet on empty answers."""

from __future__ import annotations

import math

import pytest

from gptheory.exercises import CHECKS, check

WRONG = {
    "ex-gp-ar1": lambda rho: -rho,  # forgot the 1 / (1 - rho^2)
    "ex-gp-kappa": lambda ell: 4 * ell,  # the linear growth the chapter once claimed
    "ex-score-condition": lambda lo, hi, a, s: hi / lo,  # the condition number without the noise
    "ex-gradient_descent-1": lambda kappa: 1 - 1 / kappa,  # the rate of eta = 1/L, not of the best step
    "ex-truncation-1": 36,  # one frame short
    "ex-truncation-2": 1 / math.log(2),  # the PSD boundary of the J = 2 band, not diagonal dominance
    "ex-dit-learns-3": lambda a, b: b / (a + b),  # the share of widths, not of squared weights
}


def test_every_check_has_a_wrong_answer_here():
    assert set(WRONG) == set(CHECKS)


@pytest.mark.parametrize("label", sorted(CHECKS))
def test_check_accepts_the_reference_solution(label, capsys):
    assert check(label, CHECKS[label].reference()) is True
    assert "correct" in capsys.readouterr().out


@pytest.mark.parametrize("label", sorted(CHECKS))
def test_check_rejects_a_wrong_answer_and_says_why(label, capsys):
    assert check(label, WRONG[label]) is False
    out = capsys.readouterr().out
    assert "not yet" in out and len(out) > len(label) + 20


@pytest.mark.parametrize("label", sorted(CHECKS))
def test_empty_answer_cell_runs_and_says_what_is_asked(label, capsys):
    assert check(label, None) is None
    assert CHECKS[label].asks in capsys.readouterr().out


def test_wrong_kind_of_answer_is_reported_not_raised(capsys):
    assert check("ex-gp-ar1", 0.5) is False  # a number where a function of rho is asked
    assert "function" in capsys.readouterr().out
    assert check("ex-truncation-1", 36.6) is False


def test_unknown_exercise_names_the_known_ones():
    with pytest.raises(KeyError, match="ex-gp-ar1"):
        check("ex-nope", 1)
