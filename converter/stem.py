"""The first convolution of an encoder as space-to-depth + a stride-1 convolution: exact, faster.

dlib's network (and ``trainer prune-dlib``'s students cut from it) opens with a 7x7 convolution
of stride 2 (4 for the students) on the 3 colour channels. XNNPACK's int8 kernels multiply
channels in groups of 4-8, so 3 input channels leave most of each group empty: that one layer
cost 2.4-2.7 of dlib's 8.3 ms per face on an AVX2 core (0.43-0.53 of the student's 2.5),
although it holds 9% of dlib's multiply-adds. Rearranging each s x s block of pixels into
channels (SPACE_TO_DEPTH, block s) turns it into a stride-1 convolution of ceil(7 / s) taps
on 3 s^2 channels, whose kernel holds the same weights with zeros where 7 taps do not fill
ceil(7 / s) * s: the same sums of the same int8 products, so the same int8 output bit for bit
(tested), in 1.2 instead of 2.4-2.7 ms for dlib's stem (0.16 instead of 0.43-0.53 for the
student's). Rows and columns the convolution never reads are cut off first (STRIDED_SLICE; a PAD
would cost more than it saves).

:func:`space_to_depth_stem` rewrites a converted model (``converter.convert`` applies it to
every model it makes); :func:`plain_stem` undoes it, for readers that want the network as
trained (``trainer.recover``) and for measuring the two side by side. Trade-off: the stem's
kernel is stored with its zeros (45 more bytes per output channel for a 7x7 stride-2 stem).
"""

from __future__ import annotations

import numpy as np

from converter.errors import ConverterError


def _schema():
    from ai_edge_litert import schema_py_generated as schema

    return schema


def to_blocks(kernel: np.ndarray, stride: int) -> np.ndarray:
    """(O, k, k, C) OHWI kernel of a stride-``stride`` convolution -> (O, kk, kk, s*s*C) of the
    stride-1 convolution over SPACE_TO_DEPTH(stride) of its input (kk = ceil(k / s)); the
    depth order is TensorFlow's: (row in block, column in block, channel)."""
    o, k, _, c = kernel.shape
    s, kk = stride, -(-kernel.shape[1] // stride)
    padded = np.zeros((o, kk * s, kk * s, c), kernel.dtype)
    padded[:, :k, :k] = kernel
    blocks = padded.reshape(o, kk, s, kk, s, c).transpose(0, 1, 3, 2, 4, 5)
    return np.ascontiguousarray(blocks.reshape(o, kk, kk, s * s * c))


def from_blocks(kernel: np.ndarray, stride: int, size: int) -> np.ndarray:
    """Inverse of :func:`to_blocks`: the (O, size, size, C) kernel of the strided convolution
    (``size``: its original k; the taps beyond it are the zeros to_blocks added)."""
    o, kk, _, depth = kernel.shape
    s, c = stride, depth // (stride * stride)
    full = (
        kernel.reshape(o, kk, kk, s, s, c).transpose(0, 1, 3, 2, 4, 5).reshape(o, kk * s, kk * s, c)
    )
    return np.ascontiguousarray(full[:, :size, :size])


def _builtin(model, op) -> int:
    code = model.operatorCodes[op.opcodeIndex]
    return max(int(code.builtinCode), int(code.deprecatedBuiltinCode))


def _opcode(model, builtin: int, version: int) -> int:
    schema = _schema()
    for i, code in enumerate(model.operatorCodes):
        if max(int(code.builtinCode), int(code.deprecatedBuiltinCode)) == builtin:
            return i
    code = schema.OperatorCodeT()
    code.builtinCode, code.deprecatedBuiltinCode, code.version = builtin, min(builtin, 127), version
    model.operatorCodes.append(code)
    return len(model.operatorCodes) - 1


def _tensor(model, graph, name: str, shape, like=None, data: np.ndarray | None = None) -> int:
    schema = _schema()
    t = schema.TensorT()
    t.name, t.shape = name.encode(), np.asarray(shape, np.int32)
    t.type = like.type if like is not None else schema.TensorType.INT32
    t.quantization = like.quantization if like is not None else None
    buffer = schema.BufferT()
    buffer.data = None if data is None else np.frombuffer(data.tobytes(), np.uint8)
    model.buffers.append(buffer)
    t.buffer = len(model.buffers) - 1
    graph.tensors.append(t)
    return len(graph.tensors) - 1


def _op(model, builtin: int, version: int, inputs, outputs, options_type: int, options):
    op = _schema().OperatorT()
    op.opcodeIndex = _opcode(model, builtin, version)
    op.inputs, op.outputs = np.asarray(inputs, np.int32), np.asarray(outputs, np.int32)
    op.builtinOptionsType, op.builtinOptions = options_type, options
    return op


def _whole_batch():
    """STRIDED_SLICE options that keep every image of the batch (and every channel): the
    edge resizes the input to a face's 2-4 views, so the batch dimension is not always 1."""
    options = _schema().StridedSliceOptionsT()
    options.beginMask = options.endMask = 0b1001  # dimensions 0 and 3 whole
    return options


def _load(data: bytes):
    schema = _schema()
    try:
        return schema.ModelT.InitFromPackedBuf(bytearray(data), 0)
    except Exception as exc:
        raise ConverterError(f"corrupt TFLite flatbuffer ({exc})") from None


def _pack(model) -> bytes:
    import flatbuffers

    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _strided_stem(model):
    """(op index, op) of the convolution reading the graph's image input when it is a VALID,
    undilated, square stride > 1 CONV_2D on 3 channels with a constant kernel; else None."""
    schema = _schema()
    graph = model.subgraphs[0]
    image = int(graph.inputs[0])
    for i, op in enumerate(graph.operators):
        if image not in list(op.inputs):
            continue
        if _builtin(model, op) != schema.BuiltinOperator.CONV_2D or int(op.inputs[0]) != image:
            return None
        o, kernel = op.builtinOptions, graph.tensors[int(op.inputs[1])]
        shape = [int(d) for d in graph.tensors[image].shape]
        square = len(shape) == 4 and shape[1] == shape[2] and shape[3] == 3
        if not square or kernel.shape[1] != kernel.shape[2] or kernel.shape[3] != 3:
            return None
        if o.padding != schema.Padding.VALID or o.strideH != o.strideW or o.strideH < 2:
            return None
        if (o.dilationHFactor, o.dilationWFactor) != (1, 1):
            return None
        if model.buffers[kernel.buffer].data is None:
            return None  # a kernel computed at run time
        return i, op
    return None


def space_to_depth_stem(data: bytes) -> tuple[bytes, str | None]:
    """The model with its strided 3-channel first convolution rewritten (module docstring), and
    a one-line account of it; the model unchanged and None where its first layer is not such a
    convolution (a doorface student's "same"-padded stem, a float16 model's dequantise)."""
    schema = _schema()
    model = _load(data)
    found = _strided_stem(model)
    if found is None:
        return data, None
    at, conv = found
    graph = model.subgraphs[0]
    image = graph.tensors[int(graph.inputs[0])]
    kernel_t = graph.tensors[int(conv.inputs[1])]
    s, size = int(conv.builtinOptions.strideH), int(image.shape[1])
    o, k = int(kernel_t.shape[0]), int(kernel_t.shape[1])
    n = (size - k) // s + 1
    kk = -(-k // s)
    side = (n - 1 + kk) * s  # the rows the convolution reads, rounded up to whole blocks
    if side > size:
        return data, None  # would need a PAD, which costs more than the rewrite saves
    if kernel_t.type not in (schema.TensorType.INT8, schema.TensorType.FLOAT32):
        return data, None
    dtype = np.int8 if kernel_t.type == schema.TensorType.INT8 else np.float32
    kernel = np.frombuffer(bytes(model.buffers[kernel_t.buffer].data), dtype).reshape(o, k, k, 3)
    blocks = to_blocks(kernel, s)
    model.buffers[kernel_t.buffer].data = np.frombuffer(blocks.tobytes(), np.uint8)
    kernel_t.shape = np.asarray(blocks.shape, np.int32)
    x, new_ops = int(graph.inputs[0]), []
    if side < size:
        ends = np.array([1, side, side, 3], np.int32)
        bounds = {"begin": np.zeros(4, np.int32), "end": ends, "strides": np.ones(4, np.int32)}
        args = [
            _tensor(model, graph, f"stem/slice_{key}", [4], data=v) for key, v in bounds.items()
        ]
        y = _tensor(model, graph, "stem/slice", ends, like=image)
        new_ops.append(
            _op(
                model,
                schema.BuiltinOperator.STRIDED_SLICE,
                2,
                [x, *args],
                [y],
                schema.BuiltinOptions.StridedSliceOptions,
                _whole_batch(),
            )
        )
        x = y
    y = _tensor(
        model, graph, "stem/space_to_depth", [1, side // s, side // s, 3 * s * s], like=image
    )
    options = schema.SpaceToDepthOptionsT()
    options.blockSize = s
    new_ops.append(
        _op(
            model,
            schema.BuiltinOperator.SPACE_TO_DEPTH,
            2,
            [x],
            [y],
            schema.BuiltinOptions.SpaceToDepthOptions,
            options,
        )
    )
    conv.inputs = np.asarray([y, *[int(i) for i in conv.inputs[1:]]], np.int32)
    conv.builtinOptions.strideH = conv.builtinOptions.strideW = 1
    graph.operators[at:at] = new_ops
    note = (
        f"stem: conv {k}x{k}/{s} on 3 channels -> space-to-depth {s} + conv {kk}x{kk}/1 "
        f"on {3 * s * s} (exact)"
    )
    return _pack(model), note


def plain_stem(data: bytes) -> bytes:
    """Undo :func:`space_to_depth_stem`: the strided first convolution back as it was trained
    (its size is the smallest that gives the same output size and drops only zero taps).
    A model without the rewrite, or bytes that are no model, come back unchanged (for the
    runtime to judge)."""
    schema = _schema()
    if data[4:8] != b"TFL3":
        return data
    try:
        model = _load(data)
    except ConverterError:
        return data
    if (
        not model.subgraphs
        or model.subgraphs[0].inputs is None
        or len(model.subgraphs[0].inputs) == 0
    ):
        return data
    graph = model.subgraphs[0]
    image = int(graph.inputs[0])
    first = [i for i, op in enumerate(graph.operators) if image in list(op.inputs)]
    if len(first) != 1:
        return data
    chain, x = [first[0]], image
    op = graph.operators[first[0]]
    if _builtin(model, op) == schema.BuiltinOperator.STRIDED_SLICE:
        x = int(op.outputs[0])
        chain.append(next(i for i, o in enumerate(graph.operators) if x in list(o.inputs)))
        op = graph.operators[chain[-1]]
    if _builtin(model, op) != schema.BuiltinOperator.SPACE_TO_DEPTH:
        return data
    s, depth = int(op.builtinOptions.blockSize), int(op.outputs[0])
    conv_at = next(i for i, o in enumerate(graph.operators) if depth in list(o.inputs))
    conv = graph.operators[conv_at]
    if _builtin(model, conv) != schema.BuiltinOperator.CONV_2D:
        return data
    kernel_t = graph.tensors[int(conv.inputs[1])]
    dtype = np.int8 if kernel_t.type == schema.TensorType.INT8 else np.float32
    o, kk, _, d = (int(v) for v in kernel_t.shape)
    blocks = np.frombuffer(bytes(model.buffers[kernel_t.buffer].data), dtype).reshape(o, kk, kk, d)
    size = int(graph.tensors[image].shape[1])
    n = int(graph.tensors[int(conv.outputs[0])].shape[1])
    full = from_blocks(blocks, s, kk * s)
    k = max(size - s * (n - 1) - (s - 1), 1)  # the smallest kernel giving n outputs
    while k < kk * s and (full[:, k:].any() or full[:, :, k:].any()):
        k += 1
    kernel = np.ascontiguousarray(full[:, :k, :k])
    model.buffers[kernel_t.buffer].data = np.frombuffer(kernel.tobytes(), np.uint8)
    kernel_t.shape = np.asarray(kernel.shape, np.int32)
    conv.inputs = np.asarray([image, *[int(i) for i in conv.inputs[1:]]], np.int32)
    conv.builtinOptions.strideH = conv.builtinOptions.strideW = s
    removed = [graph.operators[i] for i in chain]
    graph.operators = [op for i, op in enumerate(graph.operators) if i not in chain]
    still_read = {int(t) for op in graph.operators for t in op.inputs}
    for op in removed:  # the slice's bounds: constants nothing reads any more
        for t in (int(t) for t in op.inputs):
            if t not in still_read and t != image:
                model.buffers[graph.tensors[t].buffer].data = None
    return _pack(model)
