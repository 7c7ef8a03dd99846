"""A generated door-camera video (the astronaut walks in, leaves, comes back), its gallery,
and daemon configs for it: shared by the daemon tests and benchmarks/bench_daemon.py."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edge.scoring import Scoring


def _scene(face: np.ndarray | None, x: int) -> np.ndarray:
    frame = np.full((480, 640, 3), 90, np.uint8)
    if face is not None:
        frame[40 : 40 + face.shape[0], x : x + face.shape[1]] = face
    return frame


def make_door_video(d: Path, model: Path, backend: str = "haar") -> dict:
    """An .avi: the astronaut walks in (25 frames), leaves (15 empty), comes back (25).

    The gallery is enrolled from the video with ``model`` and the ``backend`` detector, which
    the daemon configs use too: "yunet" (a real model) with the manifest's threshold, "haar"
    (the default here, for the uncalibrated tiny test model) at 0.5."""
    import skimage.data

    from edge.detectors import DetectorSettings, create_detector
    from edge.embedder import Embedder
    from edge.gallery import Gallery, stored_crop
    from edge.matching import Matcher
    from edge.pipeline import Recognizer

    # the astronaut's head (haar box ~ (176, 66, 96, 96) in the 512 px image), 2x larger
    head = np.ascontiguousarray(skimage.data.astronaut()[16:216, 124:324, ::-1])
    face = cv2.resize(head, (300, 300))
    frames = [_scene(face, 60 + 4 * i) for i in range(25)]
    frames += [_scene(None, 0) for _ in range(15)]
    frames += [_scene(face, 200 - 4 * i) for i in range(25)]
    video = d / "door.avi"
    w = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 15, (640, 480))
    for f in frames:
        w.write(f)
    w.release()
    emb = Embedder(model)
    gallery = Gallery.create(d / "gallery.npz", emb.model_id, emb.input_size, emb.embedding_size)
    detector = create_detector(DetectorSettings(backend=backend))
    rec = Recognizer(detector, emb, Matcher(gallery, Scoring(0.5)))
    found = [(f, r) for f in frames[:25:5] for r in rec.recognize_faces(f)]
    assert found, f"{detector.name} found no face in the generated video"
    crops = np.stack([r.crop for _, r in found])
    stored = np.stack([stored_crop(f, r.face.landmarks) for f, r in found])
    gallery.enroll("astronaut", stored, emb.embed(crops), ["video"] * len(crops))
    gallery.save()
    return {
        "video": video,
        "gallery": d / "gallery.npz",
        "model": model,
        "detector": backend,
        "threshold": -1.0 if backend == "yunet" else 0.5,
    }


def config_file(tmp_path: Path, door: dict, extra: str = "", camera: str | None = None) -> Path:
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        f"""
[daemon]
device_id = "door1"
[camera]
source = "{camera or door["video"]}"
exit_on_end = {"false" if camera else "true"}
retry_initial_s = 0.2
[detector]
backend = "{door.get("detector", "haar")}"
[recognition]
model = "{door["model"]}"
gallery = "{door["gallery"]}"
threshold = {door.get("threshold", 0.5)}
threads = 1
[tracking]
min_sharpness = 1.0
[outbox]
path = "{tmp_path / "outbox.sqlite"}"
[snapshot]
directory = "{tmp_path / "snaps"}"
{extra}
"""
    )
    return cfg


def video_to_frames(video: Path, folder: Path) -> Path:
    """Write every frame of ``video`` as ``folder/NNN.jpg`` (a folder source for the daemon)."""
    folder.mkdir()
    cap = cv2.VideoCapture(str(video))
    try:
        i = 0
        while True:
            ok, frame = cap.read()
            if not ok:
                return folder
            cv2.imwrite(str(folder / f"{i:03d}.jpg"), frame)
            i += 1
    finally:
        cap.release()
