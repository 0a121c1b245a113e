"""`fraudgate demo` end to end, as a user runs it, on a small simulation."""

import json
import subprocess
import sys


def test_demo_runs_the_whole_loop(tmp_path):
    workdir = tmp_path / "demo"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "fraudgate",
            "demo",
            "--workdir",
            str(workdir),
            "--days",
            "40",
            "--tx-per-day",
            "3000",
            "--replay",
            "300",
            "--rate",
            "300",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    offline = json.loads((workdir / "offline.json").read_text())
    assert set(offline["models"]) == {"v1", "v2"}
    assert offline["registry"]["aliases"] == {"champion": "1", "challenger": "2"}
    online = json.loads((workdir / "online.json").read_text())
    replay = online["replay"]
    assert replay["ok"] == replay["sent"] == 300 and not replay["errors"]
    assert set(replay["split"]) == {"fraud-v1-baseline", "fraud-v2-candidate"}
    assert replay["labels"]["inserted"] == 300 and replay["labels"]["unknown"] == 0
    roles = {(row["model"], row["role"]): row for row in online["outcomes"]}
    # 100% mirror: every replayed transaction is scored by both models
    for model in ("fraud-v1-baseline", "fraud-v2-candidate"):
        served = roles.get((model, "served"), {"decisions": 0})["decisions"]
        mirrored = roles.get((model, "mirror"), {"decisions": 0})["decisions"]
        assert served + mirrored == 300
    assert "Holdout comparison" in result.stdout and "Online" in result.stdout
