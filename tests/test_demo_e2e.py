"""`fraudgate demo` end to end, as a user runs it, on a small simulation: the drift scenario
ends in PROMOTE and the demo promotes (aliases and traffic move), the A/A test on the same models
(``--aa --reuse-models``) does not."""

import json
import subprocess
import sys


def _demo(workdir, *extra):
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
            "--replay-days",
            "5",
            "--label-days",
            "16",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return result


def test_demo_runs_the_whole_loop(tmp_path):
    workdir = tmp_path / "demo"
    result = _demo(workdir)
    offline = json.loads((workdir / "offline.json").read_text())
    assert set(offline["models"]) == {"v1", "v2"}
    assert offline["registry"]["aliases"] == {"champion": "1", "challenger": "2"}
    online = json.loads((workdir / "online.json").read_text())
    replay = online["replay"]
    sent = replay["sent"]
    assert sent > 5_000 and replay["ok"] == sent and not replay["errors"]
    assert set(replay["split"]) == {"fraud-v1-baseline", "fraud-v2-candidate"}
    labels = replay["labels"]
    # realistic delivery: every alert investigated, missed frauds charged back (some still
    # pending after the label days), legitimate unflagged transactions never labelled
    assert labels["by_source"]["investigation"] == sum(replay["flagged"].values())
    assert labels["by_source"]["chargeback"] > 0 and labels["pending"] > 0
    assert labels["sent"] + labels["pending"] + labels["unlabelled"] == sent
    # labels delivered while scoring may precede their decisions into the ledger (stored anyway,
    # joined later): so unknown ones are possible, but none is lost
    assert labels["inserted"] == labels["sent"]
    roles = {(row["model"], row["role"]): row for row in online["outcomes"]}
    # 100% mirror: every replayed transaction is scored by both models
    for model in ("fraud-v1-baseline", "fraud-v2-candidate"):
        served = roles.get((model, "served"), {"decisions": 0})["decisions"]
        mirrored = roles.get((model, "mirror"), {"decisions": 0})["decisions"]
        assert served + mirrored == sent
    assert "Holdout comparison" in result.stdout and "Online" in result.stdout
    days = json.loads((workdir / "decisions.json").read_text())
    assert len(days) == 21 and [d["day"] for d in days] == list(range(1, 22))
    assert {d["outcome"] for d in days} <= {"PROMOTE", "CONTINUE", "ROLLBACK", "STOP"}
    assert days[-1]["outcome"] == "PROMOTE", days
    assert all(d["reason"] for d in days)
    assert "decision after 21 simulated days: PROMOTE" in result.stdout
    report = json.loads((workdir / "report.json").read_text())
    assert report["decision"]["outcome"] == "PROMOTE" and report["design"] == "paired"
    assert (workdir / "report.html").read_text().lstrip().lower().startswith("<!doctype html")
    # it acted on the decision: the challenger promoted, the traffic on it, the act on record
    assert "Acting on the decision: promote" in result.stdout
    assert "live traffic after: fraud-v2-candidate 100%" in result.stdout
    assert "@champion=v2" in result.stdout and "@previous=v1" in result.stdout

    aa = _demo(workdir, "--aa", "--reuse-models")
    assert "reusing the simulation" in aa.stdout and "Holdout comparison" not in aa.stdout
    aa_days = json.loads((workdir / "decisions.json").read_text())
    assert len(aa_days) == 21 and aa_days[-1]["outcome"] != "PROMOTE", aa_days
    assert json.loads((workdir / "report.json").read_text())["decision"]["outcome"] != "PROMOTE"
    aa_online = json.loads((workdir / "online.json").read_text())
    assert aa_online["replay"]["ok"] == aa_online["replay"]["sent"]
