"""The decision replay: recorded faces through the real tracker and decider, scored as the door
benchmark scores the daemon's events (no ../shared: a made-up recording of two visits)."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks import bench_decisions
from benchmarks.bench_door import BenchError, parse_variant
from benchmarks.door_clips import ClipPlan, Person, Visit

FPS = 15.0


def unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v, axis=-1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """Alice enrolled; she visits (frames 5-24), then a stranger (frames 35-54)."""
    from edge.embedder import Embedder
    from edge.gallery import STORED_CROP_SIZE, Gallery
    from edge.pipeline import resolve_model

    clip = tmp_path_factory.mktemp("clip")
    embedder = Embedder(resolve_model(None))
    rng = np.random.default_rng(0)
    alice, stranger = unit(rng.normal(size=(2, embedder.embedding_size)))
    gallery = Gallery.create(
        clip / "gallery.npz", embedder.model_id, embedder.input_size, embedder.embedding_size
    )
    crop = np.zeros((1, STORED_CROP_SIZE, STORED_CROP_SIZE, 3), np.uint8)
    gallery.enroll("Alice", crop, alice[None], ["test"])
    gallery.save()
    visits = (
        Visit(0, "Alice", True, "normal", ("a.jpg",), 5, 24),
        Visit(1, "Bob", False, "dark", ("b.jpg",), 35, 54),
    )
    plan = ClipPlan(
        0,
        FPS,
        60,
        60.0,
        (Person("Alice", "e.jpg", ("a.jpg",)),),
        (Person("Bob", None, ()),),
        visits,
    )
    frames, boxes, embeddings = [], [], []
    for visit, who in zip(visits, (alice, stranger), strict=True):
        for i in range(visit.first_frame, visit.last_frame + 1):
            frames.append(i)
            boxes.append([200 + i, 150, 80, 90])
            embeddings.append(unit(who + 0.1 * rng.normal(size=who.shape)))
    np.savez(
        bench_decisions.faces_file(clip, parse_variant("default:")),
        frame=np.array(frames, np.int32),
        box=np.array(boxes, np.int32),
        sharpness=np.full(len(frames), 100.0, np.float32),
        embedding=np.array(embeddings, np.float32),
        model_id=embedder.model_id,
    )
    return clip, plan


def verdicts(summary: dict) -> list[tuple[list, bool]]:
    return [([e["person"] for e in r["events"]], r["household"]) for r in summary["visits"]]


@pytest.mark.parametrize("decision", ["aggregate", "vote"])
def test_replay_names_the_member_and_reports_the_stranger_once(recorded, decision):
    clip, plan = recorded
    variant = parse_variant(f'v:tracking.decision="{decision}"')
    summary = bench_decisions.replay(clip, plan, variant)
    assert verdicts(summary) == [(["Alice"], True), ([None], False)]
    assert summary["unattributed"] == []
    alice_event = summary["visits"][0]["events"][0]
    # named after confirm_frames (3) frames or at once (instant rule): within 3 frames of her face
    assert 0 <= alice_event["latency_ms"] <= 3 * 1000 / FPS


def test_replay_applies_the_variants_threshold(recorded):
    clip, plan = recorded
    summary = bench_decisions.replay(clip, plan, parse_variant("strict:recognition.threshold=99.0"))
    assert verdicts(summary) == [([None], True), ([None], False)]  # Alice below: unknown


def test_a_decision_outside_every_visit_is_unattributed(recorded):
    clip, plan = recorded
    twice = ClipPlan(
        plan.seed,
        plan.fps,
        plan.frames,
        plan.member_spacing_s,
        plan.household,
        plan.strangers,
        (plan.visits[1],),
    )
    summary = bench_decisions.replay(clip, twice, parse_variant("v:"))
    assert verdicts(summary) == [([None], False)]  # Alice's frames fall outside every visit
    assert len(summary["unattributed"]) == 1


@pytest.mark.parametrize("spec", ['m:recognition.model="x.tflite"', "c:camera.fps=5.0"])
def test_variants_that_cannot_be_replayed_are_refused(spec):
    with pytest.raises(BenchError, match="is not replayed"):
        bench_decisions.check_replayable(parse_variant(spec))


def test_variants_that_change_the_faces_get_their_own_recording(tmp_path):
    """A detector or embedding option is a recording of its own; replay-only settings and
    the defaults written out share the default's."""
    default = parse_variant("default:")
    for spec in ("norefine:detector.refine_px=0", "f:recognition.flip=false"):
        bench_decisions.check_replayable(parse_variant(spec))
        assert bench_decisions.faces_file(tmp_path, parse_variant(spec)) != (
            bench_decisions.faces_file(tmp_path, default)
        )
    from edge.detectors import DetectorSettings

    written_out = f"d:detector.refine_px={DetectorSettings().refine_px}"
    for spec in ("v:tracking.confirm_frames=3", written_out):
        assert bench_decisions.faces_file(tmp_path, parse_variant(spec)) == (
            bench_decisions.faces_file(tmp_path, default)
        )


def test_a_plan_survives_its_json(recorded):
    _, plan = recorded
    assert ClipPlan.from_json(plan.to_json()) == plan


def test_a_candidate_model_is_added_to_every_variant():
    variant = parse_variant('strict:recognition.threshold=0.7,tracking.decision="vote"')
    on_candidate = bench_decisions.with_model(variant, "/tmp/candidate.tflite")
    assert on_candidate.overrides["recognition"] == {
        "threshold": 0.7,
        "model": "/tmp/candidate.tflite",
    }
    assert on_candidate.overrides["tracking"] == {"decision": "vote"}
    assert "model" not in variant.overrides["recognition"]  # the original is left as it was
    assert bench_decisions.with_model(variant, "") == variant


def test_a_recording_by_another_model_is_refused(recorded, tmp_path, monkeypatch):
    import json
    import shutil

    clip, plan = recorded
    shutil.copytree(clip, tmp_path / "seed0")
    (tmp_path / "seed0" / "plan.json").write_text(json.dumps(plan.to_json()))
    # the shipped model's recording is reused as it is
    reused, reused_plan = bench_decisions.prepare(0, tmp_path, [parse_variant("default:")])
    assert reused == tmp_path / "seed0" and reused_plan == plan
    monkeypatch.setattr(bench_decisions, "model_id_of", lambda model: "0123456789ab")
    with pytest.raises(BenchError, match="recorded with model .*give each --model its own"):
        bench_decisions.prepare(0, tmp_path, [], "/tmp/candidate.tflite")


def test_a_candidate_is_not_written_into_the_docs(capsys):
    assert bench_decisions.main(["--model", "x.tflite", "--write"]) == 1
    assert "--write documents the shipped model" in capsys.readouterr().err
