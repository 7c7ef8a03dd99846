import numpy as np
import pytest

from edge.confidence import ConfidenceModel, confidence
from edge.gallery import STORED_CROP_SIZE, Gallery
from edge.matching import Matcher
from edge.scoring import Scoring

DIM = 16


def _unit(v):
    v = np.asarray(v, np.float32)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _gallery(samples: dict[str, np.ndarray]) -> Gallery:
    g = Gallery.create("mem.npz", "m", 4, DIM)
    side = STORED_CROP_SIZE
    for name, emb in samples.items():
        g.enroll(name, np.zeros((len(emb), side, side, 3), np.uint8), emb, [""] * len(emb))
    return g


@pytest.fixture
def household():
    rng = np.random.default_rng(3)
    centres = _unit(rng.normal(size=(3, DIM)))
    samples = {
        name: _unit(c + 0.25 * rng.normal(size=(4, DIM)))
        for name, c in zip(["alice", "bob", "carol"], centres, strict=True)
    }
    return centres, samples


def test_scores_match_plain_loops(household):
    _centres, samples = household
    g = _gallery(samples)
    queries = _unit(np.random.default_rng(4).normal(size=(5, DIM)))
    for strategy in ("mean", "nearest", "max"):
        m = Matcher(g, Scoring(0.5), strategy=strategy)
        got = m.scores(queries)
        for qi, q in enumerate(queries):
            for pi, name in enumerate(m.people):
                emb = samples[name]
                mean = float(q @ _unit(emb.sum(0)))
                nearest = float(max(q @ e for e in emb))
                want = {"mean": mean, "nearest": nearest, "max": max(mean, nearest)}[strategy]
                assert got[qi, pi] == pytest.approx(want, abs=1e-5)


def test_threshold_margin_and_unknown(household):
    centres, samples = household
    m = Matcher(_gallery(samples), Scoring(0.6), margin=0.05)
    hit = m.match(centres[1])
    assert hit.name == "bob" and hit.reason == "match" and hit.score >= 0.6
    stranger = _unit(np.random.default_rng(9).normal(size=DIM))
    miss = m.match(stranger)
    assert miss.name is None and miss.reason == "below_threshold"


def test_margin_rule_makes_lookalikes_unknown():
    base = _unit(np.arange(1, DIM + 1, dtype=np.float32))
    twin = _unit(base + 0.01 * np.ones(DIM))
    m = Matcher(_gallery({"ann": base[None], "anna": twin[None]}), Scoring(0.5), margin=0.05)
    result = m.match(_unit(base + twin))
    assert result.name is None and result.reason == "ambiguous"
    assert result.candidate in ("ann", "anna")
    assert Matcher(m.gallery, Scoring(0.5), margin=0.0).match(_unit(base + twin)).name in (
        "ann",
        "anna",
    )


def test_empty_gallery():
    m = Matcher(Gallery.create("x.npz", "m", 4, DIM), Scoring(0.5))
    r = m.match(_unit(np.ones(DIM)))
    assert r.name is None and r.reason == "empty_gallery"


CALIBRATION = ConfidenceModel("logistic", 10.0, -5.0, "test", {"same": 1, "different": 1})


def test_every_match_carries_the_confidence_of_its_best_score(household):
    centres, samples = household
    plain = Matcher(_gallery(samples), Scoring(0.6), margin=0.05)
    calibrated = Matcher(plain.gallery, Scoring(0.6, CALIBRATION), 0.05)
    stranger = _unit(np.random.default_rng(9).normal(size=DIM))
    for query in (centres[1], stranger):
        without, with_ = plain.match(query), calibrated.match(query)
        assert without.confidence is None
        assert with_.confidence == pytest.approx(confidence(with_.score, CALIBRATION))
        # the calibration reports, it never decides
        assert (with_.name, with_.reason, with_.score) == (
            without.name,
            without.reason,
            without.score,
        )
    assert calibrated.confidence_of(0.5) == pytest.approx(0.5)
    assert plain.confidence_of(0.5) is None
    empty = Matcher(Gallery.create("x.npz", "m", 4, DIM), Scoring(0.5, CALIBRATION))
    assert empty.match(_unit(np.ones(DIM))).confidence is None


# -- fails closed: NaN anywhere never names anyone ---------------------------------------------
NAN = float("nan")


@pytest.mark.parametrize("strategy", ["mean", "nearest", "max"])
def test_a_nan_threshold_or_margin_names_no_one(household, strategy):
    centres, samples = household
    g = _gallery(samples)
    assert Matcher(g, Scoring(0.6), 0.05, strategy).match(centres[1]).name == "bob"
    below = Matcher(g, Scoring(NAN), 0.05, strategy).match(centres[1])
    assert below.name is None and below.reason == "below_threshold"
    assert below.candidate == "bob"
    ambiguous = Matcher(g, Scoring(0.6), NAN, strategy).match(centres[1])
    assert ambiguous.name is None and ambiguous.reason == "ambiguous"


@pytest.mark.parametrize("strategy", ["mean", "nearest", "max"])
def test_a_nan_score_names_no_one(household, strategy):
    centres, samples = household
    g = _gallery(samples)
    m = Matcher(g, Scoring(-1.0), margin=0.0, strategy=strategy)  # would name anyone
    bad = m.match(np.full(DIM, NAN, np.float32))  # a broken embedding: every score NaN
    assert bad.name is None and bad.reason == "below_threshold"
    g.embeddings[0, 0] = NAN  # a NaN sample of alice's that slipped into memory
    m = m.with_gallery(g)
    assert [m.match(query).name for query in centres] == [None, None, None]


def test_a_nan_negative_score_names_no_one(household):
    centres, samples = household
    g = _gallery(samples)
    g.add_negative(
        "bob", np.zeros((1, STORED_CROP_SIZE, STORED_CROP_SIZE, 3), np.uint8), centres[:1]
    )
    assert Matcher(g, Scoring(0.6), margin=0.05).match(centres[1]).name == "bob"
    g.negative_embeddings[0, 0] = NAN
    result = Matcher(g, Scoring(0.6), margin=0.05).match(centres[1])
    assert result.name is None and result.reason == "negative" and result.candidate == "bob"
