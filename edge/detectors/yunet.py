"""YuNet (OpenCV's ``FaceDetectorYN``): boxes and 5 real landmarks, ~5 ms at 320x240.

The ONNX model is not shipped (get ``face_detection_yunet_*.onnx`` from opencv_zoo, MIT
licence); point ``model_path`` at it or set ``DOORFACE_YUNET_MODEL``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge.detectors.base import Detector, DetectorConfig, Face
from edge.errors import ConfigError, DetectorError

ENV_MODEL = "DOORFACE_YUNET_MODEL"


@dataclass
class YuNetConfig(DetectorConfig):
    model_path: str = ""
    nms_threshold: float = 0.3
    top_k: int = 50

    def validate(self, prefix: str) -> None:
        super().validate(prefix)
        if not 0.0 < self.nms_threshold <= 1.0:
            raise ConfigError(
                f"{prefix}.nms_threshold: must be in (0, 1], got {self.nms_threshold}"
            )


def find_model(configured: str = "") -> Path | None:
    """The YuNet ONNX to use: the configured path, else $DOORFACE_YUNET_MODEL, else None."""
    for candidate in (configured, os.environ.get(ENV_MODEL, "")):
        if candidate:
            return Path(candidate).expanduser()
    return None


class YuNetDetector(Detector):
    name = "yunet"
    config_class = YuNetConfig
    config: YuNetConfig

    def __init__(self, config: YuNetConfig | None = None) -> None:
        super().__init__(config)
        path = find_model(self.config.model_path)
        if path is None:
            raise DetectorError(
                f"detector.yunet.model_path: not set (nor ${ENV_MODEL}); "
                "point it at face_detection_yunet_*.onnx"
            )
        if not path.is_file():
            raise DetectorError(f"detector.yunet.model_path: {path}: no such file")
        try:
            self._net = cv2.FaceDetectorYN.create(
                str(path),
                "",
                (320, 320),
                # Keep low-score candidates here; the base class applies score_threshold.
                min(self.config.score_threshold, 0.5),
                self.config.nms_threshold,
                self.config.top_k,
            )
        except cv2.error as exc:
            msg = str(exc).strip().splitlines()[-1] if str(exc).strip() else "unknown error"
            raise DetectorError(f"{path}: not a YuNet ONNX model ({msg})") from None
        self.model_path = path
        self._input_size: tuple[int, int] | None = None

    def _detect(self, image_bgr: np.ndarray) -> list[Face]:
        h, w = image_bgr.shape[:2]
        if self._input_size != (w, h):
            self._net.setInputSize((w, h))
            self._input_size = (w, h)
        _, rows = self._net.detect(image_bgr)
        if rows is None:
            return []
        return [
            Face(
                box=(float(r[0]), float(r[1]), float(r[2]), float(r[3])),
                score=float(r[14]),
                landmarks=np.asarray(r[4:14], np.float32).reshape(5, 2),
            )
            for r in rows
        ]
