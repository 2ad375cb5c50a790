"""Processing-time math on small hand-made data: fold, percentiles, bands, estimate."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from builders import apply, cmd

from domain import catalogue as t
from domain.case import Case
from projections import processing_stats as ps
from projections.processing_stats import Estimate, Tally


def events_of(*steps: object, received_on: date = date(2024, 1, 15)) -> list[Case.Event]:
    received = cmd(t.RECEIVED, received_on=received_on, category="spouse")
    return apply(None, received, *steps).collect_events()  # type: ignore[arg-type, return-value]


def fold(events: list[Case.Event], tally: Tally) -> ps.CaseFacts | None:
    facts = None
    for event in events:
        facts = ps.step(facts, event, tally)
    return facts


# ---------------------------------------------------------------- the fold


def test_a_refusal_moves_every_counter_once() -> None:
    tally = Tally()
    refusal = cmd(t.DECISION_MADE, outcome="refused", decided_on=date(2024, 4, 14))
    facts = fold(events_of(t.ACKNOWLEDGED, refusal), tally)
    assert facts == ps.CaseFacts("spouse", "2024-01", date(2024, 1, 15), closed=True)
    assert tally.monthly_rows() == [("spouse", "2024-01", 1, 1, 0, 1, 0, 0)]
    assert tally.duration_rows() == [("spouse", "2024-01", 90, 1)]


def test_open_and_withdrawn_cases() -> None:
    tally = Tally()
    fold(events_of(t.ACKNOWLEDGED), tally)
    fold(events_of(t.WITHDRAWN), tally)
    assert tally.monthly_rows() == [("spouse", "2024-01", 2, 0, 0, 0, 1, 1)]
    assert tally.duration_rows() == []  # a withdrawal is not a decision


def test_a_closed_case_is_not_counted_again() -> None:
    tally = Tally()
    facts = fold(events_of(t.WITHDRAWN), tally)
    late = events_of(cmd(t.DECISION_MADE, outcome="refused"))[-1]  # another case's event
    assert ps.step(facts, late, tally) == facts
    assert tally.monthly_rows() == [("spouse", "2024-01", 1, 0, 0, 0, 1, 0)]


def test_decision_without_date_uses_the_occurred_date_and_never_goes_negative() -> None:
    tally = Tally()
    # builders' events occur on 2024-03-01; received after that -> 0 days.
    fold(events_of(cmd(t.DECISION_MADE, outcome="refused"), received_on=date(2024, 2, 1)), tally)
    fold(events_of(cmd(t.DECISION_MADE, outcome="refused"), received_on=date(2024, 5, 1)), tally)
    assert tally.duration_rows() == [("spouse", "2024-02", 29, 1), ("spouse", "2024-05", 0, 1)]


@pytest.mark.parametrize("cut", range(5))
def test_pages_add_up_to_the_whole(cut: int) -> None:
    """Deltas of two pages summed = the tally of the whole case (what apply relies on)."""
    refusal = cmd(t.DECISION_MADE, outcome="refused")
    events = events_of(t.ACKNOWLEDGED, t.CORRESPONDENCE_SENT, refusal)
    whole, first, second = Tally(), Tally(), Tally()
    fold(events, whole)
    facts = fold(events[:cut], first)
    for event in events[cut:]:
        facts = ps.step(facts, event, second)
    assert first.monthly.keys() | second.monthly.keys() == whole.monthly.keys()
    for key, counts in whole.monthly.items():
        for name in ps.COUNTERS:
            assert first.monthly[key][name] + second.monthly[key][name] == counts[name]
    assert first.durations + second.durations == whole.durations


@pytest.mark.parametrize("cut", range(4))
def test_tallies_of_disjoint_cases_absorb_into_the_whole(cut: int) -> None:
    """What a parallel rebuild relies on: workers' tallies merge into one pass's tally."""
    cases = [
        events_of(t.ACKNOWLEDGED, cmd(t.DECISION_MADE, outcome="refused")),
        events_of(t.ACKNOWLEDGED, received_on=date(2024, 3, 2)),
        events_of(t.WITHDRAWN, received_on=date(2024, 3, 9)),
    ]
    whole, first, second = Tally(), Tally(), Tally()
    for events in cases:
        fold(events, whole)
    for events in cases[:cut]:
        fold(events, first)
    for events in cases[cut:]:
        fold(events, second)
    first.absorb(second)
    assert first.monthly_rows() == whole.monthly_rows()
    assert first.duration_rows() == whole.duration_rows()


# ---------------------------------------------------------------- histograms


def test_percentiles_by_nearest_rank() -> None:
    even = {10: 1, 20: 1, 30: 1, 40: 1}
    assert ps.median(even) == 20  # rank ceil(0.5 * 4) = 2
    assert ps.percentile(even, 80) == 40  # rank ceil(3.2) = 4
    skewed = {1: 8, 2: 2}
    assert ps.percentile(skewed, 80) == 1  # rank 8
    assert ps.percentile(skewed, 90) == 2  # rank 9
    assert ps.percentile({7: 1}, 50) == ps.percentile({7: 1}, 90) == 7
    assert ps.median({}) is None


def test_share_within_the_service_standard() -> None:
    histogram = {100: 3, 365: 1, 366: 1}
    assert ps.share_within_standard(histogram) == pytest.approx(0.8)
    assert ps.share_within(histogram, 99) == 0.0
    assert ps.share_within_standard({}) is None
    assert ps.summary({200: 9, 400: 1}) == {
        "median_days": 200,
        "p80_days": 200,
        "p90_days": 200,
        "within_standard": pytest.approx(0.9),
    }


# ---------------------------------------------------------------- backlog


@pytest.mark.parametrize(
    ("today", "band"),
    [
        (date(2024, 1, 1), "0-6"),  # before received: counts as new
        (date(2024, 7, 14), "0-6"),  # 5 whole months
        (date(2024, 7, 15), "6-12"),
        (date(2025, 1, 14), "6-12"),
        (date(2025, 1, 15), "12-18"),
        (date(2025, 7, 15), "18+"),
        (date(2030, 1, 1), "18+"),
    ],
)
def test_age_bands(today: date, band: str) -> None:
    assert ps.age_band(date(2024, 1, 15), today) == band


def test_month_ends() -> None:
    assert ps.months_between(date(2024, 1, 31), date(2024, 2, 29)) == 0
    assert ps.months_between(date(2024, 1, 31), date(2024, 3, 31)) == 2


def test_backlog_sums_per_band() -> None:
    today = date(2025, 1, 15)
    counts = {date(2024, 12, 1): 4, date(2024, 6, 1): 2, date(2023, 1, 1): 3}
    assert ps.backlog(counts, today) == {"0-6": 4, "6-12": 2, "12-18": 0, "18+": 3}


# ---------------------------------------------------------------- estimate


def test_month_days() -> None:
    assert [ps.month_days(n) for n in (1, 2, 6, 12, 24)] == [30, 60, 182, 365, 730]


def test_estimate_takes_the_least_month_reaching_80_percent() -> None:
    # 24 of 30 (80%) within 300 days; 9 months = 273 days, 10 months = 304 days.
    assert ps.estimate({300: 24, 500: 6}) == Estimate(months=10, percent=80, decided=30)


def test_estimate_percent_is_rounded_down() -> None:
    # 25 of 31 = 80.6% within 100 days: 4 months (121 days); 3 months is 91 days.
    assert ps.estimate({100: 25, 1000: 6}) == Estimate(months=4, percent=80, decided=31)
    assert ps.estimate({0: 30}) == Estimate(months=1, percent=100, decided=30)


def test_not_enough_data_below_the_minimum() -> None:
    assert ps.MIN_DECIDED == 30
    assert ps.estimate({200: 29}) is None
    assert ps.estimate({200: 30}) is not None
    assert ps.estimate({}, min_decided=0) is None


def test_sentences() -> None:
    found = Estimate(months=4, percent=83, decided=40)
    en = ps.sentence(found, "common_law_partner", date(2024, 5, 2), "en")
    fr = ps.sentence(found, "common_law_partner", date(2024, 5, 2), "fr")
    assert en == (
        "Of similar applications (common-law partner) received from April to June 2024,"
        " 83% were decided within 4 months."
    )
    assert fr == (
        "Parmi les demandes semblables (conjoint de fait) reçues d'avril à juin 2024,"
        " 83 % ont fait l'objet d'une décision en 4 mois ou moins."
    )
    one = ps.sentence(Estimate(1, 90, 30), "spouse", date(2024, 12, 31), "en")
    assert "October to December 2024" in one and "within 1 month." in one
    assert "reçues de janvier à mars 2024" in ps.sentence(found, "spouse", date(2024, 1, 1), "fr")
    assert ps.sentence(None, "spouse", date(2024, 1, 1), "en").startswith("Not enough")
    assert ps.sentence(None, "spouse", date(2024, 1, 1), "fr").startswith("Trop peu")


def test_quarters() -> None:
    assert ps.quarter_months(date(2024, 5, 2)) == ("2024-04", "2024-05", "2024-06")
    assert ps.quarter_months(date(2024, 12, 31)) == ("2024-10", "2024-11", "2024-12")
    assert ps.month_of(datetime(2024, 3, 9, tzinfo=UTC).date()) == "2024-03"
