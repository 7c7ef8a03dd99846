"""Turns per-frame matches of a track into at most one event per visit.

Quality gate: faces smaller than ``min_face_px`` or blurrier than ``min_sharpness``
(variance of Laplacian) are not scored at all.

Weighting: ``weight = sqrt(area) * min(1, sharpness / (2*min_sharpness))`` -- bigger,
sharper faces count more.

Recognized: a person is declared once ``confirm_frames`` usable frames matched that
person (score >= threshold and margin satisfied, i.e. Match.reason == "match") *and*
they hold >= ``agree`` of the track's usable weight. This is the main protection against
a false "Alice": one lucky frame of a stranger is not enough.

Instant: a usable frame whose score is at least ``instant_above`` over the threshold is
recognized at once, provided every usable frame of the track so far matched that same person
(a stranger's one lucky frame after frames matching nobody still needs ``confirm_frames``).
A clearly seen household member is then announced from the first frame instead of after
``confirm_frames`` (at 15 fps that saves 130 ms). The bar is a strict operating point: its
rates for the shipped model are in docs/MODEL.md and benchmarks/bench_matching.py.
``instant_above < 0`` turns it off.

Unknown: after ``unknown_frames`` usable frames where nobody reached the above, or when
a track ends with >= 2 usable frames and no decision. Never "recognized" at track end
from fewer than ``confirm_frames`` frames: a missed visit is better than a wrong name.

Cooldown: per person (and one for unknowns) so someone standing at the door is one
event; suppressed decisions are counted.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

from edge.daemon.events import Decision
from edge.daemon.tracker import Sample, Track


class Decider:
    def __init__(
        self,
        *,
        confirm_frames: int = 3,
        unknown_frames: int = 5,
        min_face_px: int = 40,
        min_sharpness: float = 20.0,
        person_cooldown_s: float = 60.0,
        unknown_cooldown_s: float = 30.0,
        agree: float = 0.6,
        end_min_frames: int = 2,
        instant_above: float = 0.10,
    ) -> None:
        self.confirm_frames = confirm_frames
        self.unknown_frames = unknown_frames
        self.min_face_px = min_face_px
        self.min_sharpness = min_sharpness
        self.person_cooldown_s = person_cooldown_s
        self.unknown_cooldown_s = unknown_cooldown_s
        self.agree = agree
        self.end_min_frames = end_min_frames
        self.instant_above = instant_above
        self._last: dict[str | None, float] = {}
        self.counters: dict[str, int] = defaultdict(int)

    # -- quality -------------------------------------------------------------------------
    def sample_from(self, result: Any, timestamp: float) -> Sample | None:
        """A Sample from a FaceResult-like object, or None when it fails the quality gate."""
        x, y, w, h = (int(v) for v in result.face.box)
        if min(w, h) < self.min_face_px:
            self.counters["skipped_small"] += 1
            return None
        sharp = float(result.sharpness)
        if sharp < self.min_sharpness:
            self.counters["skipped_blurry"] += 1
            return None
        weight = math.sqrt(w * h) * min(1.0, sharp / (2 * self.min_sharpness))
        m = result.match
        return Sample(
            m.name,
            float(m.score),
            float(m.second),
            float(m.threshold),
            m.reason,
            weight,
            (x, y, w, h),
            timestamp,
            getattr(result, "crop", None),
        )

    # -- decisions -----------------------------------------------------------------------
    def observe(self, track: Track, sample: Sample | None, now: float) -> Decision | None:
        if sample is not None:
            track.samples.append(sample)
            if len(track.samples) > 64:  # bound memory for someone standing for minutes
                del track.samples[0]
        if track.decided or sample is None:
            return None
        d = self._evaluate(track, now, ended=False)
        return self._gate(track, d, now)

    def end(self, track: Track, now: float) -> Decision | None:
        if track.decided:
            return None
        return self._gate(track, self._evaluate(track, now, ended=True), now)

    def _evaluate(self, track: Track, now: float, ended: bool) -> Decision | None:
        samples = track.samples
        if not samples:
            return None
        last = samples[-1]
        if (
            not ended
            and self.instant_above >= 0
            and last.name is not None
            and last.reason == "match"
            and last.score >= last.threshold + self.instant_above
            and all(s.reason == "match" and s.name == last.name for s in samples)
        ):
            return self._decision(track, "recognized", last.name, [last], now)
        total = sum(s.weight for s in samples)
        by_name: dict[str, list[Sample]] = defaultdict(list)
        for s in samples:
            if s.name is not None and s.reason == "match":
                by_name[s.name].append(s)
        best = max(by_name.items(), key=lambda kv: sum(s.weight for s in kv[1]), default=None)
        if best is not None:
            name, hits = best
            share = sum(s.weight for s in hits) / total
            if len(hits) >= self.confirm_frames and share >= self.agree:
                return self._decision(track, "recognized", name, hits, now)
        best_share = 0.0 if best is None else sum(s.weight for s in best[1]) / total
        # Unknown once enough frames agree on nobody; wait while a name holds the majority.
        if len(samples) >= self.unknown_frames and best_share < self.agree:
            return self._decision(track, "unknown", None, samples, now)
        if ended and len(samples) >= self.end_min_frames:
            return self._decision(track, "unknown", None, samples, now)
        return None

    def _decision(
        self, track: Track, kind: str, name: str | None, hits: list[Sample], now: float
    ) -> Decision:
        wsum = sum(s.weight for s in hits) or 1.0
        score = sum(s.score * s.weight for s in hits) / wsum
        second = sum(s.second * s.weight for s in hits) / wsum
        key = max(hits, key=lambda s: s.weight)
        return Decision(
            type=kind,
            person=name,
            score=score,
            second=second,
            threshold=key.threshold,
            box=key.box,
            track_id=track.id,
            track_frames=len(track.samples),
            first_seen=track.first_seen,
            decided_at=now,
            frame_timestamp=max(s.timestamp for s in hits),
            snapshot=key.crop,
        )

    def _gate(self, track: Track, d: Decision | None, now: float) -> Decision | None:
        if d is None:
            return None
        track.decided = True
        cooldown = self.person_cooldown_s if d.person is not None else self.unknown_cooldown_s
        last = self._last.get(d.person)
        if last is not None and now - last < cooldown:
            self.counters[f"cooldown_{d.type}"] += 1
            return None
        self._last[d.person] = now
        self.counters[d.type] += 1
        return d
