"""`edge demo` runs in the suite: the enrolled person is recognised, strangers are unknown."""

import json
import subprocess
import sys

from edge.demo import run_demo


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
