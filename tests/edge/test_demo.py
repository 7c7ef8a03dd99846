"""`edge demo` runs in the suite: the enrolled person is recognised, strangers are unknown."""

import json
import re
import subprocess
import sys

import cv2
import numpy as np
import pytest

from edge.cli import main
from edge.demo import data_visitors, run_demo
from edge.errors import DoorfaceError


def test_demo_recognises_the_astronaut_and_not_the_strangers():
    result = run_demo(quiet=True)
    events, summary = result["events"], result["summary"]
    recognized = [e for e in events if e["type"] == "recognized"]
    unknown = [e for e in events if e["type"] == "unknown"]
    # Eileen Collins visits twice; the second visit falls inside her cooldown: one event
    assert [e["person"] for e in recognized] == ["Eileen Collins"]
    # every stranger becomes "unknown" (the unknown cooldown may merge visits that are close)
    assert len(unknown) >= 1 and all(e["person"] is None for e in unknown)
    assert summary["visits"].count("stranger") >= 2
    for e in events:
        assert {
            "id",
            "type",
            "person",
            "score",
            "threshold",
            "timestamp",
            "box",
            "model_id",
        } <= set(e)


def test_demo_cli_prints_events_and_summary():
    out = subprocess.run(
        [sys.executable, "-m", "edge.cli", "demo"], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    events = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    assert any(e["type"] == "recognized" and e["person"] == "Eileen Collins" for e in events)
    assert "demo:" in out.stderr and "recognized ['Eileen Collins']" in out.stderr


def _people(root, photos: dict[str, list[bytes]]):
    """A --data tree: a folder per person holding the given files (a.jpg, b.jpg, ...)."""
    for person, files in photos.items():
        (root / person).mkdir(parents=True)
        for i, data in enumerate(files):
            (root / person / f"{'abcdefgh'[i]}.jpg").write_bytes(data)
    return root


@pytest.fixture
def jpg():
    return cv2.imencode(".jpg", np.full((40, 40, 3), 120, np.uint8))[1].tobytes()


def test_data_strangers_without_a_readable_photo_are_skipped(tmp_path, jpg, caplog):
    root = _people(tmp_path, {"Host": [jpg] * 4, "A": [b"broken"], "B": [jpg], "C": [b"no", jpg]})
    name, enrol, visitors = data_visitors(root)
    assert name == "Host" and len(enrol) == 2
    assert [len(v.photos) for v in visitors] == [2, 1, 1, 2]
    assert f"{root / 'A'}: no readable photo; skipped" in caplog.text


@pytest.mark.parametrize(
    ("photos", "message"),
    [
        ({"Host": [b"x"] * 4, "A": [b"y"], "B": [b"z"]}, "fewer than 2 readable photos"),
        ({"A": [b"y"], "B": [b"z"]}, "3+ people, one with 4+ photos"),
    ],
)
def test_data_without_enough_readable_photos_is_a_one_line_error(tmp_path, photos, message):
    with pytest.raises(DoorfaceError, match=re.escape(message)):
        data_visitors(_people(tmp_path, photos))


def test_data_with_too_few_readable_strangers_is_a_one_line_error(tmp_path, jpg):
    root = _people(tmp_path, {"Host": [jpg] * 4, "A": [b"broken"], "B": [jpg]})
    with pytest.raises(DoorfaceError, match="fewer than 2 other people with a readable photo"):
        data_visitors(root)


def test_data_must_be_a_folder(tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    for path, problem in [("nowhere", "no such folder"), ("afile", "not a folder")]:
        with pytest.raises(SystemExit) as info:
            main(["demo", "--data", str(tmp_path / path)])
        err = capsys.readouterr().err
        assert info.value.code == 2
        assert err.splitlines()[-1].endswith(f"argument --data: {tmp_path / path}: {problem}")
