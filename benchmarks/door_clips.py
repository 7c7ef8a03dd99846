"""Door-camera clips for the door benchmark: household members and strangers walking up.

People come from LFW's ``pairsDevTest.txt`` (never trained on). A household member has one
enrolment photo and 2-3 other photos that their visits show; a stranger has two photos.
Each visit is one person walking up to a synthetic door (640x480, 15 frames/s): their
photos shown in turn (``FRAMES_PER_PHOTO`` frames each), the head pasted through a feathered
ellipse over a plain torso, growing and drifting towards the middle, in one of four
conditions, assigned evenly:

* ``normal``: the face (its detector box's shorter side) is aimed to grow from 60-70 px to
  115-135 px (measured: 50-130 px);
* ``small``: the face stays 40-60 px as the detector measures it (a porch camera, a visitor
  who stays back): just above the daemon's 40 px quality gate, where recognition is hardest;
* ``dark``: the whole frame at 0.2-0.35 brightness, gamma 1.0-1.2, Gaussian sensor noise
  (sigma 3-6 grey levels, fresh every frame);
* ``side-lit``: a strong horizontal light gradient across the head, one half in shadow
  (gain 1.2-1.5 on the lit side, 0.15-0.3 in the shadow).

The face is at least 40 px from its first frame on, so "first face frame -> event" latency
measures the daemon, not a walk from afar. Face sizes are measured with the detector given to
:func:`choose_people` (the benchmark passes the daemon's own), on the source photo.

The schedule (:func:`plan_clip`) is the case users live: a household member comes back after
more than the daemon's default ``cooldown.person_s`` (a return within it is, for the user, the
same visit, and muting it is intended), while strangers come and go seconds apart (what the
per-face ``cooldown.unknown_s`` must tell apart). Visits go in rounds: every member once, in
the same seeded order each round, with a third of the visits strangers placed among them
(always two strangers back to back somewhere in a round). Consecutive visitors are 1-3 s
apart (the daemon ends a track after 9 missed frames, 0.6 s), except between rounds: a
round waits, door empty, until each of its members is ``MEMBER_SPACING_S`` after their
previous visit (a quiet stretch of ~20-30 s; a real door has them too). The price is clip
length: ~3 min for the benchmark's 36 visits instead of ~2 min shuffled.

Everything is seeded: the same seed gives the same people, visits and pixels. The ground
truth (:meth:`ClipPlan.to_json`) lists per visit the person, household or stranger, the
condition and the first and last frame with the face; frames are ``frames/NNNNNN.jpg``.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from edge.daemon.config import CooldownConfig
from edge.demo import HEIGHT, WIDTH, face_square, paste
from edge.detectors import Face
from edge.errors import ImageError
from edge.image import load_image
from trainer.augment import DOOR_CONDITIONS
from trainer.data import pair_file_people

CONDITIONS = DOOR_CONDITIONS  # the conditions converter operating-point's door-like probes show too
FPS = 15.0
FRAMES_PER_PHOTO = 10
PHOTOS_PER_VISIT = 2
MIN_FACE_PX = 40  # a photo whose face is smaller than this is not used
CALIBRATION_PX = 110  # head square side (a ~50 px face) at which face sizes are measured
JPEG_QUALITY = 90
#: Shorter side of the face box aimed at on the first and on the last frame of a visit, in
#: pixels: (low, high) of the uniform draws. The detector's box varies a few pixels from frame
#: to frame around the aim, so "small" aims at 46-55 px to be measured within 40-60 px.
FACE_PX = {"small": ((46.0, 49.0), (52.0, 55.0)), "other": ((60.0, 70.0), (115.0, 135.0))}
#: Empty door between a member's last face frame and their next visit's first, at least: the
#: daemon's default person cooldown plus a margin for its decision coming a few frames into
#: a visit and for a frame reader that falls behind and then catches up.
MEMBER_SPACING_S = CooldownConfig().person_s + 5.0


class FaceDetector(Protocol):
    def detect(self, image_bgr: np.ndarray) -> list[Face]: ...


@dataclass(frozen=True)
class Person:
    name: str
    enrol: str | None  # the enrolment photo (household), None for a stranger
    photos: tuple[str, ...]  # the photos their visits show


@dataclass(frozen=True)
class Visit:
    index: int  # position in the clip
    person: str
    household: bool
    condition: str
    photos: tuple[str, ...]
    first_frame: int  # the first frame with the face
    last_frame: int  # the last frame with the face


@dataclass(frozen=True)
class ClipPlan:
    seed: int
    fps: float
    frames: int  # frames in the clip, empty door included
    member_spacing_s: float  # a member's visits are at least this far apart
    household: tuple[Person, ...]
    strangers: tuple[Person, ...]
    visits: tuple[Visit, ...]

    def to_json(self) -> dict:
        def person(p: Person) -> dict:
            return {"name": p.name, "enrol": p.enrol, "photos": list(p.photos)}

        return {
            "seed": self.seed,
            "fps": self.fps,
            "frames": self.frames,
            "member_spacing_s": self.member_spacing_s,
            "household": [person(p) for p in self.household],
            "strangers": [person(p) for p in self.strangers],
            "visits": [
                {
                    "index": v.index,
                    "person": v.person,
                    "household": v.household,
                    "condition": v.condition,
                    "photos": list(v.photos),
                    "first_frame": v.first_frame,
                    "last_frame": v.last_frame,
                }
                for v in self.visits
            ],
        }

    @classmethod
    def from_json(cls, data: dict) -> ClipPlan:
        """The plan :meth:`to_json` wrote."""

        def person(p: dict) -> Person:
            return Person(p["name"], p["enrol"], tuple(p["photos"]))

        return cls(
            data["seed"],
            data["fps"],
            data["frames"],
            data["member_spacing_s"],
            tuple(map(person, data["household"])),
            tuple(map(person, data["strangers"])),
            tuple(Visit(**{**v, "photos": tuple(v["photos"])}) for v in data["visits"]),
        )


# -- people ----------------------------------------------------------------------------------
def clear_face(photo: np.ndarray, detector: FaceDetector) -> Face | None:
    """The photo's face if it is the only one and at least MIN_FACE_PX, else None. Stricter
    than enrolment (which takes a clearly largest face): a bystander in a visit photo would
    be a second visitor at the door, and the ground truth has one per visit."""
    faces = detector.detect(photo)
    if len(faces) != 1 or faces[0].size < MIN_FACE_PX:
        return None
    return faces[0]


def usable_photos(folder: Path, detector: FaceDetector, wanted: int) -> list[str]:
    """Up to ``wanted`` photos of one person (sorted by name) with a clear face, as
    ``Person/file.jpg``; unreadable photos are skipped like faceless ones."""
    found: list[str] = []
    for path in sorted(folder.glob("*.jpg")):
        try:
            photo = load_image(path)
        except ImageError:
            continue
        if head(photo, detector) is not None:
            found.append(f"{folder.name}/{path.name}")
            if len(found) == wanted:
                break
    return found


def choose_people(
    pairs_file: Path,
    lfw: Path,
    detector: FaceDetector,
    seed: int,
    n_household: int = 8,
    n_strangers: int = 12,
) -> tuple[list[Person], list[Person]]:
    """(household, strangers): people of the pairs file in a seeded order; a household member
    needs 3-4 usable photos (one to enrol, 2-3 for visits), a stranger 2."""
    people = sorted(pair_file_people(pairs_file))
    random.Random(seed).shuffle(people)
    household: list[Person] = []
    strangers: list[Person] = []
    for name in people:
        if len(household) == n_household and len(strangers) == n_strangers:
            break
        if len(list((lfw / name).glob("*.jpg"))) < PHOTOS_PER_VISIT:
            continue
        want_household = len(household) < n_household
        photos = usable_photos(lfw / name, detector, 4 if want_household else PHOTOS_PER_VISIT)
        if want_household and len(photos) >= 3:
            household.append(Person(name, photos[0], tuple(photos[1:])))
        elif len(strangers) < n_strangers and len(photos) >= PHOTOS_PER_VISIT:
            strangers.append(Person(name, None, tuple(photos[:PHOTOS_PER_VISIT])))
    if len(household) < n_household or len(strangers) < n_strangers:
        raise ValueError(
            f"{pairs_file}: only {len(household)} household members and {len(strangers)} "
            f"strangers with enough usable photos in {lfw}"
        )
    return household, strangers


# -- the visit schedule ----------------------------------------------------------------------
def visit_photos(person: Person, visit: int) -> tuple[str, ...]:
    """The photos of a person's ``visit``-th visit: their photos in turn, so that successive
    visits start from different photos."""
    n = len(person.photos)
    return tuple(person.photos[(visit * PHOTOS_PER_VISIT + j) % n] for j in range(PHOTOS_PER_VISIT))


def stranger_slots(n_members: int, n_strangers: int, rng: random.Random) -> list[bool]:
    """The order of one round, True for a stranger: seeded positions with two strangers back
    to back (when there are two), never three, and members in runs of at most
    ``2 * ceil(n_members / n_strangers)``, so that strangers are spread through the round."""
    n = n_members + n_strangers
    longest_run = 2 * math.ceil(n_members / n_strangers) if n_strangers else n_members
    for _ in range(10_000):
        chosen = set(rng.sample(range(n), n_strangers))
        order = [i in chosen for i in range(n)]
        pattern = "".join("s" if s else "m" for s in order)
        if (
            (n_strangers < 2 or "ss" in pattern)
            and "sss" not in pattern
            and "m" * (longest_run + 1) not in pattern
        ):
            return order
    raise ValueError(f"no round of {n_members} members and {n_strangers} strangers fits")


def visit_rounds(
    household: Sequence[Person],
    strangers: Sequence[Person],
    visits_per_member: int,
    rng: random.Random,
) -> list[list[tuple[str, bool, str, tuple[str, ...]]]]:
    """Per round, its visits in order as (person, household?, condition, photos): every member
    in one seeded order (the same each round), the strangers dealt evenly over the rounds."""
    members = list(enumerate(household))
    rng.shuffle(members)
    others = list(enumerate(strangers))
    rng.shuffle(others)
    rounds = []
    for v in range(visits_per_member):
        guests = others[v::visits_per_member]
        next_guest, next_host = iter(guests), iter(members)
        visits = []
        for is_stranger in stranger_slots(len(members), len(guests), rng):
            if is_stranger:
                i, s = next(next_guest)
                visits.append((s.name, False, CONDITIONS[i % len(CONDITIONS)], s.photos))
            else:
                i, m = next(next_host)
                condition = CONDITIONS[(i + v) % len(CONDITIONS)]
                visits.append((m.name, True, condition, visit_photos(m, v)))
        rounds.append(visits)
    return rounds


def plan_clip(
    household: Sequence[Person],
    strangers: Sequence[Person],
    seed: int,
    visits_per_member: int = 3,
    fps: float = FPS,
    gap_s: tuple[float, float] = (1.0, 3.0),
    member_spacing_s: float = MEMBER_SPACING_S,
    lead_s: float = 1.0,
    tail_s: float = 2.0,
) -> ClipPlan:
    """Every member's visits (the ``v``-th visit of member ``m`` in condition ``(m + v) % 4``:
    each member sees different conditions) and one visit per stranger (condition ``s % 4``),
    in ``visits_per_member`` rounds (:func:`visit_rounds`). Within a round each visit starts
    ``gap_s`` after the previous one ends; a round starts ``gap_s`` after the previous one or
    later, as late as its tightest member needs to be ``member_spacing_s`` after their last
    visit. ``lead_s`` of empty door before the first visit, ``tail_s`` after the last.
    Conditions are balanced when both counts are multiples of 4."""
    rng = random.Random(seed)
    spacing = math.ceil(member_spacing_s * fps)
    left: dict[str, int] = {}  # member -> the last frame of their latest visit
    visits: list[Visit] = []
    start = round(lead_s * fps)
    for planned in visit_rounds(household, strangers, visits_per_member, rng):
        offsets, length = [], 0
        for *_, photos in planned:
            offsets.append(length)
            length += len(photos) * FRAMES_PER_PHOTO + round(rng.uniform(*gap_s) * fps)
        for (name, *_), offset in zip(planned, offsets, strict=True):
            if name in left:  # a member back: the round starts late enough for them
                start = max(start, left[name] + 1 + spacing - offset)
        for (name, home, condition, photos), offset in zip(planned, offsets, strict=True):
            first = start + offset
            last = first + len(photos) * FRAMES_PER_PHOTO - 1
            visits.append(Visit(len(visits), name, home, condition, photos, first, last))
            if home:
                left[name] = last
        start += length
    end = visits[-1].last_frame + 1 + round(tail_s * fps)
    return ClipPlan(
        seed, fps, end, member_spacing_s, tuple(household), tuple(strangers), tuple(visits)
    )


# -- pixels ----------------------------------------------------------------------------------
def door_background(rng: np.random.Generator) -> np.ndarray:
    """A plain painted wall (a soft gradient, fine plaster grain) and a wooden door with grain,
    two panels and a knob. Plain on purpose: edge.demo's blotchy scene gave YuNet false faces."""
    paint = rng.uniform((150, 160, 170), (200, 210, 220)).astype(np.float32)
    shade = np.linspace(1.05, 0.85, HEIGHT, dtype=np.float32)[:, None, None]
    grain = cv2.GaussianBlur(rng.normal(0, 4, (HEIGHT, WIDTH)).astype(np.float32), (0, 0), 1)
    frame = np.clip(paint * shade + grain[..., None], 0, 255).astype(np.uint8)
    x0 = int(rng.uniform(170, 230))
    x1, y0 = x0 + int(rng.uniform(220, 260)), int(rng.uniform(20, 50))
    wood = rng.uniform((30, 60, 100), (60, 90, 140)).astype(np.float32)
    grain = cv2.GaussianBlur(rng.normal(0, 12, (1, x1 - x0)).astype(np.float32), (0, 0), 2)
    door = wood[None, None, :] + grain[0][None, :, None]
    frame[y0:, x0:x1] = np.clip(np.broadcast_to(door, (HEIGHT - y0, x1 - x0, 3)), 0, 255)
    dark = tuple(float(c) * 0.6 for c in wood)
    cv2.rectangle(frame, (x0, y0), (x1 - 1, HEIGHT - 1), dark, 6)
    for top, bottom in ((y0 + 30, y0 + 190), (y0 + 220, HEIGHT - 30)):
        cv2.rectangle(frame, (x0 + 25, top), (x1 - 25, bottom), dark, 3)
    cv2.circle(frame, (x1 - 30, (y0 + HEIGHT) // 2 + 20), 8, (60, 160, 200), -1)
    return frame


def head(photo: np.ndarray, detector: FaceDetector) -> tuple[np.ndarray, float] | None:
    """(square crop around the face, the face's shorter side in it as the detector sees it in
    a door frame), or None without a clear face.

    The crop is edge.demo's (2.2x the face box). The face's size is measured by pasting the
    crop at CALIBRATION_PX into a grey 640x480 frame and detecting it there: the box the
    detector draws around a 50 px face is not the photo's box scaled down (measured: up to 20%
    larger), and the small condition must be 40-60 px as the daemon's detector measures it."""
    if clear_face(photo, detector) is None:
        return None
    square = face_square(photo, detector)
    frame = np.full((HEIGHT, WIDTH, 3), 128, np.uint8)
    paste(frame, square, WIDTH / 2, HEIGHT / 2, CALIBRATION_PX)
    faces = detector.detect(frame)
    if not faces:
        return None
    return square, faces[0].size * square.shape[0] / CALIBRATION_PX


def side_lit(square: np.ndarray, lit_left: bool, hi: float, lo: float) -> np.ndarray:
    """Light from one side: gain ``hi`` there, ``lo`` on the other half, a soft edge between."""
    x = np.linspace(-1.0, 1.0, square.shape[1], dtype=np.float32)
    ramp = lo + (hi - lo) / (1.0 + np.exp((x if lit_left else -x) / 0.12))
    return np.clip(square.astype(np.float32) * ramp[None, :, None], 0, 255).astype(np.uint8)


def darkened(frame: np.ndarray, gain: float, gamma: float, sigma: float, rng) -> np.ndarray:
    """A dim scene through a noisy sensor: brightness x ``gain`` after ``gamma``, plus noise."""
    x = np.power(frame.astype(np.float32) / 255.0, gamma) * (255.0 * gain)
    x += rng.normal(0.0, sigma, frame.shape).astype(np.float32)
    return np.clip(x, 0, 255).astype(np.uint8)


def visit_frames(
    visit: Visit,
    background: np.ndarray,
    heads: dict[str, tuple[np.ndarray, float]],
    seed: int,
) -> Iterator[np.ndarray]:
    """The frames of one visit (its own seeded draws: a visit renders the same alone)."""
    rng = np.random.default_rng([seed, visit.index])
    start_px, end_px = FACE_PX["small" if visit.condition == "small" else "other"]
    f0, f1 = rng.uniform(*start_px), rng.uniform(*end_px)
    x0, y0 = rng.uniform(170, 470), rng.uniform(200, 250)
    x1, y1 = x0 + (WIDTH / 2 - x0) * rng.uniform(0.3, 0.6), y0 - rng.uniform(10, 40)
    clothes = tuple(float(c) for c in rng.uniform(40, 120, 3))
    light = (bool(rng.integers(2)), rng.uniform(1.2, 1.5), rng.uniform(0.15, 0.3))
    dark = (rng.uniform(0.2, 0.35), rng.uniform(1.0, 1.2), rng.uniform(3.0, 6.0))
    n = visit.last_frame - visit.first_frame + 1
    for k in range(n):
        t = k / max(1, n - 1)
        square, face_px = heads[visit.photos[min(k // FRAMES_PER_PHOTO, len(visit.photos) - 1)]]
        if visit.condition == "side-lit":
            square = side_lit(square, *light)
        target = f0 + (f1 - f0) * t
        side = max(8, round(square.shape[0] * target / face_px))
        cx, cy = x0 + (x1 - x0) * t, y0 + (y1 - y0) * t
        frame = background.copy()
        torso = (round(cx), round(cy + 0.9 * side))
        cv2.ellipse(frame, torso, (round(0.6 * side), round(0.5 * side)), 0, 0, 360, clothes, -1)
        paste(frame, square, cx, cy, side)
        yield darkened(frame, *dark, rng) if visit.condition == "dark" else frame


def write_clip(plan: ClipPlan, lfw: Path, detector: FaceDetector, out: Path) -> tuple[Path, Path]:
    """Write ``out/frames/NNNNNN.jpg`` and ``out/ground_truth.json``; returns both paths."""
    frames_dir = out / "frames"
    frames_dir.mkdir(parents=True)
    background = door_background(np.random.default_rng(plan.seed))
    empty = cv2.imencode(".jpg", background, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])[1]
    heads = {}
    for photo in sorted({p for v in plan.visits for p in v.photos}):
        found = head(load_image(lfw / photo), detector)
        if found is None:
            raise ValueError(f"{photo}: no clear face (chosen with another detector?)")
        heads[photo] = found
    by_first = {v.first_frame: v for v in plan.visits}
    i = 0
    while i < plan.frames:
        visit = by_first.get(i)
        if visit is None:
            (frames_dir / f"{i:06d}.jpg").write_bytes(empty.tobytes())
            i += 1
            continue
        for frame in visit_frames(visit, background, heads, plan.seed):
            cv2.imwrite(
                str(frames_dir / f"{i:06d}.jpg"), frame, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
            )
            i += 1
    truth = out / "ground_truth.json"
    truth.write_text(json.dumps(plan.to_json(), indent=1))
    return frames_dir, truth
