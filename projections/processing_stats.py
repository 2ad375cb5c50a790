"""Processing-time analytics as pure functions: counters, durations, estimates.

Cases are grouped by category and the month they were received (YYYY-MM of
``received_on``). ``step`` folds one event into a case's facts and adds its
counter changes to a ``Tally``; the projection applies the same ``step`` page
by page (writing the tally as deltas) and the rebuild applies it case by case
(writing the tally once), so both give the same numbers by construction.

A case closes once (the rules reject everything but COPR and passport events
after a decision or withdrawal), so ``open = received - decided - withdrawn``
per group. Durations count days from ``received_on`` to the decision
(``decided_on``, or the date it occurred when absent; never below 0); a
withdrawal is not a decision and has no duration.

Percentiles use the nearest-rank method on the day histogram: the p-th
percentile is the smallest ``d`` such that at least p% of decisions took ``d``
days or fewer.

Estimate for an open case. Similar cases: same category, received in the same
calendar quarter, decided (withdrawn and open cases are left out; note that
for a recent quarter the decided ones are the fast ones). A month is
365.25 / 12 days, and "decided within N months" means ``days <= floor(N *
365.25 / 12)``. N is the smallest whole number of months (at least 1) within
which at least 80% of the similar decided cases were decided; X is the share
decided within N months, rounded down to a whole percent (so X >= 80). Below
MIN_DECIDED similar decided cases there is no estimate (None).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date

from domain.case import Case
from projections.case_status import SERVICE_STANDARD_DAYS

COUNTERS = ("received", "decided", "approved", "refused", "withdrawn", "open")
MIN_DECIDED = 30
ESTIMATE_PERCENT = 80
BANDS = ("0-6", "6-12", "12-18", "18+")  # months since received

Histogram = Mapping[int, int]  # days to decision -> number of cases
GroupKey = tuple[str, str]  # (category, month)
DurationKey = tuple[str, str, int]  # (category, month, days)


def month_of(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def quarter_months(day: date) -> tuple[str, str, str]:
    """The three months (YYYY-MM) of the calendar quarter holding ``day``."""
    first = (day.month - 1) // 3 * 3 + 1
    year = f"{day.year:04d}"
    return f"{year}-{first:02d}", f"{year}-{first + 1:02d}", f"{year}-{first + 2:02d}"


# ---------------------------------------------------------------- the fold


@dataclass(frozen=True)
class CaseFacts:
    """What the stats need to remember about one case."""

    category: str
    month: str
    received_on: date
    closed: bool = False


@dataclass
class Tally:
    """Counter changes per (category, month) and per (category, month, days)."""

    monthly: defaultdict[GroupKey, Counter[str]] = field(
        default_factory=lambda: defaultdict(Counter)
    )
    durations: Counter[DurationKey] = field(default_factory=Counter)

    def absorb(self, other: Tally) -> None:
        """Add another tally's changes (of other cases) to this one."""
        for key, counts in other.monthly.items():
            self.monthly[key].update(counts)
        self.durations.update(other.durations)

    def monthly_rows(self) -> list[tuple[str | int, ...]]:
        """(category, month, then one count per name in COUNTERS) for each group."""
        return [
            (category, month, *(counts[name] for name in COUNTERS))
            for (category, month), counts in sorted(self.monthly.items())
        ]

    def duration_rows(self) -> list[tuple[str, str, int, int]]:
        return [(*key, count) for key, count in sorted(self.durations.items()) if count]


def step(facts: CaseFacts | None, event: Case.Event, tally: Tally) -> CaseFacts | None:
    """The case's facts after ``event``; its counter changes are added to ``tally``."""
    if isinstance(event, Case.Received):
        facts = CaseFacts(event.category, month_of(event.received_on), event.received_on)
        tally.monthly[facts.category, facts.month].update(received=1, open=1)
        return facts
    if facts is None or facts.closed:
        return facts
    group = tally.monthly[facts.category, facts.month]
    if isinstance(event, Case.DecisionMade):
        group.update({"decided": 1, event.outcome: 1, "open": -1})
        decided_on = event.decided_on or event.occurred_at.date()
        days = max((decided_on - facts.received_on).days, 0)
        tally.durations[facts.category, facts.month, days] += 1
        return replace(facts, closed=True)
    if isinstance(event, Case.Withdrawn):
        group.update(withdrawn=1, open=-1)
        return replace(facts, closed=True)
    return facts


# ---------------------------------------------------------------- histograms


def merge(histograms: Iterable[Histogram]) -> Counter[int]:
    total: Counter[int] = Counter()
    for histogram in histograms:
        total.update(histogram)
    return total


def percentile(histogram: Histogram, percent: int) -> int | None:
    """Nearest rank: the least ``d`` with at least ``percent``% of counts at ``d`` or below."""
    n = sum(histogram.values())
    if n == 0:
        return None
    rank = max(-(-percent * n // 100), 1)
    seen = 0
    for days in sorted(histogram):
        seen += histogram[days]
        if seen >= rank:
            return days
    raise AssertionError("unreachable")


def median(histogram: Histogram) -> int | None:
    return percentile(histogram, 50)


def share_within(histogram: Histogram, days: int) -> float | None:
    """Share of decisions taking ``days`` days or fewer; None without decisions."""
    n = sum(histogram.values())
    if n == 0:
        return None
    return sum(count for d, count in histogram.items() if d <= days) / n


def share_within_standard(histogram: Histogram) -> float | None:
    return share_within(histogram, SERVICE_STANDARD_DAYS)


def summary(histogram: Histogram) -> dict[str, int | float | None]:
    return {
        "median_days": median(histogram),
        "p80_days": percentile(histogram, 80),
        "p90_days": percentile(histogram, 90),
        "within_standard": share_within_standard(histogram),
    }


# ---------------------------------------------------------------- backlog


def months_between(start: date, end: date) -> int:
    """Whole calendar months from ``start`` to ``end`` (0 when ``end`` is earlier)."""
    months = (end.year - start.year) * 12 + end.month - start.month
    if end.day < start.day:
        months -= 1
    return max(months, 0)


def age_band(received_on: date, today: date) -> str:
    """0-6, 6-12, 12-18 or 18+: whole months since received, lower bound inclusive."""
    months = months_between(received_on, today)
    return BANDS[min(months // 6, len(BANDS) - 1)]


def backlog(open_received: Mapping[date, int], today: date) -> dict[str, int]:
    """Open cases per age band, from a count of open cases per received date."""
    bands = dict.fromkeys(BANDS, 0)
    for received_on, count in open_received.items():
        bands[age_band(received_on, today)] += count
    return bands


# ---------------------------------------------------------------- estimate


def month_days(months: int) -> int:
    """floor(months * 365.25 / 12), in whole days."""
    return months * 1461 // 48


@dataclass(frozen=True)
class Estimate:
    months: int  # N
    percent: int  # X, at least ESTIMATE_PERCENT
    decided: int  # similar decided cases behind it


def estimate(histogram: Histogram, min_decided: int = MIN_DECIDED) -> Estimate | None:
    """N and X as defined in the module docstring; None below ``min_decided``."""
    n = sum(histogram.values())
    if n < max(min_decided, 1):
        return None
    months = 1
    while True:
        within = sum(count for d, count in histogram.items() if d <= month_days(months))
        if within * 100 >= ESTIMATE_PERCENT * n:
            return Estimate(months, within * 100 // n, n)
        months += 1


CATEGORY_NAMES = {
    "spouse": ("spouse", "époux"),
    "common_law_partner": ("common-law partner", "conjoint de fait"),
    "conjugal_partner": ("conjugal partner", "partenaire conjugal"),
    "dependent_child": ("dependent child", "enfant à charge"),
}
_MONTHS_EN = "January February March April May June July August September October November December"
_MONTHS_FR = "janvier février mars avril mai juin juillet août septembre octobre novembre décembre"


def sentence(found: Estimate | None, category: str, received_on: date, lang: str) -> str:
    """The estimate as one sentence in ``lang`` ("en" or "fr")."""
    fr = lang == "fr"
    if found is None:
        if fr:
            return (
                "Trop peu de demandes semblables ont fait l'objet d'une décision "
                "pour donner une estimation."
            )
        return "Not enough similar applications have been decided yet to give an estimate."
    names = CATEGORY_NAMES.get(category, (category, category))
    first, last = (int(m[5:]) for m in quarter_months(received_on)[::2])
    months = (_MONTHS_FR if fr else _MONTHS_EN).split()
    if fr:
        unit = "mois"
        return (
            f"Parmi les demandes semblables ({names[1]}) reçues {_from_fr(months[first - 1])} "
            f"à {months[last - 1]} {received_on.year}, {found.percent} % ont fait l'objet "
            f"d'une décision en {found.months} {unit} ou moins."
        )
    unit = "month" if found.months == 1 else "months"
    return (
        f"Of similar applications ({names[0]}) received from {months[first - 1]} to "
        f"{months[last - 1]} {received_on.year}, {found.percent}% were decided within "
        f"{found.months} {unit}."
    )


def _from_fr(month: str) -> str:
    """French elision: "de janvier" but "d'avril" (before a vowel)."""
    return f"d'{month}" if month[0] in "aeiouéè" else f"de {month}"
