"""The edge benchmark's peer rows: YuNet on OpenCV's DNN module, as the edge ran it before,
must find the faces the shipped LiteRT detector finds, or its detection time compares
different work."""

from __future__ import annotations

import cv2
import numpy as np

from benchmarks.bench_edge import detectors


def test_every_yunet_row_finds_the_same_faces(astronaut_bgr):
    frame = np.full((480, 640, 3), 90, np.uint8)
    frame[20:320, 20:320] = cv2.resize(astronaut_bgr, (300, 300), interpolation=cv2.INTER_AREA)
    frame[190:470, 350:630] = cv2.resize(astronaut_bgr, (280, 280), interpolation=cv2.INTER_AREA)
    made = detectors(320)
    shipped = made["yunet"]().detect(frame)
    on_opencv = made["yunet on OpenCV DNN"]().detect(frame)
    assert len(shipped) == len(on_opencv) == 2
    for ours, theirs in zip(shipped, on_opencv, strict=True):
        np.testing.assert_allclose(ours.box, theirs.box, atol=1e-3)
        np.testing.assert_allclose(ours.landmarks, theirs.landmarks, atol=1e-3)
    unrefined = made["yunet unrefined"]().detect(frame)
    assert [f.box for f in unrefined] == [f.box for f in shipped]  # the pass keeps boxes
