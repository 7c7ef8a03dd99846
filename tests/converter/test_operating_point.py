"""converter operating-point: cohort, threshold and confidence fitted on held-out identities of
real LFW people, written beside a copy of the shipped model, and loaded back by the edge."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from converter.cli import main
from converter.operating_point import (
    DOORFACE_SLOPE,
    fit_operating_point,
    identity_templates,
    write_operating_point,
)
from edge.embedder import Embedder
from edge.manifest import load_manifest
from edge.pipeline import DEFAULT_MODEL
from trainer.data import pair_file_people


def test_identity_templates_are_normalised_means_of_people_with_two_faces():
    e = np.array([[1, 0], [0, 1], [1, 0], [0, 1]], np.float32)
    labels = np.array([5, 5, 7, 9])
    np.testing.assert_allclose(identity_templates(e, labels), [[2**-0.5, 2**-0.5]], atol=1e-6)
    assert identity_templates(e, labels, min_faces=1).shape == (3, 2)


@pytest.fixture(scope="module")
def small_root(tmp_path_factory, lfw_dir: Path, pairs_dev_test: Path) -> Path:
    """48 LFW people with 4+ photos, none of pairsDevTest, as a data root (symlinks)."""
    root = tmp_path_factory.mktemp("people")
    test_people = pair_file_people(pairs_dev_test)
    people = [
        d
        for d in sorted(lfw_dir.iterdir())
        if d.name not in test_people and len(list(d.iterdir())) >= 4
    ][:48]
    for person in people:
        (root / person.name).mkdir()
        for photo in sorted(person.iterdir())[:5]:
            (root / person.name / photo.name).symlink_to(photo)
    return root


def test_fit_and_write_round_trip(small_root, tmp_path, pairs_dev_test):
    model = tmp_path / DEFAULT_MODEL.name
    shutil.copy(DEFAULT_MODEL, model)
    shutil.copy(DEFAULT_MODEL.with_suffix(".json"), model.with_suffix(".json"))
    op = fit_operating_point(
        model,
        [small_root],
        [pairs_dev_test],
        val_fraction=0.25,
        top_k=5,
        cache_dir=tmp_path / "cache",
        progress=False,
        rescale=True,
    )
    assert op.cohort is not None and op.cohort.shape == (36, 128)  # 48 people, 12 held out
    # --rescale: the second fit is on doorface's scale (its confidence slope), the map recorded
    assert op.record is not None and op.record.rescaled and op.record.gain > 1.0
    assert op.confidence["a"] == pytest.approx(DOORFACE_SLOPE, rel=1e-3)
    assert 0.0 < op.threshold < 1.0
    h = op.holdout
    assert h["threshold_at_far_1e-3"] >= h["threshold_at_far_1e-2"]
    door_like = h["household_door"]  # door-like visitors, measured at the fitted threshold
    assert door_like["threshold"] == op.threshold
    assert door_like["members_named_right"] <= h["household"]["members_named_right"] + 0.05
    assert op.threshold == h["household"]["threshold"] and h["household"]["stranger_rate"] <= 0.02
    assert h["tar_at_far_1e-2"] > 0.3  # the shipped model separates LFW people
    manifest = write_operating_point(model, op)
    assert manifest.cohort.file == "dlib-resnet-v1.cohort.npy"
    assert load_manifest(model.with_suffix(".json")).cohort == manifest.cohort
    scoring = Embedder(model).scoring
    assert scoring.cohort is not None and scoring.top_k == 5
    assert (scoring.gain, scoring.shift) == (op.record.gain, op.record.shift)
    assert scoring.threshold == pytest.approx(op.threshold, abs=1e-6)
    assert scoring.confidence_of(op.threshold) is not None
    # the plain-cosine fit removes the cohort file and block again
    op_plain = fit_operating_point(
        model,
        [small_root],
        [pairs_dev_test],
        val_fraction=0.25,
        cohort=False,
        cache_dir=tmp_path / "cache",
        progress=False,
    )
    assert write_operating_point(model, op_plain).cohort is None
    assert not model.with_suffix(".cohort.npy").exists()
    assert Embedder(model).scoring.cohort is None


def test_cli_bad_paths_are_one_line(tmp_path, capsys):
    assert main(["operating-point", str(tmp_path / "nope.tflite"), str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "nope.tflite: no such file" in err
