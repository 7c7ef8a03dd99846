"""Face exposure: brighten an under-exposed aligned crop, and smooth a noisy one, before it is
embedded.

A camera exposes for the whole scene; a face in a dark porch or against a bright sky comes out
too dark, and the encoder (trained on ordinarily lit photos) then scores it low. This applies
what a camera's face-priority auto-exposure would have done: one gain per crop that brings the
mean luminance of the face's centre (eyes, nose, mouth) up to :data:`TARGET`, at most
:data:`MAX_GAIN`, and never darkens. A crop already at or above the target is passed through
unchanged, so ordinarily lit faces (93-94% of the training faces) are not touched.

``TARGET`` (93 of 255) is about the 6th percentile of that luminance over the training crops
(5th / 25th percentile: 91 / 117 at 64 px, 88 / 114 at dlib's 150 px); the cap keeps sensor
noise from being amplified without limit. Measured with doorface's small encoder on the 78
identities held out of training (clean enrolment, probe darkened as the door benchmark darkens
a scene: brightness x0.2-0.35, gamma 1.0-1.2, noise sigma 3-6), at its threshold: TAR 0.583 ->
0.653 with FAR 0.0092 -> 0.0087; clean probes: TAR 0.733 -> 0.732, FAR 0.0097 -> 0.0100. It
does not help side light (a per-crop gain cannot undo a shadow on one half; CLAHE made things
worse). Targets 93-130 and caps 4-8 measured within 0.01 TAR. Cost: one grey conversion and a
multiply per crop (~0.02 ms at 64 px).

Noise: a dark face carries sensor noise and compression artefacts the encoder never saw in
training, and brightening amplifies them. A crop is therefore smoothed with a Gaussian of
:data:`DENOISE_SIGMA` pixels after the gain when either gate opens: its estimated noise
(:func:`noise_level`, Immerkaer's estimator) exceeds :data:`NOISE_ABOVE` grey levels (a face
a camera already brightened with its own gain at night: 7-11), or the gain itself exceeds
:data:`SMOOTH_ABOVE_GAIN` (the door benchmark's dark faces reach the crop through JPEG and
enlargement, which smear their noise to 0.8-2 on the estimate, under the first gate, while the
gain amplifies it with the block artefacts). Measured with dlib's encoder (bench_light.py,
docs/BENCHMARKS.md "Dark and noisy faces"; TAR at the threshold, brightened only -> smoothed,
held-out identities): the door's dark scene 0.760 -> 0.792 at equal FAR, camera-gained dark
faces 0.781 -> 0.819 at a lower FAR; on the door replays 2 more visits named, dark ones sooner,
no more strangers named ("Dark faces at the door, replayed"). Clean, lit faces pass unchanged
(the 16,757 training crops at dlib's 150 px: noise median 0.43, 99.9th percentile 1.4, one
above 3; gain above 2: 8 of them); smoothing every crop instead costs false accepts.
Crops smaller than :data:`DENOISE_MIN_SIDE` are never smoothed: at the small encoder's 64 px a
face's own texture reads as noise (training crops: median 2.5, 36% above 3, 99th percentile
7.2, where dark faces start at 6; a median-based wavelet estimate separates them no better).
Cost: ~0.05 ms per 150 px crop for the estimate, as much again for a blur.
"""

from __future__ import annotations

import cv2
import numpy as np

TARGET = 93.0  # mean luminance of the crop's centre the gain aims at (0..255)
MAX_GAIN = 4.0
#: Estimated noise (grey levels, sigma) above which a crop is smoothed; chosen on the
#: held-out identities with :data:`DENOISE_SIGMA` and :data:`SMOOTH_ABOVE_GAIN` (bench_light.py).
NOISE_ABOVE = 3.0
#: A crop brightened by more than this is smoothed whatever its noise reads: the door's dark
#: faces reach the chip through JPEG and enlargement, their noise smeared below NOISE_ABOVE
#: but amplified with the block artefacts by the gain (bench_light.py, "door dark").
SMOOTH_ABOVE_GAIN = 2.0
DENOISE_SIGMA = 1.0  # pixels, at the crop's own size
DENOISE_MIN_SIDE = 112  # smaller crops are never smoothed (see above)
_LAPLACE = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # RGB -> Y (ITU-R BT.601)


def centre_luminance(crop_rgb: np.ndarray) -> float:
    """Mean luminance of the middle of an aligned crop (rows 25-88%, columns 19-81%): the face
    from brows to chin, without hair or background."""
    h, w = crop_rgb.shape[:2]
    centre = crop_rgb[h // 4 : h * 7 // 8, w * 3 // 16 : w * 13 // 16]
    return float((centre.reshape(-1, 3).astype(np.float32) @ _LUMA).mean())


def exposure_gain(crop_rgb: np.ndarray) -> float:
    """The gain :func:`normalise_exposure` applies: 1.0 for a crop lit well enough."""
    return float(np.clip(TARGET / max(centre_luminance(crop_rgb), 1.0), 1.0, MAX_GAIN))


def noise_level(crop_rgb: np.ndarray) -> float:
    """Sigma (grey levels) of the additive noise in a crop, from the mean absolute response to
    a Laplacian difference mask that cancels smooth shading and most edges (J. Immerkaer, "Fast
    Noise Variance Estimation", CVIU 1996). Fine texture reads as a little noise too."""
    grey = cv2.cvtColor(np.ascontiguousarray(crop_rgb), cv2.COLOR_RGB2GRAY)
    h, w = grey.shape
    response = cv2.filter2D(grey, cv2.CV_32F, _LAPLACE)[1:-1, 1:-1]
    return float(np.sqrt(np.pi / 2) * cv2.norm(response, cv2.NORM_L1) / (6 * (w - 2) * (h - 2)))


def normalise_exposure(
    crops: np.ndarray,
    noise_above: float | None = None,
    gain_above: float | None = None,
    sigma: float = DENOISE_SIGMA,
) -> np.ndarray:
    """(N, H, W, 3) RGB uint8 crops, each under-exposed one brightened, then each one noisier
    than ``noise_above`` or brightened by more than ``gain_above`` smoothed with ``sigma``
    (None: :data:`NOISE_ABOVE`, :data:`SMOOTH_ABOVE_GAIN`; ``inf``: that gate off), when the
    crops are :data:`DENOISE_MIN_SIDE` px or more. A copy; the input is never modified."""
    bar = NOISE_ABOVE if noise_above is None else noise_above
    gain_bar = SMOOTH_ABOVE_GAIN if gain_above is None else gain_above
    if min(np.shape(crops)[1:3]) < DENOISE_MIN_SIDE:
        bar = gain_bar = np.inf
    out = np.array(crops, copy=True)
    for i, crop in enumerate(out):
        gain = exposure_gain(crop)
        if gain > 1.0:
            out[i] = np.clip(crop.astype(np.float32) * gain, 0, 255).astype(np.uint8)
        if gain > gain_bar or (bar < np.inf and noise_level(out[i]) > bar):
            out[i] = cv2.GaussianBlur(out[i], (0, 0), sigma)
    return out
