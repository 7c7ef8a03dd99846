"""Turns the frames of a track into the events of one visit.

A visit is one track; it gets a UUID (``visit_id``) that every event of the visit carries.

Quality gate: faces smaller than ``tracking.min_face_px`` or blurrier than
``tracking.min_sharpness`` (variance of the Laplacian) are not scored. Weight of a usable
frame: ``sqrt(area) * min(1, sharpness / (2 * min_sharpness))``: bigger, sharper faces count
more. How samples become a name is the strategy's business (``tracking.decision``, see
:mod:`edge.daemon.strategies`).

Outcomes of a visit:

- ``recognized`` as soon as the strategy names someone. Final: a name is never withdrawn.
- ``unknown`` once the track has ``tracking.unknown_frames`` usable frames, has lasted
  ``tracking.unknown_after_s`` and no name is ahead; or when a track ends undecided with at
  least ``END_MIN_FRAMES`` usable frames. Never a name at track end from weaker evidence than
  during the track: a missed name is better than a wrong one.
- upgrade: with ``tracking.upgrade``, a visit decided ``unknown`` stays open while its track
  lasts; when later frames give the strategy a confident name, a ``recognized`` decision with
  the same ``visit_id`` and ``upgrade = True`` follows. Measured against waiting longer before
  ``unknown`` (``unknown_after_s``) on the door benchmark (docs/MQTT.md, "Semantics"): upgrades
  recognised more household visits and kept the stranger's event fast.

Cooldowns are by identity, so one person standing at the door is one event while different
people each get theirs: a name is suppressed within ``cooldown.person_s`` of that name's last
event; an ``unknown`` only when the same face returns within ``cooldown.unknown_s`` (its track
embedding at least as close to a recent stranger's as a household member must be to their
template: the recognition threshold). A different stranger is always reported. An upgrade of a
published ``unknown`` is never suppressed: it corrects an event subscribers already have.
Suppressed decisions are counted (``cooldown_recognized``, ``cooldown_unknown``) and logged.
"""

from __future__ import annotations

import logging
import math
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edge.daemon.config import CooldownConfig, TrackingConfig
from edge.daemon.events import Decision
from edge.daemon.strategies import MatchFn, Reading, Sample, strategy_for, track_embedding
from edge.daemon.tracker import Track
from edge.scoring import Scoring

log = logging.getLogger(__name__)

MAX_SAMPLES = 64  # per track: bounds memory (and the aggregate's window) for a long stay
END_MIN_FRAMES = 2  # an undecided track that ends with this many usable frames is "unknown"


@dataclass
class Visit:
    """The decision state of one track."""

    id: str  # UUID4, the events' visit_id
    track_id: int
    first_seen: float
    samples: list[Sample] = field(default_factory=list)
    outcome: str | None = None  # None, "unknown" or "recognized"
    unknown_published: bool = False


class Cooldowns:
    """Remembers recent events by identity: names by name, strangers by track embedding."""

    def __init__(self, person_s: float, unknown_s: float, scoring: Scoring) -> None:
        self.person_s = person_s
        self.unknown_s = unknown_s
        self.scoring = scoring  # "the same face": the model's score reaches the threshold
        self._named: dict[str, float] = {}
        self._strangers: list[tuple[float, np.ndarray]] = []

    def seconds_since_same(self, d: Decision, embedding: np.ndarray, now: float) -> float | None:
        """Age of the same identity's last event while it still mutes ``d``, else None."""
        if d.person is not None:
            last = self._named.get(d.person)
            return now - last if last is not None and now - last < self.person_s else None
        self._strangers = [(t, e) for t, e in self._strangers if now - t < self.unknown_s]
        if not self._strangers:
            return None
        times, faces = zip(*self._strangers, strict=True)
        scores = self.scoring.pairwise(np.stack(faces), embedding)[:, 0]  # one product for all
        ages = [now - t for t, s in zip(times, scores, strict=True) if s >= d.threshold]
        return min(ages) if ages else None

    def record(self, d: Decision, embedding: np.ndarray, now: float) -> None:
        if d.person is not None:
            self._named[d.person] = now
        elif self.unknown_s > 0:
            self._strangers.append((now, embedding))


class Decider:
    def __init__(
        self, tracking: TrackingConfig, cooldown: CooldownConfig, match: MatchFn, scoring: Scoring
    ):
        self.tracking = tracking
        self.strategy = strategy_for(
            tracking.decision, match, tracking.confirm_frames, tracking.instant_above
        )
        self.cooldowns = Cooldowns(cooldown.person_s, cooldown.unknown_s, scoring)
        self.visits: dict[int, Visit] = {}
        self.counters: dict[str, int] = defaultdict(int)
        self.decisions = 0  # made, published or suppressed (the state is re-sent when it moves)

    # -- quality -------------------------------------------------------------------------
    def sample_from(self, result: Any, timestamp: float) -> Sample | None:
        """A Sample from a FaceResult-like object, or None when it fails the quality gate."""
        x, y, w, h = (int(v) for v in result.face.box)
        t = self.tracking
        if min(w, h) < t.min_face_px:
            self.counters["skipped_small"] += 1
            return None
        sharp = float(result.sharpness)
        if sharp < t.min_sharpness:
            self.counters["skipped_blurry"] += 1
            return None
        weight = math.sqrt(w * h) * min(1.0, sharp / (2 * t.min_sharpness))
        return Sample(result.match, result.embedding, weight, (x, y, w, h), timestamp, result.crop)

    # -- visits --------------------------------------------------------------------------
    def observe(self, track: Track, sample: Sample | None, now: float) -> Decision | None:
        """Add a frame of ``track`` (None: its face was not usable); a decision or None."""
        visit = self.visits.get(track.id)
        if visit is None:
            visit = self.visits[track.id] = Visit(str(uuid.uuid4()), track.id, track.first_seen)
        if sample is None:
            return None
        visit.samples.append(sample)
        del visit.samples[:-MAX_SAMPLES]
        if visit.outcome == "recognized" or (visit.outcome and not self.tracking.upgrade):
            return None
        return self._next_decision(visit, now, ended=False)

    def end(self, track: Track, now: float) -> Decision | None:
        """The track is gone: an undecided visit with enough frames is ``unknown``."""
        visit = self.visits.pop(track.id, None)
        if visit is None or visit.outcome is not None:
            return None
        return self._next_decision(visit, now, ended=True)

    def _next_decision(self, visit: Visit, now: float, ended: bool) -> Decision | None:
        if not visit.samples:
            return None
        reading = self.strategy.read(visit.samples)
        if reading.person is not None:
            return self._gate(visit, self._decision(visit, "recognized", reading, now), now)
        if visit.outcome is not None:
            return None  # already unknown: only an upgrade can follow
        n = len(visit.samples)
        waited = visit.samples[-1].timestamp - visit.first_seen >= self.tracking.unknown_after_s
        if (n >= self.tracking.unknown_frames and waited and not reading.leaning) or (
            ended and n >= END_MIN_FRAMES
        ):
            return self._gate(visit, self._decision(visit, "unknown", reading, now), now)
        return None

    def _decision(self, visit: Visit, kind: str, r: Reading, now: float) -> Decision:
        key = max(r.evidence, key=lambda s: s.weight)
        return Decision(
            type=kind,
            person=r.person,
            score=r.score,
            second=r.second,
            threshold=key.match.threshold,
            box=key.box,
            track_id=visit.track_id,
            visit_id=visit.id,
            track_frames=len(visit.samples),
            first_seen=visit.first_seen,
            decided_at=now,
            frame_timestamp=max(s.timestamp for s in r.evidence),
            upgrade=visit.unknown_published,
            snapshot=key.crop,
        )

    def _gate(self, visit: Visit, d: Decision, now: float) -> Decision | None:
        """Apply the cooldowns; count and log what they suppress."""
        visit.outcome = d.type
        self.decisions += 1
        embedding = track_embedding(visit.samples)
        age = None if d.upgrade else self.cooldowns.seconds_since_same(d, embedding, now)
        if age is not None:
            self.counters[f"cooldown_{d.type}"] += 1
            who = d.person or "the same unknown face"
            # what was decided, as an event line would say it: a muted wrong name is found here
            log.info(
                "%s suppressed: %s had an event %.1f s ago (score=%.3f track=%d visit=%s)",
                d.type,
                who,
                age,
                d.score,
                d.track_id,
                d.visit_id,
            )
            return None
        self.cooldowns.record(d, embedding, now)
        visit.unknown_published = d.type == "unknown"
        self.counters[d.type] += 1
        if d.upgrade:
            self.counters["upgrades"] += 1
        return d
