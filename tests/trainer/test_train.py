"""A tiny end-to-end training run on generated identities, and the encoder.keras round trip."""

from __future__ import annotations

import dataclasses
import json

import keras
import numpy as np
import pytest

from tests.trainer.synthetic import sample, synthetic_faces
from trainer.errors import TrainingError
from trainer.evaluate import row_cosines, sampled_pairs, verification_metrics
from trainer.model import L2Normalize, build_encoder
from trainer.train import BackgroundBatches, TrainConfig, embed, recalibrate, train


def test_build_encoder_contract():
    m = build_encoder()
    assert m.input_shape == (None, 64, 64, 3) and m.output_shape == (None, 128)
    assert 500_000 <= m.count_params() <= 1_000_000
    assert isinstance(m.layers[-1], L2Normalize)
    x = np.random.default_rng(0).uniform(0, 255, (3, 64, 64, 3)).astype(np.float32)
    # batch statistics (training mode): an untrained net's inference-mode features are ~1e-7
    np.testing.assert_allclose(np.linalg.norm(m(x, training=True), axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(
        np.linalg.norm(L2Normalize()(x.reshape(3, -1)[:, :128] * 1e-3), axis=1), 1.0, atol=1e-5
    )
    with pytest.raises(ValueError):
        build_encoder(60)


def test_encoder_keras_round_trip(tmp_path):
    m = build_encoder(32, 16, width=0.25)
    x = np.random.default_rng(1).uniform(0, 255, (4, 32, 32, 3)).astype(np.float32)
    m(x, training=True)  # move BatchNorm statistics away from their initial values
    path = tmp_path / "encoder.keras"
    m.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(loaded(x, training=False), m(x, training=False), atol=1e-6)


def _tiny(tmp_path, name: str, **settings) -> TrainConfig:
    """A seconds-long run on 32x32 generated faces; ``settings`` override the defaults."""
    base = dict(
        roots=[],
        out=str(tmp_path / name),
        input_size=32,
        width=0.25,
        embedding_size=32,
        singletons=0,
        val_fraction=0.0,
        threads=2,
        progress=False,
        seed=0,
    )
    return TrainConfig(**{**base, **settings})


def _inference_separation(run_dir, patterns) -> tuple[dict, np.ndarray]:
    """Verification numbers (and embeddings) of fresh images of the training identities, from
    the saved encoder.keras reloaded from disk and run in inference mode."""
    import trainer.model  # noqa: F401  (registers L2Normalize)

    model = keras.models.load_model(run_dir / "encoder.keras")
    rng = np.random.default_rng(99)
    crops = np.stack([sample(p, rng) for p in patterns for _ in range(8)])
    labels = np.repeat(np.arange(len(patterns)), 8)
    emb = embed(model, crops)
    i, j, same = sampled_pairs(labels, 300, seed=1)
    return verification_metrics(row_cosines(emb[i], emb[j]), same), emb


@pytest.mark.slow
def test_tiny_training_run_separates_identities_in_inference_mode(tmp_path):
    faces, patterns = synthetic_faces(people=12, per_person=12, size=32, seed=0)
    cfg = _tiny(tmp_path, "run", p=6, k=4, steps_per_epoch=40, epochs=4, lr=3e-3, warmup_steps=20)
    record = train(cfg, faces)
    out = tmp_path / "run"
    assert (out / "encoder.keras").exists() and (out / "training_curve.png").exists()
    saved = json.loads((out / "training.json").read_text())
    assert len(saved["history"]) == 4 and saved["data"]["train"]["identities"] == 12
    # the detector the faces come from, for the converter's manifest (whole photos by default)
    assert saved["detector"]["backend"] == "yunet" and len(saved["detector"]["sha256"]) == 64
    assert saved["settings"]["detector"]["detect_width"] == 0
    assert record["history"][-1]["step"] == 160

    m, emb = _inference_separation(out, patterns)
    assert m["mean_same"] - m["mean_different"] > 0.3, m
    assert m["kfold_accuracy"] > 0.85, m
    assert np.std(emb, axis=0).mean() > 0.05  # not collapsed to one point

    # --resume continues from the last checkpoint (step count, history, optimizer state)
    more = train(dataclasses.replace(cfg, epochs=5, resume=True), faces)
    assert [h["epoch"] for h in more["history"]] == [1, 2, 3, 4, 5]
    assert more["history"][-1]["step"] == 200
    # going on longer is allowed, another recipe is not: one line naming the option
    with pytest.raises(TrainingError, match=r"made with lr = 0\.003, now 0\.001; resume") as err:
        train(dataclasses.replace(cfg, epochs=6, resume=True, lr=1e-3), faces)
    assert "\n" not in str(err.value)


@pytest.mark.slow
def test_threshold_and_confidence_come_from_held_out_identities(tmp_path):
    """The shipped operating point: flip-fused pairs of identities never trained on; `trainer
    recalibrate` recomputes exactly it from the saved model."""
    faces, _ = synthetic_faces(people=16, per_person=6, size=32, seed=3)
    # 30 steps, not 5: after 5, BatchNorm's moving statistics had not moved enough for the
    # inference-mode embeddings to differ at all on one CPU (every cosine 1.0000001, no
    # threshold under FAR 1e-2), though they did on others
    cfg = _tiny(tmp_path, "hold", p=4, k=3, steps_per_epoch=30, epochs=1, val_fraction=0.25)
    record = train(cfg, faces)
    point = record["metrics"]["holdout_identities"]
    assert record["data"]["validation"]["identities"] == 4
    assert point["pairs"] == 4 * 15 + point["different_pairs"]  # every same pair kept
    assert record["threshold"] == point["threshold_at_far_1e-2"]
    assert point["threshold_at_far_1e-3"] >= point["threshold_at_far_1e-2"]
    assert record["confidence"]["kind"] == "logistic" and record["confidence"]["a"] > 0
    again = recalibrate(tmp_path / "hold", faces, progress=False)
    assert again["threshold"] == pytest.approx(record["threshold"], abs=1e-5)
    assert again["confidence"]["a"] == pytest.approx(record["confidence"]["a"], rel=1e-4)
    saved = json.loads((tmp_path / "hold" / "training.json").read_text())
    assert saved["threshold"] == again["threshold"] and "flip" in saved["threshold_source"]


@pytest.mark.slow
def test_staged_mining_with_margin_head_trains(tmp_path):
    """Staged semi-hard -> batch-hard with a CosFace head (each trace costs ~10 s, so one case;
    ArcFace is checked against NumPy in test_losses)."""
    faces, _ = synthetic_faces(people=8, per_person=6, size=32, seed=2)
    cfg = _tiny(
        tmp_path,
        "staged",
        embedding_size=16,
        p=4,
        k=3,
        steps_per_epoch=6,
        epochs=2,
        loss="staged",
        head="cosface",
        staged_switch=0.5,
    )
    hist = train(cfg, faces)["history"]
    assert [h["step"] for h in hist] == [6, 12]
    assert all(np.isfinite(h["loss"]) and h["loss"] > 0 for h in hist)
    assert [h["mining"] for h in hist] == ["semihard", "batchhard"]


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["contrastive", "koch"])
def test_seed_project_losses_train_to_separating_embeddings(tmp_path, loss):
    """The seeds' contrastive loss and Koch's BCE head, through the real loop: the loss falls
    and the saved encoder separates the identities in inference mode."""
    faces, patterns = synthetic_faces(people=10, per_person=10, size=32, seed=3)
    cfg = _tiny(
        tmp_path, loss, loss=loss, p=5, k=4, steps_per_epoch=30, epochs=3, lr=1e-2, warmup_steps=15
    )
    hist = train(cfg, faces)["history"]
    assert all(np.isfinite(h["loss"]) for h in hist)
    assert hist[-1]["metric_loss"] < hist[0]["metric_loss"], hist
    m, _ = _inference_separation(tmp_path / loss, patterns)
    assert m["kfold_accuracy"] > 0.8 and m["mean_same"] > m["mean_different"] + 0.2, m


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"teacher_margin_max": 0.5}, "needs --teacher"),
        ({"teacher_margin_max": 0.5, "teacher": "dlib", "loss": "contrastive"}, "needs --teacher"),
        ({"teacher_margin_max": 0.2, "teacher": "dlib"}, "must exceed --margin 0.2"),
    ],
)
def test_teacher_margins_need_a_teacher_and_a_wider_top(tmp_path, settings, message):
    """Refused before any data is read: the error names the options to change."""
    from trainer.errors import TrainingError

    with pytest.raises(TrainingError, match=message):
        train(_tiny(tmp_path, "tm", **settings))


def test_learning_rate_warms_up_then_decays_to_its_floor() -> None:
    from trainer.train import warmup_cosine_lr

    assert warmup_cosine_lr(1.0, 10, 0, 0.0) == pytest.approx(0.1)  # first warm-up step
    assert warmup_cosine_lr(1.0, 10, 9, 0.0) == pytest.approx(1.0)  # warm: the base rate
    assert warmup_cosine_lr(1.0, 10, 500, 0.5) == pytest.approx(0.5)  # half-way down
    assert warmup_cosine_lr(1.0, 10, 900, 1.0) == pytest.approx(0.0, abs=1e-12)
    assert warmup_cosine_lr(2e-3, 10, 900, 1.0, floor=0.01) == pytest.approx(2e-5)
    assert warmup_cosine_lr(1.0, 10, 900, 3.0, floor=0.01) == pytest.approx(0.01)  # past the end


def test_an_error_making_a_batch_reaches_the_trainer_instead_of_a_hang() -> None:
    class Failing(BackgroundBatches):
        made = 0

        def make(self) -> tuple:
            self.made += 1
            if self.made == 3:
                raise RuntimeError("teacher gone")
            return (self.made,)

    batches = Failing(seed=0)
    try:
        assert batches.get() == (1,) and batches.get() == (2,)  # the good ones first
        with pytest.raises(RuntimeError, match="teacher gone"):
            batches.get()
    finally:
        batches.close()
    batches.thread.join(timeout=5)
    assert not batches.thread.is_alive()  # the thread ends after handing the error over
