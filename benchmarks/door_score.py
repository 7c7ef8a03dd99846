"""Door benchmark scoring: MQTT events -> the clip's visits -> verdicts -> totals. Pure functions.

Time base: ``captured[i]`` is the wall-clock time at which the daemon got frame ``i`` of the
clip (bench_door.capture_times measures it); frame ``i`` is on screen from then on.

Attribution: an event belongs to the visit on screen in the frame it was decided from (its
``frame_timestamp``, the capture time of the latest frame the decision used), give or take
``SLACK_FRAMES``. Not ``first_seen`` (a track might start before the visit it decides). An
event with a ``visit_id`` already seen goes where that daemon visit's first event went: an
upgrade is about the same visit as the ``unknown`` it corrects. An event without
``frame_timestamp`` falls back to its arrival time: it belongs to the last visit whose face
appeared before it arrived. Events decided from a frame of the empty door (a false face)
belong to no visit and are listed as unattributed.

Muted decisions: the daemon publishes nothing for a decision its cooldown suppresses; it logs
it (edge/daemon/decide.py) and bench_door times each such log line as it arrives. A muted
decision is attributed by that time, like an event without ``frame_timestamp``.

Verdicts (per visit). A household visit is exactly one of: *recognised* (an event names the
member, an upgrade included; *first called unknown* when an ``unknown`` came before that
name), *muted by own cooldown* (no event names them but the daemon did, and muted it because
an earlier visit of theirs had an event less than ``cooldown.person_s`` before: for the user
the same visit, so neither recognised nor missed), or missed: *called unknown*, *muted after
a wrong name* (the name's cooldown was started by someone else named as this member, or by
an event not found: the user got that wrong event and nothing for the member), *named
wrongly* only (another name and no ``unknown``) or *silent*. Which visit started a cooldown
is found from the log line's "had an event N s ago" (:func:`cooldown_starter`).

A visit has a *wrong name* when a published event names anyone else (any name, for a
stranger; the initial ``unknown`` of an upgrade is not one), a *muted wrong name* when only
a muted decision did. A stranger is reported *unknown once* when the visit got exactly one
event and it was ``unknown``; *silent* when it got none, *muted* when silent because the
unknown cooldown took them for an earlier stranger. *Extra events* are those beyond a
visit's first, upgrades not counted (they are the "first called unknown" column).

Latency: the arrival of the first event naming the member (household: the upgrade, for a
visit first called unknown) or of the first ``unknown`` (stranger), minus the capture time of
the visit's first face frame. The recognition rate is over household visits not muted by
their own cooldown.
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
import re
import statistics
from collections.abc import Iterable, Sequence

from benchmarks.door_clips import Visit

SLACK_FRAMES = 2
#: How far a muted decision's "had an event N s ago" may point from that event's arrival: the
#: age is logged to 0.1 s, and the event's publishing and the log line's reading each lag.
STARTER_MATCH_S = 1.0
#: How edge/daemon/decide.py logs a decision its cooldown muted.
SUPPRESSED = re.compile(r"\b(recognized|unknown) suppressed: (.+) had an event ([0-9.]+) s ago")

#: The verdicts counted over household visits (recognised, muted_own and the missed ones
#: partition them; first_called_unknown is a part of recognised).
HOUSEHOLD_VERDICTS = (
    "recognised",
    "first_called_unknown",
    "muted_own",
    "missed_unknown",
    "missed_muted_after_wrong",
    "missed_named_wrongly",
    "missed_silent",
)

Event = tuple[float, dict]  # (arrival time at the subscriber, payload)
Muted = tuple[float, dict]  # (when the daemon logged it, muted_decision's dict)


def muted_decision(line: str) -> dict | None:
    """``{"type", "person", "age_s"}`` of a daemon log line saying that a cooldown muted a
    decision (``person`` None for ``unknown``), None for any other line."""
    m = SUPPRESSED.search(line)
    if m is None:
        return None
    kind, who, age = m.groups()
    return {"type": kind, "person": who if kind == "recognized" else None, "age_s": float(age)}


def frame_at(timestamp: float, captured: Sequence[float]) -> int:
    """The frame whose capture time is nearest to ``timestamp``."""
    i = bisect.bisect_left(captured, timestamp)
    if i == len(captured) or (i > 0 and timestamp - captured[i - 1] <= captured[i] - timestamp):
        return max(0, i - 1)
    return i


def _seconds(iso: str) -> float:
    return dt.datetime.fromisoformat(iso).timestamp()


def owner(visits: Sequence[Visit], event: Event, captured: Sequence[float]) -> int | None:
    """The position in ``visits`` (sorted by first frame) of the visit an event is about,
    from its deciding frame or else its arrival (``visit_id`` is visit_records' business)."""
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
    visits: Sequence[Visit],
    events: Iterable[Event],
    captured: Sequence[float],
    muted: Iterable[Muted] = (),
) -> tuple[list[dict], list[dict]]:
    """(one record per visit with its events and muted decisions, the unattributed ones).
    Event entries keep what the verdicts need plus ``visit_id``/``upgrade`` when the daemon
    sends them; an unattributed muted decision is marked ``"muted": True``."""
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
            "muted": [],
        }
        for v in visits
    ]
    loose: list[dict] = []
    daemon_visits: dict[str, int | None] = {}  # visit_id -> where its first event went
    named: list[tuple[float, str, int | None]] = []  # (arrival, name, where it went)
    for arrival, payload in sorted(events, key=lambda e: e[0]):
        entry = {"type": payload.get("type"), "person": payload.get("person")}
        entry.update({k: payload[k] for k in ("visit_id", "upgrade") if k in payload})
        if "frame_timestamp" in payload:
            entry["frame"] = frame_at(_seconds(payload["frame_timestamp"]), captured)
        vid = payload.get("visit_id")
        if vid is not None and vid in daemon_visits:
            i = daemon_visits[vid]
        else:
            i = owner(visits, (arrival, payload), captured)
            if vid is not None:
                daemon_visits[vid] = i
        _place(entry, i, arrival, "events", records, loose, captured)
        if entry["person"] is not None:
            named.append((arrival, entry["person"], i))
    for logged, decision in sorted(muted, key=lambda m: m[0]):
        entry = dict(decision)
        if entry["person"] is not None:
            entry["muted_by"] = cooldown_starter(entry, logged, named, records)
        _place(
            entry, owner(visits, (logged, {}), captured), logged, "muted", records, loose, captured
        )
    return records, loose


def cooldown_starter(
    decision: dict,
    logged: float,
    named: Sequence[tuple[float, str, int | None]],
    records: list[dict],
) -> str | None:
    """Who was at the door for the event that started the cooldown muting ``decision`` (a
    name): the clip's person of the visit holding the published event with that name that
    arrived nearest to ``logged - age_s``, within ``STARTER_MATCH_S``. None when there is no
    such event or it belongs to no visit. The member themself: their own earlier visit; anyone
    else: a wrong name muted this visit."""
    at = logged - decision["age_s"]
    near = [(abs(t - at), i) for t, name, i in named if name == decision["person"]]
    near = [(d, i) for d, i in near if d <= STARTER_MATCH_S]
    if not near:
        return None
    i = min(near, key=lambda n: n[0])[1]
    return None if i is None else records[i]["person"]


def _place(
    entry: dict,
    i: int | None,
    at: float,
    key: str,
    records: list[dict],
    loose: list[dict],
    captured: Sequence[float],
) -> None:
    """Add ``entry`` (arrived at ``at``) to record ``i``'s ``key`` list, or to ``loose``."""
    if i is None:
        entry["arrival_s"] = round(at - captured[0], 3)
        loose.append({**entry, "muted": True} if key == "muted" else entry)
        return
    entry["latency_ms"] = round(1000 * (at - captured[records[i]["first_frame"]]), 1)
    records[i][key].append(entry)


def verdict(record: dict) -> dict:
    """What one visit record counts for (see the module docstring)."""
    events, muted = record["events"], record.get("muted", [])
    member = record["person"] if record["household"] else None
    right = [k for k, e in enumerate(events) if member is not None and e["person"] == member]
    unknown = [k for k, e in enumerate(events) if e["person"] is None]
    wrong = any(e["person"] is not None and e["person"] != member for e in events)
    muted_wrong = any(m["person"] is not None and m["person"] != member for m in muted)
    recognised = bool(right)
    own_name = [m for m in muted if member is not None and m["person"] == member]
    muted_own = not recognised and any(m.get("muted_by") == member for m in own_name)
    missed = member is not None and not recognised and not muted_own
    muted_after_wrong = missed and not unknown and bool(own_name)
    first = right if record["household"] else unknown
    return {
        "recognised": recognised,
        "first_called_unknown": recognised and bool(unknown) and unknown[0] < right[0],
        "muted_own": muted_own,
        "missed_unknown": missed and bool(unknown),
        "missed_muted_after_wrong": muted_after_wrong,
        "missed_named_wrongly": missed and bool(events) and not unknown and not own_name,
        "missed_silent": missed and not events and not own_name,
        "wrong_name": wrong,
        "wrong_name_muted": muted_wrong and not wrong,
        "unknown_once": len(events) == 1 and len(unknown) == 1,
        "silent": not events,
        "stranger_muted": not events and any(m["type"] == "unknown" for m in muted),
        "extra_events": max(0, len(events) - 1 - sum(bool(e.get("upgrade")) for e in events)),
        "latency_ms": events[first[0]]["latency_ms"] if first else None,
    }


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..1): a value that was measured, no interpolation."""
    s = sorted(values)
    return s[max(0, math.ceil(q * len(s)) - 1)]


def totals(records: Iterable[dict]) -> dict:
    """Counts and latency lists over visit records (any mix of seeds and conditions).
    ``household_scored``: household visits not muted by their own cooldown, the denominator
    of the recognition rate."""
    keys = (
        "household",
        "household_scored",
        *HOUSEHOLD_VERDICTS,
        "strangers",
        "unknown_once",
        "silent_strangers",
        "strangers_muted",
        "wrong_name_visits",
        "wrong_name_muted_visits",
        "extra_events",
    )
    out: dict = dict.fromkeys(keys, 0) | {"latency_recognised_ms": [], "latency_unknown_ms": []}
    for record in records:
        v = verdict(record)
        out["wrong_name_visits"] += v["wrong_name"]
        out["wrong_name_muted_visits"] += v["wrong_name_muted"]
        out["extra_events"] += v["extra_events"]
        if record["household"]:
            out["household"] += 1
            out["household_scored"] += not v["muted_own"]
            for key in HOUSEHOLD_VERDICTS:
                out[key] += v[key]
            if v["latency_ms"] is not None:
                out["latency_recognised_ms"].append(v["latency_ms"])
        else:
            out["strangers"] += 1
            out["unknown_once"] += v["unknown_once"]
            out["silent_strangers"] += v["silent"]
            out["strangers_muted"] += v["stranger_muted"]
            if v["latency_ms"] is not None:
                out["latency_unknown_ms"].append(v["latency_ms"])
    return out


def latency_text(values: Sequence[float]) -> str:
    """``median / p95`` in ms, or ``-`` without values."""
    if not values:
        return "-"
    return f"{statistics.median(values):.0f} / {percentile(values, 0.95):.0f}"
