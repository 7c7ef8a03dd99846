"""A generated door-camera video (the astronaut walks in, leaves, comes back), its gallery,
and daemon configs for it: shared by the daemon tests and benchmarks/bench_daemon.py."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def _scene(face: np.ndarray | None, x: int) -> np.ndarray:
    frame = np.full((480, 640, 3), 90, np.uint8)
    if face is not None:
        frame[40 : 40 + face.shape[0], x : x + face.shape[1]] = face
    return frame


def make_door_video(d: Path, model: Path, detector_model: str = "") -> dict:
    """An .avi: the astronaut walks in (25 frames), leaves (15 empty), comes back (25).

    The gallery is enrolled from the video with ``model``; with ``detector_model`` (a YuNet
    ONNX) the daemon configs use YuNet and the manifest's threshold, else Haar at 0.5 (the
    tiny test model is not calibrated)."""
    import skimage.data

    from edge.detectors import create_detector
    from edge.embedder import Embedder
    from edge.gallery import Gallery
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
    if detector_model:
        detector = create_detector("yunet", {"model_path": detector_model})
    else:
        detector = create_detector("haar")
    rec = Recognizer(detector, emb, Matcher(gallery, 0.5))
    crops = [r.crop for f in frames[:25:5] for r in rec.process(f)]
    assert crops, f"{detector.name} found no face in the generated video"
    gallery.enroll("astronaut", np.stack(crops), emb.embed(np.stack(crops)), ["video"] * len(crops))
    gallery.save()
    return {
        "video": video,
        "gallery": d / "gallery.npz",
        "model": model,
        "detector": "yunet" if detector_model else "haar",
        "detector_model": detector_model,
        "threshold": -1.0 if detector_model else 0.5,
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
[recognition]
model = "{door["model"]}"
gallery = "{door["gallery"]}"
detector = "{door.get("detector", "haar")}"
detector_model = "{door.get("detector_model", "")}"
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
