"""Figures for coordinators: delays (median, 90th percentile), counts per school and month."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from storage.models import Incident


@dataclass(frozen=True)
class Spread:
    """A set of delays in seconds: how many, their median and 90th percentile."""

    count: int
    median: float | None
    p90: float | None


def spread(values: Sequence[float]) -> Spread:
    """Median and 90th percentile (linear interpolation between closest ranks)."""
    ordered = sorted(values)
    if not ordered:
        return Spread(0, None, None)
    if len(ordered) == 1:
        return Spread(1, ordered[0], ordered[0])
    p90 = statistics.quantiles(ordered, n=10, method="inclusive")[8]
    return Spread(len(ordered), statistics.median(ordered), p90)


@dataclass(frozen=True)
class Figures:
    """Everything the statistics page shows."""

    total: int
    to_911: Spread
    to_ack: Spread
    delays_911: list[float]
    per_school: list[tuple[str, int]]
    per_month: list[tuple[str, int]]
    outcomes: dict[str, int]


def months_between(first: datetime, last: datetime) -> list[str]:
    """Every month from first to last, as YYYY-MM."""
    year, month = first.year, first.month
    months = []
    while (year, month) <= (last.year, last.month):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def compute(
    incidents: Sequence[Incident],
    acknowledgements: Iterable[tuple[int, datetime, datetime]],
    zone: ZoneInfo,
    school_names: Mapping[str, str],
) -> Figures:
    """The figures of a set of incidents (already limited to what the reader may see)."""
    delays_911 = [
        (i.police_called_at - i.opened_at).total_seconds()
        for i in incidents
        if i.police_called_at is not None
    ]
    known = {i.id for i in incidents}
    delays_ack = [
        (acked - started).total_seconds()
        for incident_id, started, acked in acknowledgements
        if incident_id in known
    ]
    schools = Counter(i.school_id for i in incidents)
    per_school = sorted(
        ((school_names.get(s, s), n) for s, n in schools.items()), key=lambda p: (-p[1], p[0])
    )
    local = [i.opened_at.astimezone(zone) for i in incidents]
    months = Counter(f"{d.year:04d}-{d.month:02d}" for d in local)
    per_month = (
        [(m, months.get(m, 0)) for m in months_between(min(local), max(local))][-24:]
        if local
        else []
    )
    outcomes = Counter(i.outcome for i in incidents if i.outcome)
    return Figures(
        total=len(incidents),
        to_911=spread(delays_911),
        to_ack=spread(delays_ack),
        delays_911=delays_911,
        per_school=per_school,
        per_month=per_month,
        outcomes={k: outcomes.get(k, 0) for k in ("impulsive", "malicious")},
    )


BUCKETS = (
    (5, "< 5 min"),
    (10, "5–10 min"),
    (15, "10–15 min"),
    (30, "15–30 min"),
    (60, "30–60 min"),
)


def histogram(delays: Sequence[float]) -> list[tuple[str, int]]:
    """Delays in seconds sorted into buckets of minutes."""
    counts = [0] * (len(BUCKETS) + 1)
    for seconds in delays:
        minutes = seconds / 60
        index = next((n for n, (top, _) in enumerate(BUCKETS) if minutes < top), len(BUCKETS))
        counts[index] += 1
    labels = [label for _, label in BUCKETS] + ["≥ 60 min"]
    return list(zip(labels, counts, strict=True))
