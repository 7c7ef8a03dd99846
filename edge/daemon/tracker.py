"""IoU tracker: associates faces across frames so that one visit is one track.

Greedy matching by box IoU (highest first) is enough at a door: a handful of faces,
slow movement, 5-30 fps. A track ends after ``max_missed`` frames without a match.
No appearance model -- two people swapping places within one frame gap may swap tracks,
which the decider tolerates because a name needs agreeing frames (or their mean).
"""

from __future__ import annotations

from dataclasses import dataclass

Box = tuple[int, int, int, int]


def iou(a: Box, b: Box) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    ix = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    iy = max(0, min(ay + ah, by + bh) - max(ay, by))
    inter = ix * iy
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


@dataclass
class Track:
    """A face followed across frames: where it was last, since when, frames since it was seen.

    What was seen of it (samples, decisions) is the decider's (:class:`edge.daemon.decide.Visit`).
    """

    id: int
    box: Box
    first_seen: float  # capture time of its first frame
    missed: int = 0


class Tracker:
    def __init__(self, iou_threshold: float = 0.3, max_missed: int = 8) -> None:
        self.iou_threshold = iou_threshold
        self.max_missed = max_missed
        self.tracks: dict[int, Track] = {}
        self._next = 1

    def update(self, boxes: list[Box], timestamp: float) -> tuple[list[Track], list[Track]]:
        """Assign ``boxes`` to tracks. Returns (track per box, tracks that ended)."""
        pairs = sorted(
            (
                (iou(t.box, b), tid, i)
                for tid, t in self.tracks.items()
                for i, b in enumerate(boxes)
            ),
            reverse=True,
        )
        assigned: dict[int, Track] = {}
        used: set[int] = set()
        for score, tid, i in pairs:
            if score < self.iou_threshold:
                break
            if tid in used or i in assigned:
                continue
            used.add(tid)
            assigned[i] = self.tracks[tid]
        out: list[Track] = []
        for i, b in enumerate(boxes):
            t = assigned.get(i)
            if t is None:
                t = Track(self._next, b, timestamp)
                self._next += 1
                self.tracks[t.id] = t
                used.add(t.id)
            t.box = b
            t.missed = 0
            out.append(t)
        ended: list[Track] = []
        for tid in list(self.tracks):
            if tid not in used:
                t = self.tracks[tid]
                t.missed += 1
                if t.missed > self.max_missed:
                    ended.append(self.tracks.pop(tid))
        return out, ended

    def flush(self) -> list[Track]:
        """End all tracks (shutdown, camera lost)."""
        ended = list(self.tracks.values())
        self.tracks.clear()
        return ended
