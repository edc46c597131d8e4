"""gptheory.book.prose: the rules that turn numbers into an outcome, and the outcome into the chapter's words."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gptheory.book.prose import Claim, band, claims_summary, claims_table, compare, verdict


def test_compare_pairs_the_seeds_and_says_same_unless_the_interval_excludes_zero():
    assert compare([1.0, 1.1, 0.9], [2.0, 2.1, 1.9]) == "lower"
    assert compare([2.0, 2.1, 1.9], [1.0, 1.1, 0.9]) == "higher"
    # paired: every seed 0.5 lower, however far apart the seeds themselves are
    assert compare([1.0, 2.0, 3.0], [1.5, 2.45, 3.55]) == "lower"
    assert compare([1.0, 2.0, 3.0], [1.5, 1.6, 3.5]) == "same"  # differences -0.5, 0.4, -0.5: t interval has 0
    assert compare([1.0], [5.0]) == "same"  # one seed cannot separate anything
    with pytest.raises(ValueError, match="paired values"):
        compare([1.0, 2.0], [1.0])


def test_band_places_a_value_against_a_range_with_the_ends_inside():
    assert [band(x, 0.8, 1.25) for x in (0.5, 0.8, 1.0, 1.25, 2.0)] == ["below", "inside", "inside", "inside", "above"]
    assert band(0.3, low=0.5) == "below" and band(0.5, low=0.5) == "inside" and band(1e9, low=0.5) == "inside"
    assert band(math.nan, 0, 1) == "unknown" and band(math.inf, low=0.5) == "unknown"


def test_verdict_picks_the_words_of_the_outcome_and_reads_booleans_as_yes_or_no():
    words = {"same": ("no clear difference", "not clearly apart"), "higher": ("DiT better", "the DiT is better")}
    assert verdict("higher", **words) == ("DiT better", "the DiT is better")
    assert verdict(True, yes="rises", no="falls") == "rises"
    assert verdict(np.float64(1.0) < np.float64(0.5), yes="rises", no="falls") == "falls"  # a NumPy bool too
    assert verdict(compare([1.0, 1.1, 0.9], [2.0, 2.1, 1.9]), lower="smoother", higher="rougher", same="alike") == (
        "smoother"
    )


def test_verdict_names_an_outcome_the_chapter_wrote_no_words_for():
    with pytest.raises(KeyError, match="'unknown'.*'inside'"):
        verdict(band(math.nan, 0, 1), inside="close to", below="narrower than", above="wider than")


def test_the_closing_table_names_each_claim_with_its_measurement_and_verdict():
    from gptheory.statistics import verdict as decide

    v = decide([0.1, 0.12, 0.09, 0.11])
    rows = [Claim("error falls with n", v, f"slope {v.interval()}", "every seed falls"),
            Claim("the ordering", "inconclusive", "2 of 4 sizes", "intervals overlap")]  # fmt: skip
    html = claims_table(rows, caption="Figure 4(a)").data
    assert "<b>holds</b> (n = 4)" in html and "<b>inconclusive</b>" in html and "slope 0.1" in html
    assert "Figure 4(a)" in html and "<b>inconclusive</b> (" not in html  # an outcome word has no seed count
    summary = claims_summary([*rows, Claim("a <b> c", "fails", "", "")]).data
    assert summary.count("<li>") == 3 and "<b>holds</b> (n = 4): error falls with n (slope 0.1" in summary
    assert "<b>inconclusive</b>: the ordering" in summary and "a &lt;b&gt; c" in summary  # the claim's text escaped
    partly = claims_table([Claim("x", decide([0.1, float("nan"), 0.2]), "", "")]).data
    assert "(n = 2 of 3)" in partly  # a seed that could not be measured is reported, not hidden
    assert "the paper&#x27;s claim" in html or "the paper's claim" in html
    assert "a follow-up's claim" in claims_table(rows, claimed_by="a follow-up's claim").data
    with pytest.raises(ValueError, match="verdict must be one of"):
        claims_table([Claim("x", "maybe", "", "")])
