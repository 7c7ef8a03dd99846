"""Calibrated ``confidence``: a score -> P(same person), read from the manifest.

The score is the model's (:mod:`edge.scoring`: cosine similarity, cohort-normalised when the
manifest has a cohort); the fit is on that scale.

The model manifest may carry a ``confidence`` block, fitted by :mod:`trainer.calibration` on
pairs of identities the encoder never trained on::

    "confidence": {"kind": "logistic", "a": 14.2, "b": -8.9,
                   "fitted_on": "...", "pairs": {"same": 7144, "different": 20000}}

``confidence(s) = 1 / (1 + exp(-(a * s + b)))``: the probability that two faces with score
``s`` are the same person, for a pair drawn at even odds (same and different pairs weighted
equally when fitting). It is monotone in ``s``, so it never reorders matches; it only says
how sure a score is. A manifest without the block has no confidence (``None``). Pure Python:
no NumPy or TensorFlow needed to apply it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from edge.errors import ModelError

KINDS = ("logistic",)


@dataclass(frozen=True)
class ConfidenceModel:
    """The manifest's ``confidence`` block."""

    kind: str
    a: float  # logit slope per unit of score (> 0: a higher score is more likely the same)
    b: float  # logit at score 0
    fitted_on: str  # what the pairs were, in words
    pairs: dict[str, int]  # {"same": n, "different": m} pairs the fit saw

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "a": self.a,
            "b": self.b,
            "fitted_on": self.fitted_on,
            "pairs": dict(self.pairs),
        }

    @classmethod
    def from_json(cls, data: Any, where: str) -> ConfidenceModel:
        """The block, checked: a known kind, a finite slope ``a`` > 0 (a higher cosine must
        never mean less likely the same person), a finite ``b``, counts of the fitted pairs.
        Errors name the key: ``model.json: confidence: a: must be a finite number > 0``."""
        if not isinstance(data, dict):
            raise ModelError(f"{where}: must be a JSON object")
        for key in ("kind", "a", "b", "fitted_on", "pairs"):
            if key not in data:
                raise ModelError(f"{where}: {key}: missing")
        kind, a, b, fitted_on, pairs = (data[k] for k in ("kind", "a", "b", "fitted_on", "pairs"))
        if kind not in KINDS:
            raise ModelError(f"{where}: kind: must be one of {KINDS}, got {kind!r}")
        if not (_number(a) and math.isfinite(a) and a > 0):
            raise ModelError(f"{where}: a: must be a finite number > 0, got {a!r}")
        if not (_number(b) and math.isfinite(b)):
            raise ModelError(f"{where}: b: must be a finite number, got {b!r}")
        if not isinstance(fitted_on, str):
            raise ModelError(f"{where}: fitted_on: must be a string")
        if not (
            isinstance(pairs, dict) and all(_count(pairs.get(k)) for k in ("same", "different"))
        ):
            raise ModelError(
                f"{where}: pairs: must be {{'same': n, 'different': m}} with n, m >= 0, "
                f"got {pairs!r}"
            )
        return cls(
            kind, float(a), float(b), fitted_on, {k: pairs[k] for k in ("same", "different")}
        )


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def confidence(score: float, params: ConfidenceModel) -> float:
    """P(same person | score) in [0, 1]; monotone non-decreasing in ``score`` for a > 0."""
    z = params.a * float(score) + params.b
    # 1 / (1 + e^-z) without overflow for large |z|
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    ez = math.exp(z)
    return ez / (1.0 + ez)
