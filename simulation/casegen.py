"""Generate a realistic feed of inbound case events (contract v1) as JSON lines.

Usable as a module::

    from simulation import casegen
    lines = casegen.generate(2000, seed=3, duplicate_share=0.01)
    casegen.write("events.jsonl", lines)

or from the shell::

    python -m simulation.casegen --cases 40 --seed 7 --duplicates 0.02 --invalid 0.01 > events.jsonl

Output is deterministic for a given seed and arguments. Lines are ordered by
``occurred_at`` across all cases, so cases interleave as in a real feed. Cases
are received over two years from ``start``; the feed stops a few months after
the last intake, so recent cases are still in progress (about 30% open).

Every valid line passes ``consumers.contract.parse_event`` and is accepted by the
domain rules when applied in order. ``duplicate_share`` re-inserts that fraction
of lines as exact copies further down (redeliveries); ``invalid_share`` adds that
fraction of poison lines (not JSON, unknown type, bad application number,
missing field, bad timestamp). Names, UCIs and emails are made up; email
addresses use the reserved example.* domains.

Standard library only: no dependency on the rest of the project.
"""

from __future__ import annotations

import argparse
import functools
import json
import random
import sys
import unicodedata
from collections.abc import Iterable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

__all__ = ["INTAKE_DAYS", "INVALID_KINDS", "TAIL_DAYS", "generate", "write"]

INTAKE_DAYS = 730  # applications are received over this many days from ``start``
TAIL_DAYS = 180  # the feed ends this many days after the intake window closes

INVALID_KINDS = (
    "not_json",
    "unknown_type",
    "bad_application_number",
    "missing_field",
    "bad_timestamp",
)

# ---------------------------------------------------------------- reference data

CATEGORIES = (
    ("spouse", 0.70),
    ("common_law_partner", 0.20),
    ("conjugal_partner", 0.03),
    ("dependent_child", 0.07),
)

# fmt: off
GIVEN_NAMES = (
    "Aarav", "Priya", "Arjun", "Ananya", "Harpreet", "Gurpreet", "Wei", "Mei", "Jun", "Li Na",
    "Carlos", "Sofía", "Mateo", "Valentina", "José", "María", "Mohammed", "Fatima", "Omar",
    "Aisha", "Youssef", "Layla", "Chinedu", "Ngozi", "Oluwaseun", "Amara", "Nguyen Van",
    "Thi Lan", "Minh", "Ji-woo", "Seo-yeon", "Hiroshi", "Yuki", "Jean", "Marie", "Élodie",
    "Mathieu", "Hélène", "François", "Chloé", "Émile", "Olivia", "Liam", "Emma", "Noah",
    "Ava", "Ethan", "Sarah", "Daniel", "Anna", "Mikhail", "Olena", "Tomasz", "Agnieszka",
    "Rafael", "Camila", "Ahmad", "Zainab", "Kwame", "Abena", "Rohan", "Neha", "Imran", "Sana",
)

FAMILY_NAMES = (
    "Singh", "Kaur", "Patel", "Sharma", "Gill", "Chen", "Wang", "Li", "Zhang", "Liu",
    "Nguyen", "Tran", "Garcia", "Rodriguez", "Hernández", "López", "Santos", "Reyes",
    "Dela Cruz", "Tremblay", "Gagnon", "Roy", "Côté", "Bouchard", "Gauthier", "Lavoie",
    "Bélanger", "Smith", "Brown", "Wilson", "MacDonald", "Campbell", "Okafor", "Adeyemi",
    "Mensah", "Khan", "Ahmed", "Hussain", "Haddad", "Nasser", "Kowalski", "Nowak",
    "Kovalenko", "Ivanova", "Kim", "Park", "Sato", "Tanaka", "O'Brien", "Da Silva",
)
# fmt: on

EMAIL_DOMAINS = ("example.com", "example.org", "example.net", "mail.example.ca")

REPRESENTATIVES = (
    ("Julie Lavoie", "jlavoie@lavoie-immigration.example.com", "R512347"),
    ("Amrit Dhillon", "amrit@dhillon-law.example.ca", "LSO-74512P"),
    ("Marc-André Pelletier", "map@pelletier-avocats.example.ca", "BQ-221874"),
    ("Grace Okonkwo", "grace@northpath.example.com", "R706518"),
    ("Daniel Wong", "dwong@maplegate.example.net", None),
    ("Sophie Bernier", "sbernier@bernier-immigration.example.ca", "R531902"),
    ("Ravi Menon", "ravi.menon@example.org", "R488213"),
    ("Elena Petrova", "elena@petrova-consulting.example.com", None),
)

DOCUMENT_SETS = (
    ("police_certificate",),
    ("passport_copy", "photos"),
    ("relationship_evidence",),
    ("marriage_certificate",),
    ("proof_of_cohabitation",),
    ("birth_certificate",),
    ("schedule_a", "police_certificate"),
    ("imm5669",),
    ("photos",),
    ("sponsor_income_proof",),
)

PFL = "Procedural fairness letter"

UNKNOWN_TYPES = (
    "medical.scheduled",
    "application.reopened",
    "biometrics.expired",
    "case.updated",
    "Decision.Made",
)

REQUIRED_FIELDS = ("event_id", "application_number", "occurred_at", "source", "payload")

UPDATE_SUBJECTS = (
    "Update on your application",
    "Reminder: outstanding request",
    "Change of address confirmed",
    "Your file was transferred to another office",
)

# Sources and the clock they report in.
GCMS, BIO, PHYSICIANS, PORTAL = "gcms", "gcms-bio", "panel-physicians", "ircc-portal"
_EASTERN = {GCMS, PORTAL}  # Ottawa office hours, offsets -05:00 / -04:00

# ---------------------------------------------------------------- public API


def generate(
    cases: int,
    seed: int = 1,
    duplicate_share: float = 0.0,
    invalid_share: float = 0.0,
    start: date = date(2023, 1, 1),
) -> list[str]:
    """Return JSON lines (no trailing newline) for ``cases`` cases, in occurred_at order."""
    if cases < 0:
        raise ValueError("cases must be >= 0")
    for name, share in (("duplicate_share", duplicate_share), ("invalid_share", invalid_share)):
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"{name} must be between 0 and 1")

    master = random.Random(seed)
    numbers = master.sample(range(100_000_000, 1_000_000_000), cases)
    as_of = _instant(start.toordinal() + INTAKE_DAYS + TAIL_DAYS, 0, 0)  # the feed ends here
    today = date.today()

    timed: list[tuple[int, int, int, str]] = []
    for index, number in enumerate(numbers):
        rng = random.Random(f"casegen/{seed}/{index}")
        received = start + timedelta(days=rng.randrange(INTAKE_DAYS))
        case = _Case(rng, f"F{number:09d}", received, today)
        for seq, (when, line) in enumerate(case.events(as_of)):
            timed.append((when, index, seq, line))
    timed.sort()  # by instant; ties by case then position in the case

    lines = [line for _, _, _, line in timed]
    noise = random.Random(f"casegen/{seed}/noise")
    return _add_noise(noise, lines, duplicate_share, invalid_share)


def write(path: str | Path, lines: Iterable[str]) -> None:
    """Write lines to ``path`` (UTF-8, one event per line); ``-`` means stdout."""
    if str(path) == "-":
        out = sys.stdout
        for line in lines:
            out.write(line + "\n")
        out.flush()
        return
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for line in lines:
            f.write(line + "\n")


# ---------------------------------------------------------------- one case


class _Case:
    """Plans one case's events as (day offset from received, type, source, payload)."""

    def __init__(self, rng: random.Random, number: str, received: date, today: date) -> None:
        self.rng = rng
        self.number = number
        self.received = received
        self.base = received.toordinal()
        self.today = today
        # (day offset, order, type, source, payload, seconds into the local day or None)
        self.planned: list[tuple[int, int, str, str, dict[str, Any], int | None]] = []
        self.order = 0
        self.category = _weighted(rng, CATEGORIES)

    # -- helpers

    def add(
        self,
        day: int,
        event_type: str,
        source: str,
        payload: dict[str, Any],
        seconds: int | None = None,
    ) -> None:
        self.order += 1
        self.planned.append((day, self.order, event_type, source, payload, seconds))

    def on(self, day: int) -> str:
        return _iso_day(self.base + day)

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def days(self, low: int, high: int, mode: float | None = None) -> int:
        return round(self.rng.triangular(low, high, mode if mode is not None else (low + high) / 2))

    # -- the flow

    def events(self, as_of: int) -> list[tuple[int, str]]:
        """This case's JSON lines with their instants, in order, up to ``as_of``."""
        rng = self.rng
        self.add(0, "application.received", GCMS, self.received_payload())

        # Acknowledgement of receipt: one to three months after receipt.
        aor = self.days(25, 95, 50)
        self.add(aor, "application.acknowledged", GCMS, {"acknowledged_on": self.on(aor)})
        if self.chance(0.2):
            self.add(aor, "correspondence.sent", GCMS, {"subject": "Acknowledgement of receipt"})

        # Target decision time: 8 to 20 months, mostly about a year.
        decision = self.days(235, 610, 360)
        ends: list[int] = []  # days approval-relevant work finishes; the decision comes after
        refusal: int | None = None  # the day a refusal is decided, when one is

        # Sponsor eligibility.
        se_start = aor + self.days(0, 30, 7)
        se_end = se_start + self.days(10, 120, 40)
        self.add(se_start, "sponsor_eligibility.started", GCMS, {})
        if self.chance(0.02):
            self.add(se_end, "sponsor_eligibility.not_met", GCMS, {})
            refusal = se_end + self.days(20, 90)
        else:
            self.add(se_end, "sponsor_eligibility.met", GCMS, {})
        ends.append(se_end)

        # Biometrics: children under 14 and people enrolled within 10 years are exempt.
        if self.child_age < 14 or self.chance(0.08):
            day = aor + self.days(0, 10, 1)
            self.add(day, "biometrics.exempted", GCMS, {})
        else:
            asked = aor + self.days(0, 7, 1)
            self.add(asked, "biometrics.requested", GCMS, {"due_on": self.on(asked + 30)})
            done = asked + self.days(3, 40, 14)
            self.add(done, "biometrics.completed", BIO, self.maybe("completed_on", done))
            day = done
        ends.append(day)

        # Medical exam.
        if self.chance(0.07):
            day = aor + self.days(5, 60)
            self.add(day, "medical.exempted", GCMS, {})
        else:
            asked = aor + self.days(5, 120, 30)
            self.add(asked, "medical.requested", GCMS, {"due_on": self.on(asked + 30)})
            day = asked + self.days(10, 90, 30)
            if refusal is None and self.chance(0.02):
                self.add(day, "medical.failed", PHYSICIANS, self.maybe("completed_on", day))
                if self.chance(0.7):
                    letter = day + self.days(10, 30)
                    self.add(letter, "correspondence.sent", GCMS, {"subject": PFL})
                refusal = day + self.days(45, 120)
            else:
                self.add(day, "medical.passed", PHYSICIANS, self.maybe("completed_on", day))
        ends.append(day)

        # Eligibility: reviewed late, ends shortly before the decision.
        el_end = decision - self.days(3, 45, 10)
        el_start = max(aor + self.days(10, 60), el_end - self.days(20, 150, 60))
        el_start = min(el_start, el_end - 7)
        self.add(el_start, "eligibility.started", GCMS, {})
        eligible = not self.chance(0.09)
        ends.append(el_end)

        # Background check: often the long pole.
        bg_start = aor + self.days(15, 150, 45)
        bg_end = bg_start + self.days(30, 300, 120)
        self.add(bg_start, "background_check.started", GCMS, {})
        self.add(bg_end, "background_check.completed", GCMS, self.maybe("completed_on", bg_end))
        ends.append(bg_end)

        # Additional documents: at most one open request at a time.
        if self.chance(0.3):
            asked = aor + self.days(15, max(16, decision - aor - 40))
            for n in range(2):
                codes = list(rng.choice(DOCUMENT_SETS))
                due = asked + (60 if "police_certificate" in codes else 30)
                request = {"documents": codes, "due_on": self.on(due)}
                self.add(asked, "documents.requested", GCMS, request)
                if self.chance(0.25):
                    subject = {"subject": "Request for additional documents"}
                    self.add(asked, "correspondence.sent", GCMS, subject)
                got = asked + self.days(5, 75, 25)
                self.add(got, "documents.received", PORTAL, {"documents": codes})
                ends.append(got)
                if n == 1 or not self.chance(0.2):
                    break
                asked = got + self.days(5, 60)

        # Interview (about 5%): scheduled a few weeks ahead, held on the day.
        interviewed = self.chance(0.05)
        if interviewed:
            booked = el_start + self.days(5, 60)
            held_day = booked + self.days(21, 60)
            slot = rng.randrange(9 * 4, 15 * 4) * 900  # on the quarter hour, 09:00-14:45
            held_on = self.received.toordinal() + held_day
            offset = _offset(held_on, GCMS)
            held = _stamp(_instant(held_on, slot, offset), offset)
            self.add(booked, "interview.scheduled", GCMS, {"scheduled_for": held})
            self.add(held_day, "interview.completed", GCMS, {}, slot + rng.randrange(2700, 7200))
            ends.append(held_day)

        # Eligibility result and the decision.
        if eligible:
            self.add(el_end, "eligibility.met", GCMS, {})
        else:
            if self.chance(0.5) and el_end - el_start > 2:
                letter = el_start + self.days(1, el_end - el_start - 1)
                self.add(letter, "correspondence.sent", GCMS, {"subject": PFL})
            self.add(el_end, "eligibility.not_met", GCMS, {})
            if refusal is None:
                refusal = el_end + self.days(1, 30, 7)

        if refusal is None and interviewed and self.chance(0.35):
            refusal = max(ends) + self.days(7, 45)
        if refusal is None:
            decided = max(decision, max(ends) + self.days(1, 21, 5))
            outcome = "approved"
        else:
            decided = refusal
            outcome = "refused"

        if self.chance(0.1):
            day = aor + self.days(1, max(2, decided - aor - 1))
            self.add(day, "correspondence.sent", GCMS, {"subject": rng.choice(UPDATE_SUBJECTS)})

        # Keep only what happened before the decision, then close the case.
        self.planned = [p for p in self.planned if p[0] < decided]
        decision_payload = {"outcome": outcome, **self.maybe("decided_on", decided)}
        self.add(decided, "decision.made", GCMS, decision_payload)
        if outcome == "approved":
            asked = decided + self.days(1, 30, 7)
            payload = {"due_on": self.on(asked + 30)} if self.chance(0.9) else {}
            self.add(asked, "passport.requested", GCMS, payload)
            issued = asked + self.days(10, 70, 25)
            self.add(issued, "copr.issued", GCMS, self.maybe("issued_on", issued))

        # About 3% withdraw at some point before the decision.
        if self.chance(0.03):
            day = self.days(1, decided - 1)
            self.planned = [p for p in self.planned if p[0] < day]
            self.add(day, "application.withdrawn", GCMS, {})

        return self.render(as_of)

    def maybe(self, name: str, day: int) -> dict[str, Any]:
        """An optional date field, present most of the time."""
        return {name: self.on(day)} if self.chance(0.85) else {}

    # -- application.received

    def received_payload(self) -> dict[str, Any]:
        rng = self.rng
        child = self.category == "dependent_child"
        sponsor_family = rng.choice(FAMILY_NAMES)
        sponsor = self.person(sponsor_family, self.days(20, 66, 34) * 365, 0.6)
        if child:
            self.child_age = self.days(0, 21, 9)
            age_days = self.child_age * 365 + rng.randrange(30, 330)
            family = sponsor_family if self.chance(0.8) else rng.choice(FAMILY_NAMES)
            applicant = self.person(family, age_days, 0.2)
        else:
            self.child_age = 99
            family = sponsor_family if self.chance(0.25) else rng.choice(FAMILY_NAMES)
            applicant = self.person(family, self.days(19, 60, 30) * 365, 0.75)
        payload: dict[str, Any] = {
            "category": self.category,
            "received_on": self.received.isoformat(),
            "principal_applicant": applicant,
            "sponsor": sponsor,
        }
        if self.chance(0.25):
            name, email, membership = rng.choice(REPRESENTATIVES)
            rep: dict[str, Any] = {"name": name, "email": email}
            if membership is not None:
                rep["membership_id"] = membership
            payload["representative"] = rep
        payload["preferred_language"] = "fr" if self.chance(0.25) else "en"
        return payload

    def person(self, family: str, age_days: int, email_share: float) -> dict[str, Any]:
        rng = self.rng
        given = rng.choice(GIVEN_NAMES)
        born = self.received - timedelta(days=age_days + rng.randrange(365))
        born = min(born, self.today - timedelta(days=1))
        digits = 10 if self.chance(0.7) else 8  # newer UCIs have 10 digits, older ones 8
        uci = str(rng.randrange(10 ** (digits - 1), 10**digits))
        person: dict[str, Any] = {
            "uci": uci,
            "given_name": given,
            "family_name": family,
            "date_of_birth": born.isoformat(),
        }
        if self.chance(email_share):
            local = f"{_ascii(given)}.{_ascii(family)}"
            if self.chance(0.5):
                local += str(rng.randrange(1, 99))
            person["email"] = f"{local}@{rng.choice(EMAIL_DOMAINS)}"
        return person

    # -- timestamps

    def render(self, as_of: int) -> list[tuple[int, str]]:
        """Events with their instant (epoch seconds), dropping those at or after ``as_of``."""
        rng = self.rng
        base = self.received.toordinal()
        timed: list[list[Any]] = []  # [instant, offset, type, source, payload]; instants move
        for day, _, event_type, source, payload, seconds in sorted(self.planned, key=_day_order):
            if seconds is None:
                seconds = rng.randrange(8 * 3600, 18 * 3600)
            offset = _offset(base + day, source)
            when = _instant(base + day, seconds, offset)
            timed.append([when, offset, event_type, source, payload])
        # Same-day events of one case keep their planned order.
        for i in range(1, len(timed)):
            if timed[i][0] <= timed[i - 1][0]:
                timed[i][0] = timed[i - 1][0] + rng.randrange(1, 300)
        out = []
        number = self.number
        for when, offset, event_type, source, payload in timed:
            if when >= as_of:
                break
            # Envelope values are plain ASCII with nothing to escape: format them directly.
            line = (
                f'{{"event_id":"{_uuid4(rng)}","schema_version":1,"type":"{event_type}",'
                f'"application_number":"{number}","occurred_at":"{_stamp(when, offset)}",'
                f'"source":"{source}","payload":{_encode(payload) if payload else "{}"}}}'
            )
            out.append((when, line))
        return out


def _day_order(planned: tuple[Any, ...]) -> tuple[int, int]:
    return planned[0], planned[1]


# ---------------------------------------------------------------- time helpers
#
# Instants are whole seconds since 1970-01-01T00:00Z. Eastern sources report in
# Ottawa office hours (08:00-18:00, offsets -05:00/-04:00), which stay on the same
# UTC date, so an event on a later day is always a later instant, whatever the
# sources' offsets.

_EPOCH = date(1970, 1, 1).toordinal()


@functools.lru_cache(maxsize=4096)
def _eastern_offset(ordinal: int) -> int:
    """Ottawa's UTC offset in seconds: DST from the 2nd Sunday of March to the 1st of November."""
    day = date.fromordinal(ordinal)
    march = date(day.year, 3, 8)
    dst_start = march + timedelta(days=(6 - march.weekday()) % 7)
    november = date(day.year, 11, 1)
    dst_end = november + timedelta(days=(6 - november.weekday()) % 7)
    return -4 * 3600 if dst_start <= day < dst_end else -5 * 3600


@functools.lru_cache(maxsize=8192)
def _iso_day(ordinal: int) -> str:
    return date.fromordinal(ordinal).isoformat()


def _offset(ordinal: int, source: str) -> int:
    return _eastern_offset(ordinal) if source in _EASTERN else 0


def _instant(ordinal: int, seconds: int, offset: int) -> int:
    """The instant at ``seconds`` into local day ``ordinal`` of a clock at ``offset``."""
    return (ordinal - _EPOCH) * 86400 + seconds - offset


def _stamp(instant: int, offset: int) -> str:
    """RFC 3339 with the clock's offset: ``2023-03-01T14:05:33-05:00`` or ``...Z``."""
    day, seconds = divmod(instant + offset, 86400)
    hours, rest = divmod(seconds, 3600)
    text = f"{_iso_day(day + _EPOCH)}T{hours:02d}:{rest // 60:02d}:{rest % 60:02d}"
    if offset == 0:
        return text + "Z"
    sign = "-" if offset < 0 else "+"
    return f"{text}{sign}{abs(offset) // 3600:02d}:{abs(offset) % 3600 // 60:02d}"


# ---------------------------------------------------------------- noise


def _add_noise(
    rng: random.Random,
    lines: list[str],
    duplicate_share: float,
    invalid_share: float,
) -> list[str]:
    n = len(lines)
    if n == 0:
        return lines
    keyed: list[tuple[float, int, str]] = [(float(i), 0, line) for i, line in enumerate(lines)]

    # Redeliveries: an exact copy a little (occasionally a lot) further down.
    if n > 1:
        for k in range(round(duplicate_share * n)):
            i = rng.randrange(n - 1)
            later = min(n - 1, i + 1 + int(rng.expovariate(1 / 40)))
            keyed.append((later + 0.5, 1 + k, lines[i]))

    # Poison: one of each kind in turn, at random places, built from non-PII events.
    count = round(invalid_share * n)
    kinds = [INVALID_KINDS[k % len(INVALID_KINDS)] for k in range(count)]
    rng.shuffle(kinds)
    plain = [line for line in lines if '"type":"application.received"' not in line] or lines
    for k, kind in enumerate(kinds):
        base = json.loads(rng.choice(plain))
        keyed.append((rng.uniform(0, n), 1 + k, _poison(rng, kind, base)))

    keyed.sort(key=lambda item: (item[0], item[1]))
    return [line for _, _, line in keyed]


def _poison(rng: random.Random, kind: str, event: dict[str, Any]) -> str:
    event["event_id"] = _uuid4(rng)
    if kind == "not_json":
        if rng.random() < 0.3:
            return rng.choice(
                ("<html><body>503 Service Unavailable</body></html>", "null,", "{'event_id': None}")
            )
        text = _dumps(event)
        return text[: rng.randrange(10, len(text) - 1)]  # cut off mid-message
    if kind == "unknown_type":
        event["type"] = rng.choice(UNKNOWN_TYPES)
    elif kind == "bad_application_number":
        number = event["application_number"]
        event["application_number"] = rng.choice(
            (number.lower(), number[:-1], f"{number[0]}-{number[1:]}", f"FX{number[2:]}")
        )
    elif kind == "missing_field":
        del event[rng.choice(REQUIRED_FIELDS)]
    elif kind == "bad_timestamp":
        stamp = event["occurred_at"]
        event["occurred_at"] = rng.choice(
            (
                stamp[:19],  # no offset
                stamp[:10],  # date only
                f"{stamp[:4]}-02-30T10:00:00Z",  # no such day
                f"{stamp[8:10]}/{stamp[5:7]}/{stamp[:4]} 10:00",  # not RFC 3339
            )
        )
    else:
        raise ValueError(f"unknown poison kind {kind!r}")
    return _dumps(event)


# ---------------------------------------------------------------- small helpers


_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_dumps = _encode


def _uuid4(rng: random.Random) -> str:
    """str(uuid.UUID(int=rng.getrandbits(128), version=4)), without the UUID object."""
    value = rng.getrandbits(128) & ~(0xC000 << 48) & ~(0xF000 << 64) | (0x8000 << 48) | (4 << 76)
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _weighted(rng: random.Random, choices: tuple[tuple[str, float], ...]) -> str:
    roll = rng.random()
    for value, weight in choices:
        roll -= weight
        if roll < 0:
            return value
    return choices[-1][0]


def _ascii(name: str) -> str:
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return "".join(c for c in folded.lower() if c.isalnum() or c == "-") or "client"


# ---------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, required=True, help="number of cases")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--duplicates", type=float, default=0.0, help="share of redelivered lines")
    parser.add_argument("--invalid", type=float, default=0.0, help="share of extra poison lines")
    parser.add_argument(
        "--start",
        type=date.fromisoformat,
        default=date(2023, 1, 1),
        help="first possible received date (YYYY-MM-DD)",
    )
    parser.add_argument("--output", "-o", default="-", help="file to write (default: stdout)")
    args = parser.parse_args(argv)
    try:
        lines = generate(args.cases, args.seed, args.duplicates, args.invalid, args.start)
    except ValueError as e:
        parser.error(str(e))
    if args.output == "-" and hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(encoding="utf-8")
    write(args.output, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
