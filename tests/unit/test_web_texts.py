"""The web pages' words: every text in both languages, dates and numbers as each
language writes them, and the page model built from a role's view only."""

from __future__ import annotations

from datetime import date

from adapters.http.web import page
from adapters.http.web.texts import ABOUT, MEANS, TEXTS, long_date, number, t
from domain.activities import Activity, ActivityStatus


def test_every_text_is_in_english_and_french() -> None:
    for table in (TEXTS, ABOUT, MEANS):
        for key, entry in table.items():
            assert set(entry) == {"en", "fr"}, key
            assert entry["en"] != entry["fr"] or key in {"notice.title"}, key
    assert set(ABOUT) == {a.value for a in Activity}
    assert set(MEANS) == {s.value for s in ActivityStatus}


def test_dates_and_numbers_per_language() -> None:
    assert long_date("2026-03-01", "en") == "March 1, 2026"
    assert long_date("2026-03-01", "fr") == "1er mars 2026"
    assert long_date("2026-08-15T10:00:00+00:00", "fr") == "15 août 2026"
    assert long_date(date(2026, 12, 25), "en") == "December 25, 2026"
    assert number(12345, "en") == "12,345"
    assert number(12345, "fr") == "12\u202f345"
    assert t("label.history", "fr") == "Historique"  # the projections' own texts


def test_the_page_shows_only_what_the_view_holds() -> None:
    sponsor_view = {
        "application_number": "F123456789", "role": "sponsor", "status": "closed",
        "outcome": "approved", "category": "spouse", "received_on": "2025-01-02",
        "decided_on": "2025-11-03", "last_updated": "2025-11-03T10:00:00+00:00",
        "days_elapsed": 305, "service_standard_days": 365, "history": [],
        "contact": {"text": "Questions? Use the IRCC web form: https://example.org/form"},
    }  # fmt: skip
    shown = page.application(sponsor_view, "fr")
    assert not shown.details and shown.activities == [] and shown.steps == []
    assert shown.status_text == "Fermée : Approuvée"
    assert shown.category == "Époux"
    assert shown.contact_url == "https://example.org/form"
    assert shown.contact_text == "Questions? Use the IRCC web form"
