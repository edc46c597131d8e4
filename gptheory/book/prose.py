"""Comparisons into the words of a verdict, so that a chapter states its rule once and writes no ``if ... elif``.

A chapter measures, applies a rule that gives an *outcome* (a short word), and glues the words it wrote for that
outcome into its prose::

    short, phrase = verdict(
        compare(unet_errors, dit_errors),  # per-seed values: "same", "higher" or "lower"
        same=("no clear difference", "the two are not clearly apart"),
        higher=("DiT better", "the DiT is clearly better"),
        lower=("UNet better", "the UNet is clearly better"),
    )

The rules: :func:`compare` (two sets of per-seed values), :func:`band` (one value against a range),
``order`` of :mod:`gptheory.statistics` (two steps: ``"before"``, ``"same"``, ``"after"``,
``"unknown"``), and any ``bool`` (``"yes"`` / ``"no"``).
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from ..statistics import OUTCOMES, Verdict
from ..statistics import verdict as decide

T = TypeVar("T")


def compare(a: Sequence[float], b: Sequence[float], level: float = 0.95) -> str:
    """How the per-seed values ``a`` stand against ``b`` (the same seeds, in the same order: paired), by the book's one
    rule (:func:`gptheory.statistics.verdict` on ``a - b``): ``"higher"`` when the interval of the mean difference is
    above zero, ``"lower"`` when below, ``"same"`` when it contains zero (not clearly apart)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.shape != b.shape:
        raise ValueError(f"compare needs paired values (one per seed on each side), got {len(a)} and {len(b)}")
    outcome = decide(a - b, level).outcome
    return {"holds": "higher", "fails": "lower", "inconclusive": "same"}[outcome]


def band(value: float, low: float = -math.inf, high: float = math.inf) -> str:
    """Where ``value`` lies against ``[low, high]``: ``"below"`` (``value < low``), ``"above"`` (``value > high``),
    ``"inside"`` (the ends included), or ``"unknown"`` when ``value`` is ``nan`` or infinite."""
    if not math.isfinite(value):
        return "unknown"
    return "below" if value < low else "above" if value > high else "inside"


def verdict(outcome: str | bool | np.bool_, **words: T) -> T:
    """The ``words`` a chapter wrote for ``outcome``: ``verdict(outcome, same=..., higher=..., lower=...)``.

    ``outcome`` is a rule's word (:func:`compare`, :func:`band`, ``order``) or a ``bool``, which reads as ``"yes"`` or
    ``"no"``. The words may be anything (a phrase, or a pair of a short verdict for a summary table and a phrase for
    the prose). Raises ``KeyError`` naming the outcome when the chapter wrote nothing for it.
    """
    key = ("yes" if outcome else "no") if isinstance(outcome, (bool, np.bool_)) else outcome
    if key not in words:
        raise KeyError(f"no words for the outcome {key!r}; words were given for {sorted(words)}")
    return words[key]


@dataclass(frozen=True)
class Claim:
    """One row of an experiment chapter's closing table: the paper's ``claim``, our ``verdict`` on it (a
    :class:`gptheory.statistics.Verdict`, or an outcome word where several verdicts were joined), what we
    ``measured`` (with its interval), and the ``reason`` (why the verdict is what it is)."""

    claim: str
    verdict: Verdict | str
    measured: str
    reason: str

    @property
    def outcome(self) -> str:
        return self.verdict if isinstance(self.verdict, str) else self.verdict.outcome


def _seeds(v: Verdict | str) -> str:
    return "" if isinstance(v, str) else f" ({v.seeds})"


def claims_table(claims: Sequence[Claim], caption: str | None = None, claimed_by: str = "the paper's claim"):
    """The closing table of an experiment chapter: claim, measurement with interval, verdict, reason (an HTML table,
    :func:`gptheory.book.notebook.html_table`); ``claimed_by`` heads the first column (whose claims they are)."""
    from .notebook import html_table

    for c in claims:
        if c.outcome not in OUTCOMES:
            raise ValueError(f"a claim's verdict must be one of {OUTCOMES}, got {c.outcome!r} for {c.claim!r}")
    rows = [[c.claim, c.measured, f"<b>{c.outcome}</b>" + _seeds(c.verdict), c.reason] for c in claims]
    return html_table([claimed_by, "our measurement", "verdict", "why"], rows, caption)


def claims_summary(claims: Sequence[Claim]):
    """The verdicts of a chapter's closing table in one short list (verdict, seeds, claim), as HTML: what the
    introduction pastes from each experiment chapter (a ``{glue}`` directive with ``:doc:``), so that its summary is
    the chapters' own verdicts and cannot drift from them."""
    from IPython.display import HTML

    items = "".join(
        f"<li><b>{c.outcome}</b>{_seeds(c.verdict)}: {html.escape(c.claim)} ({html.escape(c.measured)})</li>"
        for c in claims
    )  # what was measured beside each verdict: "fails" for an ordering that held at 1 of 5 sizes says so
    return HTML(f'<ul class="claims-summary">{items}</ul>')


__all__ = ["Claim", "band", "claims_summary", "claims_table", "compare", "verdict"]
