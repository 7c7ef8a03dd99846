"""Read a ``.tflite`` flatbuffer directly (no TensorFlow, no interpreter) and judge it.

We parse the file with the schema bindings LiteRT ships (``ai_edge_litert.schema_py_generated``
+ ``flatbuffers``) rather than ask the converter what it did: the check must hold even if the
converter silently fell back to float kernels. Trade-off: the object API unpacks every buffer
into Python lists-of-ints, which is slow for models of tens of MB; our encoders are < 10 MB.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from converter.errors import ConverterError
from edge.files import FileError, read_regular

MAX_MODEL_BYTES = 512_000_000  # a face encoder is a few MB; a file this size is not one

#: Tensor types allowed in a full-integer model: int8 activations/weights, int32 biases and
#: shape/axis constants. Anything float (or int16 activations, int64 etc.) is a violation.
INT8_ALLOWED_TYPES = frozenset({"INT8", "INT32"})
FLOAT_TYPES = frozenset({"FLOAT32", "FLOAT16", "FLOAT64", "BFLOAT16"})


def _enum_names(cls: type) -> dict[int, str]:
    return {v: k for k, v in vars(cls).items() if not k.startswith("_") and isinstance(v, int)}


@dataclass
class TensorInfo:
    name: str
    dtype: str
    shape: tuple[int, ...]
    scale: float = 0.0
    zero_point: int = 0
    constant: bool = False
    size: int = 0  # elements


@dataclass
class OpInfo:
    name: str  # BUILTIN name, or "CUSTOM:<code>" (Flex ops are CUSTOM:Flex...)
    inputs: list[int] = field(default_factory=list)
    outputs: list[int] = field(default_factory=list)


@dataclass
class ModelReport:
    path: str
    file_size: int
    tensors: list[TensorInfo]
    ops: list[OpInfo]
    inputs: list[int]
    outputs: list[int]

    @property
    def op_counts(self) -> Counter[str]:
        return Counter(op.name for op in self.ops)

    @property
    def tensor_type_counts(self) -> Counter[str]:
        return Counter(t.dtype for t in self.tensors)

    @property
    def param_count(self) -> int:
        """Elements held in constant buffers (weights, biases, shape constants)."""
        return sum(t.size for t in self.tensors if t.constant)

    @property
    def input(self) -> TensorInfo:
        return self.tensors[self.inputs[0]]

    @property
    def output(self) -> TensorInfo:
        return self.tensors[self.outputs[0]]

    def float_ops(self) -> list[str]:
        """Ops touching a float tensor (input or output), e.g. a stray float SQUARE."""
        bad = []
        for op in self.ops:
            types = {self.tensors[i].dtype for i in op.inputs + op.outputs if i >= 0}
            if types & FLOAT_TYPES:
                bad.append(op.name)
        return bad

    def int8_violations(self) -> list[str]:
        """Why this is not a full-integer int8 model; empty when it is."""
        problems = []
        custom = sorted({op.name for op in self.ops if op.name.startswith("CUSTOM")})
        if custom:
            problems.append(f"non-builtin ops {', '.join(custom)}")
        float_ops = Counter(self.float_ops())
        if float_ops:
            problems.append(
                "float ops " + ", ".join(f"{k} x{v}" for k, v in sorted(float_ops.items()))
            )
        other = Counter(t.dtype for t in self.tensors if t.dtype not in INT8_ALLOWED_TYPES)
        if other:
            problems.append(
                "non-int8 tensors " + ", ".join(f"{k} x{v}" for k, v in sorted(other.items()))
            )
        for label, t in (("input", self.input), ("output", self.output)):
            if t.dtype != "INT8":
                problems.append(f"{label} tensor is {t.dtype}, not INT8")
        return problems


def inspect_model(path: str | Path) -> ModelReport:
    """Parse a TFLite file. Raises ConverterError for a missing or non-TFLite file."""
    path = Path(path)
    try:
        data = read_regular(path, MAX_MODEL_BYTES)
    except FileError as exc:
        raise ConverterError(str(exc)) from None
    return inspect_bytes(data, str(path))


def read_flatbuffer(data: bytes, where: str = "model") -> Any:
    """TFLite bytes as the schema's object tree (``ModelT``), for reading or rewriting
    (:mod:`converter.stem`). ConverterError, one line, for bytes that are not a TFLite model."""
    from ai_edge_litert import schema_py_generated as schema

    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ConverterError(f"{where}: not a TFLite model (no TFL3 identifier)")
    try:
        return schema.ModelT.InitFromPackedBuf(bytearray(data), 0)
    except Exception as exc:
        raise ConverterError(f"{where}: corrupt TFLite flatbuffer ({exc})") from None


def builtin_code(code: Any) -> int:
    """An operator code's builtin op: files keep it in two fields (the old int8 one caps at 127)."""
    return max(int(code.builtinCode), int(code.deprecatedBuiltinCode))


def inspect_bytes(data: bytes, where: str = "model") -> ModelReport:
    """Parse TFLite bytes (see :func:`inspect_model`)."""
    from ai_edge_litert import schema_py_generated as schema

    model = read_flatbuffer(data, where)
    if not model.subgraphs:
        raise ConverterError(f"{where}: TFLite model has no subgraph")
    type_names = _enum_names(schema.TensorType)
    op_names = _enum_names(schema.BuiltinOperator)
    buffers = model.buffers or []
    graph = model.subgraphs[0]
    tensors = [_tensor(t, buffers, type_names) for t in graph.tensors or []]
    ops = []
    for op in graph.operators or []:
        code = model.operatorCodes[op.opcodeIndex]
        builtin = builtin_code(code)
        name = op_names.get(builtin, f"BUILTIN_{builtin}")
        if name == "CUSTOM":
            custom = code.customCode
            custom = custom.decode() if isinstance(custom, bytes) else str(custom)
            name = f"CUSTOM:{custom}"
        ops.append(OpInfo(name, _ints(op.inputs), _ints(op.outputs)))
    inputs, outputs = _ints(graph.inputs), _ints(graph.outputs)
    if len(inputs) < 1 or len(outputs) < 1:
        raise ConverterError(f"{where}: TFLite model has no input or output tensor")
    return ModelReport(where, len(data), tensors, ops, inputs, outputs)


def _ints(values: Any) -> list[int]:
    return [] if values is None else [int(v) for v in values]


def _tensor(t: Any, buffers: list[Any], type_names: dict[int, str]) -> TensorInfo:
    shape = tuple(_ints(t.shape))
    name = t.name.decode() if isinstance(t.name, bytes) else str(t.name)
    buf = buffers[t.buffer] if 0 < t.buffer < len(buffers) else None
    constant = buf is not None and (
        (buf.data is not None and len(buf.data) > 0) or getattr(buf, "size", 0) > 0
    )
    scale, zero = 0.0, 0
    q = t.quantization
    if q is not None and q.scale is not None and len(q.scale) == 1:
        scale = float(q.scale[0])
        zero = int(q.zeroPoint[0]) if q.zeroPoint is not None and len(q.zeroPoint) else 0
    return TensorInfo(
        name=name,
        dtype=type_names.get(int(t.type), f"TYPE_{t.type}"),
        shape=shape,
        scale=scale,
        zero_point=zero,
        constant=constant,
        size=int(np.prod(shape)) if shape else 1,
    )


def format_report(report: ModelReport) -> str:
    """Human-readable summary: size, params, I/O, ops with counts, tensor types."""
    i, o = report.input, report.output
    lines = [
        f"file: {report.path}",
        f"size: {report.file_size} bytes ({report.file_size / 1024:.1f} KiB)",
        f"parameters: {report.param_count}",
        f"input: {i.dtype} {list(i.shape)} scale={i.scale:.6g} zero_point={i.zero_point}",
        f"output: {o.dtype} {list(o.shape)} scale={o.scale:.6g} zero_point={o.zero_point}",
        f"ops ({len(report.ops)}):",
    ]
    lines += [f"  {name:<28} {n}" for name, n in sorted(report.op_counts.items())]
    lines.append("tensor types:")
    lines += [f"  {name:<28} {n}" for name, n in sorted(report.tensor_type_counts.items())]
    return "\n".join(lines)


@dataclass
class Delegation:
    """How LiteRT's default CPU delegate (XNNPACK) takes the model on this machine."""

    partitions: int  # DELEGATE nodes: 1 = the whole graph runs in XNNPACK
    undelegated: Counter[str]  # op types whose weights no partition took (left to builtin kernels)

    def summary(self) -> str:
        left = ", ".join(f"{k} x{v}" for k, v in sorted(self.undelegated.items())) or "none seen"
        return f"XNNPACK partitions: {self.partitions}; ops left outside XNNPACK: {left}"


def xnnpack_delegation(path: str | Path) -> Delegation:
    """Load the model in LiteRT with its default delegates and see what XNNPACK took.

    Robust part: the number of DELEGATE nodes (each partition boundary costs a sync and, for
    int8, often a kernel switch). Heuristic part: an op whose constant inputs (weights, PReLU
    alphas) appear in no DELEGATE node's inputs was not delegated; ops without constants are not
    judged. Trade-off: this needs the runtime (not just the flatbuffer) and reflects the LiteRT
    version installed here, which is the one the Pi installs too.
    """
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path))
    interp.allocate_tensors()
    ops = interp._get_ops_details()
    delegates = [op for op in ops if op["op_name"] == "DELEGATE"]
    taken = {int(t) for op in delegates for t in op["inputs"]}
    produced = {int(t) for op in ops for t in op["outputs"]}
    graph_inputs = {int(d["index"]) for d in interp.get_input_details()}
    left: Counter[str] = Counter()
    for op in ops:
        if op["op_name"] == "DELEGATE":
            continue
        consts = [int(t) for t in op["inputs"] if t >= 0 and int(t) not in produced]
        consts = [t for t in consts if t not in graph_inputs]
        if consts and not any(t in taken for t in consts):
            left[op["op_name"]] += 1
    return Delegation(len(delegates), left)
