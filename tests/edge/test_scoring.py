"""edge.scoring: cohort score normalisation against NumPy, the manifest block, the cohort file."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from edge.errors import ModelError
from edge.gallery import STORED_CROP_SIZE, Gallery
from edge.manifest import load_manifest, sha256_file
from edge.matching import Matcher
from edge.pipeline import DEFAULT_MODEL
from edge.scoring import CohortRecord, Scoring, cohort_means, load_cohort

DIM = 16


def _unit(v):
    v = np.asarray(v, np.float32)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _record(**change) -> dict:
    block = {
        "file": "m.cohort.npy",
        "sha256": "0" * 64,
        "size": 8,
        "top_k": 3,
        "reference": 0.2,
        "built_from": "test",
    }
    return {**block, **change}


def test_normalised_scores_equal_the_formula_in_plain_numpy():
    rng = np.random.default_rng(0)
    cohort, a, b = (_unit(rng.normal(size=(n, DIM))) for n in (40, 5, 7))
    k, ref = 4, 0.3
    scoring = Scoring(0.5, None, cohort, k, ref)

    def top_mean(x):  # an independent loop: sort each row, average the k largest
        return np.array([np.sort([float(x_i @ c) for c in cohort])[-k:].mean() for x_i in x])

    expected = a @ b.T - 0.5 * (top_mean(a)[:, None] - ref) - 0.5 * (top_mean(b)[None, :] - ref)
    np.testing.assert_allclose(scoring.pairwise(a, b), expected, atol=1e-5)
    np.testing.assert_allclose(cohort_means(a, cohort, k), top_mean(a), atol=1e-6)
    # without a cohort the score is the cosine and nothing is offset
    assert np.allclose(Scoring(0.5).pairwise(a, b), a @ b.T)
    assert not Scoring(0.5).offsets(a).any()


def test_a_face_in_a_crowded_neighbourhood_needs_a_higher_cosine():
    """A stranger who looks like many people (close to many cohort faces) reaches the same
    cosine to Alice as Alice's own photo does; normalised, only Alice's photo matches."""
    rng = np.random.default_rng(1)
    dim = 64
    alice, crowd = _unit(rng.normal(size=(2, dim)))
    cohort = _unit(crowd + 0.05 * rng.normal(size=(50, dim)))
    cohort = np.concatenate([cohort, _unit(rng.normal(size=(50, dim)))])
    # two probes with the same cosine 0.7 to Alice: one off in an empty direction, one near the crowd
    ortho = _unit(crowd - (crowd @ alice) * alice)
    empty = _unit(rng.normal(size=dim))
    empty = _unit(empty - (empty @ alice) * alice - (empty @ ortho) * ortho)
    lonely = _unit(0.7 * alice + np.sqrt(1 - 0.49) * empty)
    crowded = _unit(0.7 * alice + np.sqrt(1 - 0.49) * ortho)
    assert float(lonely @ alice) == pytest.approx(float(crowded @ alice), abs=1e-5)
    g = Gallery.create("x.npz", "m", 4, dim)
    side = STORED_CROP_SIZE
    g.enroll("alice", np.zeros((1, side, side, 3), np.uint8), alice[None], [""])
    scoring = Scoring(0.0, None, cohort, 5, 0.0)
    s_lonely, s_crowded = Matcher(g, scoring).scores(np.stack([lonely, crowded]))[:, 0]
    assert s_lonely - s_crowded > 0.1
    bar = (s_lonely + s_crowded) / 2
    m = Matcher(g, scoring.with_threshold(bar), margin=0.0)
    assert [r.name for r in m.match_many(np.stack([lonely, crowded]))] == ["alice", None]
    # plain cosine cannot tell them apart
    plain = Matcher(g, Scoring(0.69), margin=0.0).match_many(np.stack([lonely, crowded]))
    assert [r.name for r in plain] == ["alice", "alice"]


def test_a_rescaled_cohort_maps_every_score_and_round_trips():
    """gain and shift (converter operating-point --rescale) apply to every normalised score;
    a record without them stays as it was written (old manifests unchanged)."""
    rng = np.random.default_rng(3)
    cohort, a, b = (_unit(rng.normal(size=(n, DIM))) for n in (40, 5, 7))
    plain = Scoring(0.5, None, cohort, 4, 0.3)
    mapped = Scoring(0.5, None, cohort, 4, 0.3, gain=7.5, shift=-6.25)
    np.testing.assert_allclose(mapped.pairwise(a, b), 7.5 * plain.pairwise(a, b) - 6.25, rtol=1e-5)
    record = CohortRecord.from_json(_record(gain=7.5, shift=-6.25), "m.json: cohort")
    assert (record.gain, record.shift) == (7.5, -6.25) and record.rescaled
    assert CohortRecord.from_json(record.to_json(), "again") == record
    assert "gain" not in CohortRecord.from_json(_record(), "old").to_json()


def test_pair_list_scores_are_pairwise_scores_on_the_manifest_scale():
    """converter's pair_scores (compare, operating point, benchmarks) gives, pair by pair, what
    Scoring.pairwise gives the edge: rescaled too (it once returned the normalised score of a
    rescaled model, so every pair cleared its threshold)."""
    from converter.embed import pair_scores

    rng = np.random.default_rng(5)
    cohort, faces = _unit(rng.normal(size=(40, DIM))), _unit(rng.normal(size=(9, DIM)))
    ia, ib = np.array([0, 0, 3, 8]), np.array([1, 5, 3, 2])
    for scoring in (
        Scoring(0.5),
        Scoring(0.5, None, cohort, 4, 0.3),
        Scoring(0.5, None, cohort, 4, 0.3, gain=7.5, shift=-6.25),
    ):
        want = np.diag(scoring.pairwise(faces[ia], faces[ib]))
        np.testing.assert_allclose(pair_scores(faces, ia, ib, scoring), want, rtol=1e-5)
        np.testing.assert_allclose(scoring.rowwise(faces[ia], faces[ib]), want, rtol=1e-5)


def test_cohort_block_errors_name_the_key():
    assert CohortRecord.from_json(_record(), "m.json: cohort").top_k == 3
    for change, key in (
        ({"gain": 0}, "gain"),
        ({"gain": "7"}, "gain"),
        ({"shift": True}, "shift"),
        ({"file": "../m.npy"}, "file"),
        ({"file": "m.txt"}, "file"),
        ({"top_k": 9}, "top_k"),
        ({"top_k": 0}, "top_k"),
        ({"size": "8"}, "size"),
        ({"reference": None}, "reference"),
        ({"built_from": 3}, "built_from"),
        # JSON's NaN / Infinity parse as floats: each would make every score NaN or infinite
        ({"reference": float("nan")}, "reference"),
        ({"gain": float("inf")}, "gain"),
        ({"shift": float("nan")}, "shift"),
    ):
        with pytest.raises(ModelError, match=f"m.json: cohort: {key}"):
            CohortRecord.from_json(_record(**change), "m.json: cohort")


def test_cohort_file_is_checked_against_its_record(tmp_path):
    rows = _unit(np.random.default_rng(2).normal(size=(8, DIM))).astype(np.float16)
    path = tmp_path / "m.cohort.npy"
    np.save(path, rows)
    record = CohortRecord(**_record(sha256=sha256_file(path)))
    loaded = load_cohort(record, tmp_path, DIM)
    assert loaded.dtype == np.float32 and np.allclose(np.linalg.norm(loaded, axis=1), 1, atol=1e-6)
    with pytest.raises(ModelError, match="expected 8 finite rows of 32"):
        load_cohort(record, tmp_path, 32)
    np.save(path, rows[:4])
    with pytest.raises(ModelError, match="sha256 differs"):
        load_cohort(record, tmp_path, DIM)
    path.unlink()
    with pytest.raises(ModelError, match="cohort file missing"):
        load_cohort(record, tmp_path, DIM)


def test_a_model_whose_cohort_is_missing_does_not_load(tmp_path):
    """The manifest names a cohort that is not there: one ModelError naming the file."""
    from edge.embedder import Embedder

    model = tmp_path / DEFAULT_MODEL.name
    shutil.copy(DEFAULT_MODEL, model)
    data = load_manifest(DEFAULT_MODEL.with_suffix(".json")).to_json()
    data["cohort"] = _record(file="gone.cohort.npy", size=30)
    model.with_suffix(".json").write_text(json.dumps(data))
    with pytest.raises(ModelError, match="gone.cohort.npy: cohort file missing"):
        Embedder(model)
