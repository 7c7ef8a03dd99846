"""Door benchmark scoring: MQTT events -> the clip's visits -> verdicts -> totals. Pure functions.

Time base: ``captured[i]`` is the wall-clock time at which the daemon got frame ``i`` of the
clip (bench_door.capture_times measures it); frame ``i`` is on screen from then on.

Attribution: an event belongs to the visit on screen in the frame it was decided from (its
``frame_timestamp``, the capture time of the latest frame the decision used), give or take
``SLACK_FRAMES``. Not ``first_seen`` (a track, or a visit of the new decision logic, might
start before the visit it decides) and not ``visit_id``: that names the daemon's visit, not
one of ours. An event without ``frame_timestamp`` falls back to its arrival time: it belongs
to the last visit whose face appeared before it arrived. Events decided from a frame of the
empty door (a false face) belong to no visit and are listed as unattributed.

Verdicts (per visit): a household visit is *recognised* when one of its events names that
member; a visit has a *wrong name* when an event names anyone else (any name, for a
stranger); a stranger is reported *unknown once* when the visit got exactly one event and it
was ``unknown``; *silent* when it got none; *extra events* are those beyond a visit's first.
Latency: the arrival of the first event naming the member (household) or the first
``unknown`` (stranger), minus the capture time of the visit's first face frame.
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
import statistics
from collections.abc import Iterable, Sequence

from benchmarks.door_clips import Visit

SLACK_FRAMES = 2

Event = tuple[float, dict]  # (arrival time at the subscriber, payload)


def frame_at(timestamp: float, captured: Sequence[float]) -> int:
    """The frame whose capture time is nearest to ``timestamp``."""
    i = bisect.bisect_left(captured, timestamp)
    if i == len(captured) or (i > 0 and timestamp - captured[i - 1] <= captured[i] - timestamp):
        return max(0, i - 1)
    return i


def _seconds(iso: str) -> float:
    return dt.datetime.fromisoformat(iso).timestamp()


def owner(visits: Sequence[Visit], event: Event, captured: Sequence[float]) -> int | None:
    """The position in ``visits`` (sorted by first frame) of the visit an event is about."""
    arrival, payload = event
    if "frame_timestamp" in payload:
        frame = frame_at(_seconds(payload["frame_timestamp"]), captured)
        for i, v in enumerate(visits):
            if v.first_frame - SLACK_FRAMES <= frame <= v.last_frame + SLACK_FRAMES:
                return i
        return None
    found = None
    for i, v in enumerate(visits):
        if captured[v.first_frame] <= arrival:
            found = i
    return found


def visit_records(
    visits: Sequence[Visit], events: Iterable[Event], captured: Sequence[float]
) -> tuple[list[dict], list[dict]]:
    """(one record per visit with its events, the unattributed events). Event entries keep
    what the verdicts need plus ``visit_id``/``upgrade`` when the daemon sends them."""
    visits = sorted(visits, key=lambda v: v.first_frame)
    records = [
        {
            "index": v.index,
            "person": v.person,
            "household": v.household,
            "condition": v.condition,
            "first_frame": v.first_frame,
            "last_frame": v.last_frame,
            "events": [],
        }
        for v in visits
    ]
    loose: list[dict] = []
    for arrival, payload in sorted(events, key=lambda e: e[0]):
        entry = {"type": payload.get("type"), "person": payload.get("person")}
        entry.update({k: payload[k] for k in ("visit_id", "upgrade") if k in payload})
        if "frame_timestamp" in payload:
            entry["frame"] = frame_at(_seconds(payload["frame_timestamp"]), captured)
        i = owner(visits, (arrival, payload), captured)
        if i is None:
            entry["arrival_s"] = round(arrival - captured[0], 3)
            loose.append(entry)
            continue
        entry["latency_ms"] = round(1000 * (arrival - captured[visits[i].first_frame]), 1)
        records[i]["events"].append(entry)
    return records, loose


def verdict(record: dict) -> dict:
    """What one visit record counts for (see the module docstring)."""
    events = record["events"]
    person = record["person"] if record["household"] else None
    right = [e for e in events if person is not None and e["person"] == person]
    unknown = [e for e in events if e["person"] is None]
    wrong = [e for e in events if e["person"] is not None and e["person"] != person]
    first = right if record["household"] else unknown
    return {
        "recognised": bool(right),
        "wrong_name": bool(wrong),
        "called_unknown": bool(unknown),
        "unknown_once": len(events) == 1 and len(unknown) == 1,
        "silent": not events,
        "extra_events": max(0, len(events) - 1),
        "latency_ms": first[0]["latency_ms"] if first else None,
    }


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..1): a value that was measured, no interpolation."""
    s = sorted(values)
    return s[max(0, math.ceil(q * len(s)) - 1)]


def totals(records: Iterable[dict]) -> dict:
    """Counts and latency lists over visit records (any mix of seeds and conditions)."""
    out = {
        "household": 0,
        "recognised": 0,
        "household_unknown": 0,
        "strangers": 0,
        "unknown_once": 0,
        "silent_strangers": 0,
        "wrong_name_visits": 0,
        "extra_events": 0,
        "latency_recognised_ms": [],
        "latency_unknown_ms": [],
    }
    for record in records:
        v = verdict(record)
        out["wrong_name_visits"] += v["wrong_name"]
        out["extra_events"] += v["extra_events"]
        if record["household"]:
            out["household"] += 1
            out["recognised"] += v["recognised"]
            out["household_unknown"] += v["called_unknown"]
            if v["latency_ms"] is not None:
                out["latency_recognised_ms"].append(v["latency_ms"])
        else:
            out["strangers"] += 1
            out["unknown_once"] += v["unknown_once"]
            out["silent_strangers"] += v["silent"]
            if v["latency_ms"] is not None:
                out["latency_unknown_ms"].append(v["latency_ms"])
    return out


def latency_text(values: Sequence[float]) -> str:
    """``median / p95`` in ms, or ``-`` without values."""
    if not values:
        return "-"
    return f"{statistics.median(values):.0f} / {percentile(values, 0.95):.0f}"
