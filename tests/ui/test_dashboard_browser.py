"""The dashboard in a real browser: headless Chromium (Debian's ``chromium``, driven by
Playwright; no browser is downloaded) against a real `fraudgate serve` process whose SQLite
ledger holds a simulated experiment's history, plus live traffic sent here.

One browser session, in order: the page asks for the token and shows no figure without it; with
it, every figure it shows is the JSON API's (the very answer it rendered, matched by its
``generated_at``); it fits a laptop screen; it refreshes by itself (a weight change made through
the API shows without a reload); setting weights from the page works, and is refused without the
token, as are promote and rollback (the page shows the server's own status and message); and it
never requests anything but this server. The screenshot is kept at ``tests/artifacts/ui.png``
(and in the test's tmp dir).
"""

from __future__ import annotations

import json
import math
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import yaml

from fraudgate.config import write_default_config
from fraudgate.ledger import open_ledger

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "evaluation"))
from evaluation_sim import DAY, Scenario, fill  # noqa: E402

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-first-run",
]
ARTIFACT = Path(__file__).resolve().parents[1] / "artifacts" / "ui.png"
TOKEN = "dashboard-browser-token"
AUTH = {"authorization": f"Bearer {TOKEN}"}
EXPERIMENT = "fraud-detection-ab-test"
V1, V2 = "fraud-v1-baseline", "fraud-v2-candidate"
HISTORY = Scenario(days=30, per_day=300, experiment=EXPERIMENT)
LIVE_REQUESTS = 200
REFRESH_S = 2  # the page's ?refresh= (the server's evaluation cache is 5 s)
SHIFT = 2.0  # added to the first feature of a third of the live rows (drift to show)
MAX_DRIFT_ROWS = 10  # the page's drift table (the worst first)
MONITORING = {"refresh_s": 0.5, "ledger_refresh_s": 0.5, "drift_min_rows": 50}
LAPTOP = {"width": 1366, "height": 768}


@pytest.fixture(scope="module")
def served(trained_registry, module_launch, tmp_path_factory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("ui")
    config = write_default_config(
        root / "fraudgate.yaml", trained_registry.tracking_uri, token=TOKEN
    )
    data = yaml.safe_load(config.read_text())
    data["monitoring"] = MONITORING  # the panels fill within the test's time
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    today = math.floor(time.time() / DAY) * DAY
    with open_ledger(f"sqlite:///{root / 'ledger.db'}") as store:
        fill(store, replace(HISTORY, start=today - 40 * DAY))
    server = module_launch(config)
    with httpx.Client(base_url=server.url, timeout=10) as client:
        # rows like the training reference, a third of them shifted in the first feature
        rows = trained_registry.sample[:LIVE_REQUESTS].copy()
        rows[: LIVE_REQUESTS // 3, 0] += SHIFT
        for i, row in enumerate(rows.tolist()):
            body = {
                "inputs": [
                    {"name": "fraud_features", "shape": [1, 30], "datatype": "FP32", "data": row}
                ],
                "parameters": {"content_type": "np", "card_id": f"live-card-{i}"},
            }
            answer = client.post(f"/v2/models/{V1}/infer", content=orjson.dumps(body))
            assert answer.status_code == 200, answer.text
        # the live decisions reach the evaluation once shipped (journal -> ledger) and the
        # dashboard's cache (5 s) has expired; the monitor has counted every answer, read the
        # ledger and computed the drift
        expected = HISTORY.days * HISTORY.per_day + LIVE_REQUESTS
        deadline = time.monotonic() + 60
        while True:
            document = client.get("/ui/api/dashboard", headers=AUTH).json()
            seen = sum(arm["transactions"] for arm in document["evaluation"]["arms"])
            if seen == expected and _monitored(document):
                break
            assert time.monotonic() < deadline, (
                f"{seen} transactions, expected {expected}; estimated {document['estimated']}; "
                f"drift {document['drift']['models']}"
            )
            time.sleep(0.5)
    return {"server": server, "url": server.url, "transactions": expected}


def _monitored(document: dict[str, Any]) -> bool:
    """Every served row in the estimate, the realised figures read, a drift computed."""
    estimated, drift = document["estimated"], document["drift"]
    return (
        sum(m["decisions"] for m in estimated["models"]) == LIVE_REQUESTS
        and all(m["realised"] is not None for m in estimated["models"])
        and any(m["rows"] >= drift["min_rows"] for m in drift["models"])
    )


def _format_pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def _format_interval(interval: dict[str, Any]) -> str:
    if interval["estimate"] is None:
        return "–"
    return (
        f"{_format_pct(interval['estimate'])} [{_format_pct(interval['low'])}, "
        f"{_format_pct(interval['high'])}]"
    )


_FIELDS_JS = """() => {
  const out = {};
  for (const node of document.querySelectorAll('[data-field]')) {
    out[node.dataset.field] = {text: node.textContent, value: node.dataset.value};
  }
  return {generated_at: document.body.dataset.generatedAt, fields: out,
          reasons: [...document.querySelectorAll('#decision-reasons li')].map(li => li.textContent),
          outcome: document.getElementById('decision-outcome').textContent,
          srm: document.getElementById('srm-status').textContent,
          estimated: document.getElementById('estimated').textContent,
          drift: document.getElementById('drift').textContent,
          drift_rows: [...document.querySelectorAll('#drift tbody tr')].map(tr => tr.dataset.drift),
          lines: [...document.querySelectorAll('#recall-chart polyline')].map(p => p.dataset.arm),
          scroll_width: document.documentElement.scrollWidth, width: window.innerWidth,
          font_px: parseFloat(getComputedStyle(document.body).fontSize)};
}"""


def _experiment(url: str) -> dict[str, Any]:
    answer = httpx.get(f"{url}/admin/experiments/{EXPERIMENT}", headers=AUTH, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _weights(url: str) -> dict[str, int]:
    candidates = _experiment(url)["experiment"]["candidates"]
    return {c["name"]: c["weight"] for c in candidates}


def test_the_dashboard_in_chromium(served, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    url = served["url"]
    requested: list[str] = []
    answers: dict[str, dict[str, Any]] = {}  # the dashboard answers the page got, by time

    def on_response(response: Any) -> None:
        if response.url.split("?")[0].endswith("/ui/api/dashboard") and response.status == 200:
            document = response.json()
            answers[document["generated_at"]] = document

    profile = tmp_path / "chromium-profile"  # a fresh --user-data-dir
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport=LAPTOP,
        )
        try:
            page = context.new_page()
            page.on("request", lambda request: requested.append(request.url))
            page.on("response", on_response)
            page.goto(f"{url}/ui?refresh={REFRESH_S}")

            # 1. no token: the page says what it needs, and shows no figure
            banner = page.locator("#banner")
            expect(banner).to_contain_text("needs the admin token", timeout=10_000)
            expect(banner).to_contain_text("Authorization")
            assert page.locator("[data-field^='arm.']").count() == 0

            # 2. with the token: the figures, each the JSON API's
            page.fill("#token", TOKEN)
            page.click("#token-save")
            expect(page.locator(f"[data-field='arm.{V1}.recall']")).to_have_count(1, timeout=15_000)
            expect(banner).to_be_hidden()
            shown = page.evaluate(_FIELDS_JS)
            document = answers[shown["generated_at"]]
            _check_page_shows(shown, document)
            assert (
                sum(a["transactions"] for a in document["evaluation"]["arms"])
                == (served["transactions"])
            )
            assert shown["scroll_width"] <= shown["width"], "horizontal scrolling on a laptop"
            assert shown["font_px"] >= 13
            page.screenshot(path=str(tmp_path / "ui.png"), full_page=True)
            ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(tmp_path / "ui.png", ARTIFACT)
            print(f"\nscreenshot: {ARTIFACT} (and {tmp_path / 'ui.png'})")

            # 3. it refreshes by itself: a change made through the API shows without a reload
            generation = document["experiment"]["generation"]
            change = httpx.put(
                f"{url}/admin/experiments/{EXPERIMENT}/weights",
                json={"weights": {V1: 70, V2: 30}, "actor": "browser-test"},
                headers=AUTH,
            )
            assert change.status_code == 200, change.text
            weight = page.locator(f"[data-field='split.{V1}.weight']")
            expect(weight).to_have_text("70", timeout=(REFRESH_S + 5) * 1000)
            expect(page.locator("#experiment-name")).to_contain_text(f"generation {generation + 1}")

            # 4. set weights from the page: it works, and the server has it
            page.fill(f"#weight-{V1}", "50")
            page.fill(f"#weight-{V2}", "50")
            page.click("#weights-submit")
            result = page.locator("#action-result")
            expect(result).to_have_attribute("data-ok", "true", timeout=10_000)
            expect(result).to_contain_text(f"weights set: {V1} 50, {V2} 50")
            assert _weights(url) == {V1: 50, V2: 50}
            expect(weight).to_have_text("50", timeout=(REFRESH_S + 5) * 1000)
            expect(page.locator("#history-table tbody tr").first).to_contain_text(
                "dashboard", timeout=(REFRESH_S + 8) * 1000
            )

            # 5. without the token: refused, with the server's message; nothing changed
            page.click("#token-forget")
            expect(banner).to_contain_text("needs the admin token", timeout=10_000)
            page.fill(f"#weight-{V1}", "90")
            page.fill(f"#weight-{V2}", "10")
            page.click("#weights-submit")
            expect(result).to_have_attribute("data-ok", "false", timeout=10_000)
            expect(result).to_contain_text("set weights refused (401)")
            expect(result).to_contain_text("Authorization: expected 'Bearer <token>'")
            assert _weights(url) == {V1: 50, V2: 50}

            # 6. promote / rollback without the token: the server's own answer, shown as it is
            # (404 until the rollout endpoints exist, 401 once they do; never a change)
            page.fill("#reason", "browser test, no token")
            for action in ("promote", "rollback"):
                expected = httpx.post(
                    f"{url}/admin/experiments/{EXPERIMENT}/{action}",
                    json={"reason": "browser test, no token"},
                    timeout=10,
                )
                assert expected.status_code in (401, 404), expected.text
                page.click(f"#{action}")
                expect(result).to_contain_text(
                    f"{action} refused ({expected.status_code}): {expected.json()['error']}",
                    timeout=10_000,
                )
            assert _weights(url) == {V1: 50, V2: 50}
        finally:
            context.close()

    # 7. the page fetched nothing but this server
    assert requested, "the page made no request"
    foreign = [r for r in requested if not r.startswith(url + "/")]
    assert foreign == [], foreign


def _check_page_shows(shown: dict[str, Any], document: dict[str, Any]) -> None:
    """Every figure on the page is the API answer's, as value and as text."""
    fields = shown["fields"]
    evaluation = document["evaluation"]
    assert evaluation is not None, document["evaluation_error"]
    for arm in evaluation["arms"]:
        name = arm["arm"]
        for metric in ("precision", "recall", "alert_rate"):
            field = fields[f"arm.{name}.{metric}"]
            assert json.loads(field["value"]) == arm[metric], (name, metric)
            assert field["text"] == _format_interval(arm[metric]), (name, metric)
        assert json.loads(fields[f"arm.{name}.transactions"]["value"]) == arm["transactions"]
        assert fields[f"arm.{name}.transactions"]["text"] == f"{arm['transactions']:,}"
        assert fields[f"arm.{name}.label_coverage"]["text"] == _format_pct(arm["label_coverage"])
        assert json.loads(fields[f"arm.{name}.latency"]["value"]) == [
            arm["latency"]["p50_ms"],
            arm["latency"]["p99_ms"],
        ]
    for row in document["split"]:
        name = row["arm"]
        assert json.loads(fields[f"split.{name}.weight"]["value"]) == row["weight"]
        assert json.loads(fields[f"split.{name}.units"]["value"]) == row["units"]
        assert fields[f"split.{name}.observed_share"]["text"] == _format_pct(row["observed_share"])
    srm = document["srm"]
    assert shown["srm"] == ("MISMATCH" if srm["mismatch"] else "OK")
    assert shown["outcome"] == evaluation["decision"]["outcome"]
    assert shown["reasons"] == evaluation["decision"]["reasons"] != []
    pipeline = document["pipeline"]
    assert pipeline["acknowledge"] == "journal" and pipeline["shipper"] == "child"
    assert json.loads(fields["pipeline.journal_lag_s"]["value"]) == pipeline["journal_lag_s"]
    assert json.loads(fields["pipeline.shipper_up"]["value"]) is True
    _check_monitoring_panels(shown, document)
    assert sorted(shown["lines"]) == sorted(a["arm"] for a in evaluation["arms"])


def _check_monitoring_panels(shown: dict[str, Any], document: dict[str, Any]) -> None:
    """The estimate and drift panels show the API's figures: per model the estimate beside the
    realised ones, the disagreement; the drift table is the API's worst columns, in order."""
    fields = shown["fields"]

    def same(field: str, value: Any, text: str | None = None) -> None:
        assert json.loads(fields[field]["value"]) == value, field
        if text is not None:
            assert fields[field]["text"] == text, field

    estimated = document["estimated"]
    assert {m["model"] for m in estimated["models"]} == {V1, V2}
    for model in estimated["models"]:
        prefix = f"estimated.{model['model']}"
        same(f"{prefix}.decisions", model["decisions"], f"{model['decisions']:,}")
        for key in ("precision", "recall"):
            same(f"{prefix}.{key}", model[key], _format_pct(model[key]))
            realised = model["realised"][key]
            same(f"{prefix}.realised.{key}", realised, _format_pct(realised))
        coverage = model["realised"]["label_coverage"]
        same(f"{prefix}.realised.label_coverage", coverage, _format_pct(coverage))
        frauds = model["realised"]["labelled_frauds"]
        same(f"{prefix}.realised.labelled_frauds", frauds, f"{frauds:,}")
    assert any(m["precision"] is not None for m in estimated["models"])
    disagreement = estimated["disagreement"]
    same("estimated.disagreement", disagreement, _format_pct(disagreement))
    same("estimated.paired", estimated["paired"])

    drift = document["drift"]
    worst = drift["columns"][:MAX_DRIFT_ROWS]
    assert shown["drift_rows"] == [f"{c['model']}/{c['feature']}" for c in worst]
    assert any(c["psi"] is not None for c in worst)
    for column in worst:
        prefix = f"drift.{column['model']}.{column['feature']}"
        for key, field in (("psi", "psi"), ("ks_statistic", "ks")):
            value = column[key]
            same(f"{prefix}.{field}", value, "–" if value is None else f"{value:.3f}")
        same(f"{prefix}.level", column["level"])
    for model in drift["models"]:
        for key in ("rows", "warning", "alert"):
            same(f"drift.{model['model']}.{key}", model[key])
        shown_rows = model["rows"] or model["collected"]  # kept so far, until drift is computed
        assert fields[f"drift.{model['model']}.rows"]["text"] == f"{shown_rows:,}"
    assert f"Worst {len(worst)} of {len(drift['columns'])} columns" in shown["drift"]
