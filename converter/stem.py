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
from converter.inspect import builtin_code, read_flatbuffer


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
    return builtin_code(model.operatorCodes[op.opcodeIndex])


def _opcode(model, builtin: int, version: int) -> int:
    schema = _schema()
    for i, code in enumerate(model.operatorCodes):
        if builtin_code(code) == builtin:
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


def _kernel(model, tensor) -> np.ndarray:
    """A constant kernel's values (int8 or float32), in its OHWI shape."""
    dtype = np.int8 if tensor.type == _schema().TensorType.INT8 else np.float32
    values = np.frombuffer(bytes(model.buffers[tensor.buffer].data), dtype)
    return values.reshape([int(d) for d in tensor.shape])


def _set_kernel(model, tensor, kernel: np.ndarray) -> None:
    model.buffers[tensor.buffer].data = np.frombuffer(
        np.ascontiguousarray(kernel).tobytes(), np.uint8
    )
    tensor.shape = np.asarray(kernel.shape, np.int32)


def _blocks_input(model, side: int, stride: int) -> tuple[list, int]:
    """The ops that turn the graph's image into the stem's blocks (a STRIDED_SLICE to ``side``
    rows and columns where the image has more, then SPACE_TO_DEPTH), and their output."""
    schema = _schema()
    graph = model.subgraphs[0]
    x = int(graph.inputs[0])
    image = graph.tensors[x]
    ops = []
    if side < int(image.shape[1]):
        ends = np.array([1, side, side, 3], np.int32)
        bounds = {"begin": np.zeros(4, np.int32), "end": ends, "strides": np.ones(4, np.int32)}
        args = [_tensor(model, graph, f"stem/slice_{k}", [4], data=v) for k, v in bounds.items()]
        y = _tensor(model, graph, "stem/slice", ends, like=image)
        kind, options = schema.BuiltinOptions.StridedSliceOptions, _whole_batch()
        ops.append(
            _op(model, schema.BuiltinOperator.STRIDED_SLICE, 2, [x, *args], [y], kind, options)
        )
        x = y
    blocks = [1, side // stride, side // stride, 3 * stride * stride]
    y = _tensor(model, graph, "stem/space_to_depth", blocks, like=image)
    options = schema.SpaceToDepthOptionsT()
    options.blockSize = stride
    kind = schema.BuiltinOptions.SpaceToDepthOptions
    ops.append(_op(model, schema.BuiltinOperator.SPACE_TO_DEPTH, 2, [x], [y], kind, options))
    return ops, y


def space_to_depth_stem(data: bytes) -> tuple[bytes, str | None]:
    """The model with its strided 3-channel first convolution rewritten (module docstring), and
    a one-line account of it; the model unchanged and None where its first layer is not such a
    convolution (a doorface student's "same"-padded stem, a float16 model's dequantise)."""
    schema = _schema()
    model = read_flatbuffer(data)
    found = _strided_stem(model)
    if found is None:
        return data, None
    at, conv = found
    graph = model.subgraphs[0]
    kernel_t = graph.tensors[int(conv.inputs[1])]
    if kernel_t.type not in (schema.TensorType.INT8, schema.TensorType.FLOAT32):
        return data, None
    s, size = int(conv.builtinOptions.strideH), int(graph.tensors[int(graph.inputs[0])].shape[1])
    k = int(kernel_t.shape[1])
    n, kk = (size - k) // s + 1, -(-k // s)
    side = (n - 1 + kk) * s  # the rows the convolution reads, rounded up to whole blocks
    if side > size:
        return data, None  # would need a PAD, which costs more than the rewrite saves
    _set_kernel(model, kernel_t, to_blocks(_kernel(model, kernel_t), s))
    ops, blocks = _blocks_input(model, side, s)
    conv.inputs = np.asarray([blocks, *[int(i) for i in conv.inputs[1:]]], np.int32)
    conv.builtinOptions.strideH = conv.builtinOptions.strideW = 1
    graph.operators[at:at] = ops
    note = (
        f"stem: conv {k}x{k}/{s} on 3 channels -> space-to-depth {s} + conv {kk}x{kk}/1 "
        f"on {3 * s * s} (exact)"
    )
    return _pack(model), note


def _rewritten_stem(model) -> tuple[list[int], int, int] | None:
    """(indices of the slice and space-to-depth ops, block size, index of the convolution) of
    a stem :func:`space_to_depth_stem` wrote, else None."""
    schema = _schema()
    graph = model.subgraphs[0]
    if graph.inputs is None or len(graph.inputs) == 0:
        return None

    def readers(tensor: int) -> list[int]:
        return [i for i, op in enumerate(graph.operators) if tensor in list(op.inputs)]

    chain = readers(int(graph.inputs[0]))
    if len(chain) != 1:
        return None
    if _builtin(model, graph.operators[chain[0]]) == schema.BuiltinOperator.STRIDED_SLICE:
        chain += readers(int(graph.operators[chain[0]].outputs[0]))[:1]
    depth = graph.operators[chain[-1]]
    if _builtin(model, depth) != schema.BuiltinOperator.SPACE_TO_DEPTH:
        return None
    conv = readers(int(depth.outputs[0]))
    if (
        len(conv) != 1
        or _builtin(model, graph.operators[conv[0]]) != schema.BuiltinOperator.CONV_2D
    ):
        return None
    return chain, int(depth.builtinOptions.blockSize), conv[0]


def plain_stem(data: bytes) -> bytes:
    """Undo :func:`space_to_depth_stem`: the strided first convolution back as it was trained
    (its size is the smallest that gives the same output size and drops only zero taps).
    A model without the rewrite, or bytes that are no model, come back unchanged (for the
    runtime to judge)."""
    try:
        model = read_flatbuffer(data)
    except ConverterError:
        return data
    found = _rewritten_stem(model) if model.subgraphs else None
    if found is None:
        return data
    chain, s, at = found
    graph = model.subgraphs[0]
    image, conv = int(graph.inputs[0]), graph.operators[at]
    kernel_t = graph.tensors[int(conv.inputs[1])]
    kk = int(kernel_t.shape[1])
    full = from_blocks(_kernel(model, kernel_t), s, kk * s)
    size = int(graph.tensors[image].shape[1])
    n = int(graph.tensors[int(conv.outputs[0])].shape[1])
    k = max(size - s * (n - 1) - (s - 1), 1)  # the smallest kernel giving n outputs
    while k < kk * s and (full[:, k:].any() or full[:, :, k:].any()):
        k += 1
    _set_kernel(model, kernel_t, full[:, :k, :k])
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
