"""edge.confidence: the calibrated P(same person), its manifest block, and where it is reported."""

import itertools
import json
import math
import shutil
import time
import uuid

import cv2
import pytest

from edge.confidence import ConfidenceModel, confidence
from edge.errors import ModelError
from edge.manifest import ModelManifest, load_manifest, manifest_path_for

BLOCK = {
    "kind": "logistic",
    "a": 10.5,
    "b": -4.4,
    "fitted_on": "held-out identities",
    "pairs": {"same": 7144, "different": 20000},
}
MODEL = ConfidenceModel.from_json(BLOCK, "test")


@pytest.mark.parametrize("a", [0.5, 10.5, 1e4])
def test_confidence_is_a_monotone_probability(a):
    model = ConfidenceModel("logistic", a, -0.4 * a, "", {"same": 1, "different": 1})
    cosines = [-1.0 + i / 500 for i in range(1001)]
    p = [confidence(c, model) for c in cosines]
    assert all(0.0 <= v <= 1.0 for v in p)
    assert all(later >= earlier for earlier, later in itertools.pairwise(p))
    assert confidence(0.4, model) == pytest.approx(0.5)  # the logit's zero: -b / a


def test_confidence_is_the_logistic_of_a_linear_score():
    for cosine in (-0.3, 0.2, 0.55, 0.9):
        expected = 1 / (1 + math.exp(-(BLOCK["a"] * cosine + BLOCK["b"])))
        assert confidence(cosine, MODEL) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kind": "isotonic"}, "confidence: kind: must be one of"),
        ({"a": -2.0}, "confidence: a: must be a finite number > 0"),
        ({"a": "10"}, "confidence: a: must be a finite number > 0"),
        ({"b": float("inf")}, "confidence: b: must be a finite number"),
        ({"pairs": {"same": 3}}, "confidence: pairs: must be"),
        ({"fitted_on": 3}, "confidence: fitted_on: must be a string"),
        ({"b": None, "drop": "b"}, "confidence: b: missing"),
    ],
)
def test_bad_block_is_a_one_line_error_naming_the_key(tiny_model, tmp_path, change, message):
    block = {**BLOCK, **{k: v for k, v in change.items() if k != "drop"}}
    block.pop(change.get("drop", ""), None)
    data = json.loads(manifest_path_for(tiny_model).read_text())
    path = tmp_path / "m.json"
    path.write_text(json.dumps({**data, "confidence": block}))
    with pytest.raises(ModelError, match=f"m.json: {message}"):
        load_manifest(path)


def test_manifest_round_trip_with_and_without_the_block(tiny_model, tmp_path):
    old = load_manifest(manifest_path_for(tiny_model))
    assert old.confidence is None  # a manifest without the block: no confidence
    assert "confidence" not in old.to_json()
    assert ModelManifest.from_json(old.to_json()) == old

    path = tmp_path / "m.json"
    ModelManifest(**{**old.__dict__, "confidence": MODEL}).write(path)
    new = load_manifest(path)
    assert new.confidence == MODEL
    assert json.loads(path.read_text())["confidence"] == BLOCK
    assert ModelManifest.from_json(new.to_json()) == new


@pytest.fixture
def calibrated_model(tiny_model, tmp_path):
    """The tiny model with a confidence block in its manifest (the sha256 covers the .tflite)."""
    model = tmp_path / "calibrated.tflite"
    shutil.copy(tiny_model, model)
    data = json.loads(manifest_path_for(tiny_model).read_text())
    manifest_path_for(model).write_text(json.dumps({**data, "confidence": BLOCK}))
    return model


def test_identify_json_reports_confidence_next_to_the_score(
    capsys, tmp_path, calibrated_model, astronaut_bgr
):
    from edge.cli import main

    photo = tmp_path / "astronaut.jpg"
    cv2.imwrite(str(photo), astronaut_bgr)
    common = ["--gallery", str(tmp_path / "g.npz"), "--model", str(calibrated_model)]
    common += ["--detector", "haar"]
    assert main(["enroll", "--name", "Eileen", *common, str(photo)]) == 0
    capsys.readouterr()
    assert main(["identify", "--json", *common, str(photo)]) == 0
    face = json.loads(capsys.readouterr().out)["faces"][0]
    assert face["name"] == "Eileen"
    assert face["confidence"] == pytest.approx(confidence(face["score"], MODEL), abs=1e-3)


def test_event_carries_the_confidence_of_its_score():
    from edge.daemon.events import Decision, build_event

    now = time.time()
    d = Decision(
        type="recognized",
        person="alice",
        score=0.71,
        second=0.2,
        threshold=0.57,
        box=(1, 2, 3, 4),
        track_id=1,
        visit_id=str(uuid.uuid4()),
        track_frames=3,
        first_seen=now,
        decided_at=now,
        frame_timestamp=now,
    )
    kw = {"device_id": "door", "camera": "front", "model_id": "m"}
    p = confidence(d.score, MODEL)
    assert build_event(d, **kw, confidence=p)["confidence"] == round(p, 4)
    assert build_event(d, **kw)["confidence"] is None  # a model without calibration
