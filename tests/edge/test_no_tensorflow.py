"""The Pi runtime must never import TensorFlow: checked in a fresh interpreter."""

import subprocess
import sys

MODULES = [
    "edge",
    "edge.cli",
    "edge.align",
    "edge.detectors",
    "edge.detectors.yunet",
    "edge.detectors.haar",
    "edge.preprocess",
    "edge.embedder",
    "edge.gallery",
    "edge.matching",
    "edge.pipeline",
    "edge.enroll",
    "edge.sources",
    "edge.sources.files",
    "edge.sources.opencv",
    "edge.sources.picamera",
]


def test_edge_imports_no_tensorflow():
    code = (
        "import sys, importlib\n"
        f"for m in {MODULES!r}: importlib.import_module(m)\n"
        "import edge.cli; edge.cli.build_parser()\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'tf_keras'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"edge imported: {out.stdout.strip()}"


def test_import_edge_is_cheap():
    code = "import sys, edge; print('cv2' in sys.modules, 'numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
