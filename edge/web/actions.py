"""What a person can do with visits, shared by the pages and the API.

Name a group of unknown faces (enrol their crops as a new or existing person), mark a wrong
name "not <name>" (a negative example for matching), capture a face from the live camera, and
list unknown faces grouped by similarity. Each checks its input and raises
:class:`~edge.web.errors.Problem` before anything is written.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from edge.gallery import resized_crops
from edge.web.clusters import cluster_faces
from edge.web.errors import Problem
from edge.web.library import EnrolReport, png_to_rgb, valid_name

if TYPE_CHECKING:
    from edge.web.app import WebContext

MAX_GROUP_FACES = 200  # newest unknown faces grouped on the page
LIVE_MAX_AGE_S = 5.0  # a capture needs a frame at most this old
MAX_VISIT_ID = 64  # the daemon's are UUIDs (36 characters)
#: Naming checks that no visit was named before and then marks them: one naming at a time, so
#: two people naming the same faces at once cannot enrol one face as two people.
_NAMING = threading.Lock()


@dataclass(frozen=True)
class Group:
    visit_ids: list[str]


def unknown_groups(ctx: WebContext) -> list[Group]:
    """Unnamed unknown visits grouped by face (:mod:`edge.web.clusters`), biggest first."""
    faces = ctx.visits.unnamed_unknown(ctx.library.model_id, MAX_GROUP_FACES)
    if not faces:
        return []
    groups = cluster_faces(np.stack([f.embedding for f in faces]), ctx.library.scoring)
    return [Group([faces[i].visit_id for i in g]) for g in groups]


def name_visits(ctx: WebContext, visit_ids: list[str], name: str) -> int:
    """Enrol the decisive faces of these unknown, not yet named visits as ``name``; returns
    how many. A visit named before, or one the daemon recognised, is refused (409): one face
    is never enrolled as two people ("not <name>" is the way to correct a recognised visit)."""
    name = valid_name(name)
    if not visit_ids:
        raise Problem(400, "choose at least one face")
    if not all(valid_visit_id(v) for v in visit_ids):
        raise Problem(400, "visits must be a list of visit ids")
    with _NAMING:
        faces = ctx.visits.faces(visit_ids)
        missing = set(visit_ids) - {f.visit_id for f in faces}
        if missing:
            raise Problem(404, f"no visit {sorted(missing)[0]!r} (purged or never recorded)")
        for v in dict.fromkeys(visit_ids):
            visit = ctx.visits.get(v)
            if visit is not None and visit.named:
                raise Problem(409, f"visit {v!r} was already named {visit.named!r}")
            if visit is not None and visit.type != "unknown":
                raise Problem(409, f"visit {v!r} was recognised, not unknown")
        size = ctx.library.recognizer.embedder.input_size
        crops = resized_crops(np.stack([png_to_rgb(f.png) for f in faces]), size)
        ctx.library.enrol_faces(name, list(crops), [f"visit:{f.visit_id}" for f in faces])
        ctx.visits.mark_named([f.visit_id for f in faces], name)
    return len(faces)


def valid_visit_id(raw: object) -> bool:
    """A visit id as the daemon makes them could be: printable ASCII, 1-64 characters (what
    the visit store is asked for is never more than that)."""
    return (
        isinstance(raw, str)
        and 0 < len(raw) <= MAX_VISIT_ID
        and raw.isascii()
        and raw.isprintable()
    )


def mark_not(ctx: WebContext, visit_id: str) -> str:
    """The visit was named wrongly: keep its face as "not <name>"; returns the name."""
    visit = ctx.visits.get(visit_id)
    png = ctx.visits.crop_png(visit_id)
    if visit is None or png is None:
        raise Problem(404, f"no visit {visit_id!r} (purged or never recorded)")
    if visit.type != "recognized" or not visit.person:
        raise Problem(409, "only a recognized visit can be marked 'not <name>'")
    if visit.not_person == visit.person:
        return visit.person
    size = ctx.library.recognizer.embedder.input_size
    crop = resized_crops(png_to_rgb(png)[None], size)[0]
    ctx.library.add_negative(visit.person, crop)
    ctx.visits.mark_not(visit_id, visit.person)
    return visit.person


def capture(ctx: WebContext, name: str) -> EnrolReport:
    """Enrol the one clear face in the live camera's newest frame as ``name``."""
    latest = ctx.live.latest() if ctx.live is not None else None
    if latest is None:
        raise Problem(409, "no camera here: capture needs the daemon (edge run)")
    frame, at = latest
    if time.time() - at > LIVE_MAX_AGE_S:
        raise Problem(409, "the camera has sent no frame for a while")
    return ctx.library.enrol_images(name, [("camera", frame)])


def enrol_summary(name: str, report: EnrolReport) -> str:
    text = f"{name}: {report.used} photo{'s' if report.used != 1 else ''} enrolled"
    if report.skipped:
        text += f", {len(report.skipped)} skipped ({'; '.join(report.skipped)})"
    return text
