"""How the frames of one track become a name: the two ``tracking.decision`` strategies.

Both read the usable samples of a track (each with its per-frame match, embedding and quality
weight) and return a :class:`Reading`: a confident name, or none yet. The decider
(:mod:`edge.daemon.decide`) turns readings into events; the strategy only weighs evidence.

``vote`` (the original rule, ``tracking.decision = "vote"``): a name needs
``confirm_frames`` frames that each matched that person on their own (threshold and margin)
and hold at least ``AGREE`` of the track's quality weight. Frames are judged one at a time, so a visit whose first photos were poor (matching
nobody) keeps a majority against the name even after several good frames.

``aggregate`` (the default): the quality-weighted mean of the track's embeddings,
renormalised, is matched against the gallery with the same threshold and margin; its person is named once the last
``confirm_frames`` usable frames also matched that person, each on its own. The mean replaces
vote's share rule as the guard against frames that disagree (a minority of lucky frames is
diluted, not counted; a late run of frames matching someone else cannot outweigh a track that
looked like another person), so earlier poor views no longer outvote later good ones, and a
bigger, sharper late view weighs more and moves the mean: the outcome can change while the
track lasts. The run of agreeing frames is the second guard, because the mean alone is not
enough: the threshold is calibrated on single frames, averaging removes the noise that pulls
single-frame cosines down, and the mean is re-tested on every frame, so a look-alike
stranger's mean clears the threshold about as often as one of their frames does (measured on
the door benchmark: a stranger was upgraded to a look-alike household member at a mean of
0.577 with 3 scattered matching frames out of 7; the unit test
``test_a_look_alike_stranger_with_lucky_frames_is_never_named`` shows the same).

Measured (docs/BENCHMARKS.md, "Decision rules replayed" and "Door benchmark"): at the shipped
operating point, on 26 replayed door clips (benchmarks/bench_decisions.py: the real tracker
and decider over every frame's recognition; 624 household visits of members enrolled from one
photo, 312 strangers), ``aggregate`` recognised 458 household visits (73%) and ``vote`` 412
(66%), with the same 3 wrong-name visits (look-alike strangers, 1% of strangers: the model's
limit at this threshold, not the rule's). Where vote loses is the visit whose first photo
matches nobody and whose second matches well: its early unmatched frames keep 40% of the weight
against the name. ``aggregate`` is the default. With dlib's encoder (the default since
2026-12-05) a run of ``confirm_frames = 2`` behind the mean named 617 of those visits instead
of 613 with 3, and 68 of the door benchmark's 72 instead of 66, with no more wrong names; 1
(the mean alone) named 619 but 3 strangers wrongly: 2 was the default until 2026-12-07. With
the detector's landmarks refined at full resolution (``detector.refine_px``) a look-alike's
frames are steadier too, and 2 named 3 of the 312 strangers where 3 named none and 618 visits
(docs/BENCHMARKS.md, "Landmarks at full resolution"): 3 is the default. (An earlier run at a
lower threshold, 0.5725, had found the opposite, 62 vs 60 recognised with 5 vs 3 wrong names in
3 seeds: with a looser threshold single lucky frames were common enough for the mean to
collect them.)

Tried and removed (2026-12-07, docs/BENCHMARKS.md "A slack for the run of agreeing frames"):
letting a frame up to 0.01-0.05 under the threshold, with the mean's person as its best
candidate, extend the run. It named visits sooner (p95 400 -> 133-333 ms of clip time) and
2-4 strangers of 312 as members: each frame of the run must match on its own.

Both share the instant rule: a track whose frames all matched the same person, with evidence
clearing the threshold by ``instant_above``, is named from its first frame
(``instant_above < 0`` turns it off): the last frame's score for ``vote``, the mean's for
``aggregate``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from edge.matching import Match

AGREE = 0.6  # vote: share of the track's quality weight the named frames must hold

MatchFn = Callable[[np.ndarray], Match]


@dataclass(frozen=True)
class Sample:
    """One usable frame of a track: its match, embedding, quality weight and where it was."""

    match: Match
    embedding: np.ndarray
    weight: float
    box: tuple[int, int, int, int]
    timestamp: float
    crop: np.ndarray | None = None


@dataclass(frozen=True)
class Reading:
    """What a strategy makes of a track so far.

    ``person`` is a confident name or None; ``score``/``second`` back it (or the best
    candidate's when None); ``evidence`` are the samples it rests on; ``leaning`` means a name
    is ahead but not yet confirmed, so "unknown" should wait.
    """

    person: str | None
    score: float
    second: float
    evidence: Sequence[Sample]
    leaning: bool = False


class Strategy(Protocol):
    def read(self, samples: Sequence[Sample]) -> Reading: ...


def track_embedding(samples: Sequence[Sample]) -> np.ndarray:
    """The quality-weighted mean of the samples' unit embeddings, renormalised to unit length."""
    weights = np.array([s.weight for s in samples], np.float32)
    mean = weights @ np.stack([s.embedding for s in samples]).astype(np.float32)
    return mean / max(float(np.linalg.norm(mean)), 1e-12)


def _weighted(samples: Sequence[Sample], key: Callable[[Sample], float]) -> float:
    total = sum(s.weight for s in samples) or 1.0
    return sum(key(s) * s.weight for s in samples) / total


def _clears_instant_bar(m: Match, instant_above: float) -> bool:
    return instant_above >= 0 and m.reason == "match" and m.score >= m.threshold + instant_above


class VoteStrategy:
    """Per-frame voting: ``confirm_frames`` matching frames holding ``AGREE`` of the weight."""

    def __init__(self, confirm_frames: int, instant_above: float) -> None:
        self.confirm_frames = confirm_frames
        self.instant_above = instant_above

    def read(self, samples: Sequence[Sample]) -> Reading:
        last = samples[-1].match
        if _clears_instant_bar(last, self.instant_above) and all(
            s.match.reason == "match" and s.match.name == last.name for s in samples
        ):
            return Reading(last.name, last.score, last.second, samples[-1:])
        by_name: dict[str, list[Sample]] = defaultdict(list)
        for s in samples:
            if s.match.name is not None and s.match.reason == "match":
                by_name[s.match.name].append(s)
        total = sum(s.weight for s in samples) or 1.0
        best = max(by_name.items(), key=lambda kv: sum(s.weight for s in kv[1]), default=None)
        share = 0.0 if best is None else sum(s.weight for s in best[1]) / total
        if best is not None and len(best[1]) >= self.confirm_frames and share >= AGREE:
            hits = best[1]
            score = _weighted(hits, lambda s: s.match.score)
            return Reading(best[0], score, _weighted(hits, lambda s: s.match.second), hits)
        score = _weighted(samples, lambda s: s.match.score)
        second = _weighted(samples, lambda s: s.match.second)
        return Reading(None, score, second, samples, leaning=share >= AGREE)


class AggregateStrategy:
    """The track's quality-weighted mean embedding names the person, backed by a run of frames."""

    def __init__(self, match: MatchFn, confirm_frames: int, instant_above: float) -> None:
        self.match = match
        self.confirm_frames = confirm_frames
        self.instant_above = instant_above

    def read(self, samples: Sequence[Sample]) -> Reading:
        m = self.match(track_embedding(samples))
        if m.reason != "match":
            return Reading(None, m.score, m.second, samples)
        recent = samples[-self.confirm_frames :]
        agree = all(s.match.reason == "match" and s.match.name == m.name for s in recent)
        run = agree and len(samples) >= self.confirm_frames
        early = len(samples) < self.confirm_frames
        instant = agree and early and _clears_instant_bar(m, self.instant_above)
        if run or instant:
            return Reading(m.name, m.score, m.second, recent)
        return Reading(None, m.score, m.second, samples, leaning=True)


def strategy_for(
    decision: str, match: MatchFn, confirm_frames: int, instant_above: float
) -> Strategy:
    """The strategy named by ``tracking.decision`` (validated in config.py)."""
    if decision == "vote":
        return VoteStrategy(confirm_frames, instant_above)
    return AggregateStrategy(match, confirm_frames, instant_above)
