"use strict";
// The fraudgate dashboard: polls GET /ui/api/dashboard (admin token) and draws it; no library,
// no request but to this server. Every figure is written with textContent (never as HTML) and
// carries its raw value in data-value, so what is shown can be checked against the API.
(function () {
  const API = "/ui/api/dashboard";
  const TOKEN_KEY = "fraudgate.admin-token";
  const COLORS = ["#2f6fdf", "#e0782f", "#3a9a5b", "#8a55c7"];
  const SVG = "http://www.w3.org/2000/svg";
  const MAX_DRIFT_ROWS = 10; // drift rows shown (the worst first; the API has every column)
  const $ = (id) => document.getElementById(id);
  let last = null;          // the last dashboard received
  let timer = null;
  let refreshS = 5;
  let weightsKey = "";      // which arms/generation the weight inputs were built for
  const override = Number(new URLSearchParams(location.search).get("refresh"));

  // -- token ---------------------------------------------------------------------------------
  function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }
  $("token-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const value = $("token").value.trim();
    if (value) sessionStorage.setItem(TOKEN_KEY, value);
    $("token").value = "";
    refresh();
  });
  $("token-forget").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    refresh();
  });

  // -- requests ------------------------------------------------------------------------------
  async function call(method, path, body) {
    const headers = { "Accept": "application/json" };
    if (token()) headers["Authorization"] = "Bearer " + token();
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(path, {
        method, headers, cache: "no-store", credentials: "omit",
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      return { ok: false, status: 0, message: "the server did not answer (" + err + ")" };
    }
    let data = null;
    try { data = await response.json(); } catch (_) { data = null; }
    const message = data && typeof data.error === "string" ? data.error : response.statusText;
    return { ok: response.ok, status: response.status, data, message };
  }

  async function refresh() {
    clearTimeout(timer);
    const answer = await call("GET", API);
    if (answer.ok) {
      last = answer.data;
      refreshS = override >= 1 && override <= 300 ? override : (last.refresh_s || 5);
      banner(null);
      render(last);
    } else if (answer.status === 401) {
      banner("The dashboard needs the admin token (auth.token in the server's config): "
        + answer.message, "info");
    } else {
      banner("GET " + API + " answered " + answer.status + ": " + answer.message);
    }
    $("refresh-s").textContent = String(refreshS);
    timer = setTimeout(refresh, refreshS * 1000);
  }

  function banner(text, kind) {
    const el = $("banner");
    el.hidden = !text;
    el.className = "banner" + (kind ? " " + kind : "");
    el.textContent = text || "";
  }

  // -- formatting ----------------------------------------------------------------------------
  const finite = (x) => typeof x === "number" && isFinite(x);
  const pct = (x) => (finite(x) ? (100 * x).toFixed(1) + "%" : "–");
  const num = (x, digits) => (finite(x) ? x.toFixed(digits) : "–");
  const int = (x) => (finite(x) ? Math.round(x).toLocaleString("en-US") : "–");
  const interval = (i) => (i && finite(i.estimate)
    ? pct(i.estimate) + " [" + pct(i.low) + ", " + pct(i.high) + "]" : "–");
  const when = (iso) => (iso ? iso.replace("T", " ").replace(/\.\d+/, "").replace("Z", "") : "–");

  function el(tag, text, attrs) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = text;
    for (const [k, v] of Object.entries(attrs || {})) if (v !== undefined) node.setAttribute(k, v);
    return node;
  }
  function cell(text, field, value, cls) {
    return el("td", text, {
      "data-field": field, "data-value": value === undefined ? undefined : JSON.stringify(value),
      class: cls,
    });
  }
  function rows(tbody, list) { tbody.replaceChildren(...list); }
  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function color(arm) {
    const names = last ? Object.keys(last.experiment.weights) : [];
    const i = names.indexOf(arm);
    return COLORS[(i < 0 ? names.length : i) % COLORS.length];
  }
  function swatch(arm) {
    const s = svg("svg", { width: 10, height: 10, class: "swatch" });
    s.appendChild(svg("rect", { width: 10, height: 10, rx: 2, fill: color(arm) }));
    return s;
  }

  // -- the sections --------------------------------------------------------------------------
  function render(d) {
    const e = d.evaluation;
    $("experiment-name").textContent = d.experiment.name + " · generation " + d.experiment.generation;
    $("experiment-name").dataset.value = JSON.stringify(d.experiment.generation);
    const outcome = e ? e.decision.outcome : "–";
    for (const id of ["decision-badge", "decision-outcome"]) {
      $(id).textContent = outcome;
      $(id).dataset.outcome = e ? outcome : "";
    }
    $("updated").textContent = "updated " + when(d.generated_at) + " UTC";
    $("eval-age").textContent = e
      ? "computed " + when(e.evaluated_at) + " UTC in " + num(e.computed_in_s, 2) + " s"
      : "not available";
    renderSplit(d);
    renderDecision(d);
    renderPipeline(d.pipeline);
    renderWindow(d.evaluation);
    renderArms(d);
    renderDays(d);
    renderEstimated(d);
    renderLatency(d);
    renderDrift(d);
    renderWeightsForm(d);
    renderHistory(d.history);
    document.body.dataset.generatedAt = d.generated_at; // which answer is on screen
  }

  function renderSplit(d) {
    const body = document.querySelector("#split-table tbody");
    rows(body, d.split.map((s) => {
      const tr = el("tr");
      const name = el("td", null);
      name.append(swatch(s.arm), s.arm);
      tr.append(
        name,
        cell(int(s.weight), "split." + s.arm + ".weight", s.weight, "num"),
        cell(pct(s.weight_share), "split." + s.arm + ".weight_share", s.weight_share, "num"),
        cell(int(s.units), "split." + s.arm + ".units", s.units, "num"),
        cell(pct(s.observed_share), "split." + s.arm + ".observed_share", s.observed_share, "num"),
      );
      return tr;
    }));
    const chart = $("split-chart");
    chart.replaceChildren();
    const bar = (y, label, shares) => {
      chart.appendChild(svg("text", { x: 0, y: y + 13 }, label));
      let x = 70;
      shares.forEach(([arm, share]) => {
        if (!finite(share) || share <= 0) return;
        const w = 325 * share;
        chart.appendChild(svg("rect", { x, y, width: w, height: 18, fill: color(arm) }));
        x += w;
      });
    };
    bar(4, "target", d.split.map((s) => [s.arm, s.weight_share]));
    bar(32, "observed", d.split.map((s) => [s.arm, s.observed_share]));
    const status = $("srm-status"), detail = $("srm-detail");
    if (!d.srm) {
      status.textContent = "not tested";
      status.className = "pill";
      status.dataset.value = "null";
      detail.textContent = d.evaluation ? "(fewer than two weighted arms)" : "(no evaluation)";
      return;
    }
    status.textContent = d.srm.mismatch ? "MISMATCH" : "OK";
    status.className = "pill " + (d.srm.mismatch ? "bad" : "ok");
    status.dataset.value = JSON.stringify(d.srm.mismatch);
    detail.textContent = "chi-square p = " + fmtP(d.srm.p_value) + " (flagged below "
      + d.srm.threshold + "; tested against " + d.srm.arms.map((a, i) =>
        a + " " + pct(d.srm.expected_shares[i])).join(", ") + ")";
    detail.dataset.value = JSON.stringify(d.srm.p_value);
  }

  function fmtP(p) {
    if (!finite(p)) return "–";
    return p < 1e-4 ? p.toExponential(1) : p.toFixed(4);
  }

  function renderDecision(d) {
    const e = d.evaluation;
    const reasons = $("decision-reasons");
    const guardrails = document.querySelector("#guardrail-table tbody");
    if (!e) {
      $("decision-detail").textContent = d.evaluation_error || "no evaluation";
      rows(reasons, []);
      rows(guardrails, []);
      return;
    }
    const dec = e.decision;
    $("decision-detail").textContent = dec.metric.replace(/_/g, " ") + " (" + dec.design
      + "): challenger − champion " + pointsInterval(dec.difference) + ", always-valid p = "
      + fmtP(dec.p_value) + ", " + int(dec.frauds) + " frauds"
      + (finite(dec.expected_days_to_decision)
        ? "; about " + num(dec.expected_days_to_decision, 0) + " days to a decision" : "");
    rows(reasons, dec.reasons.map((r, i) => el("li", r, { "data-field": "decision.reason." + i })));
    rows(guardrails, dec.guardrails.map((g) => {
      const tr = el("tr");
      const state = g.breached ? "breached" : (g.blocks_promotion ? "holds promotion" : "ok");
      const pill = el("span", state, { class: "pill " + (g.breached ? "bad" : g.blocks_promotion ? "warn" : "ok") });
      const td = el("td");
      td.appendChild(pill);
      tr.append(el("td", g.name.replace(/_/g, " ")), td, el("td", g.detail, { class: "muted" }));
      return tr;
    }));
    if (d.evaluation_error) banner(d.evaluation_error);
  }

  function pointsInterval(i) {
    if (!i || !finite(i.estimate)) return "–";
    const p = (x) => (finite(x) ? (x >= 0 ? "+" : "") + (100 * x).toFixed(1) : "–");
    return p(i.estimate) + " pts [" + p(i.low) + ", " + p(i.high) + "]";
  }

  function renderPipeline(p) {
    const dl = $("pipeline");
    const items = [
      ["acknowledge", p.acknowledge, "pipeline.acknowledge", p.acknowledge],
      ["ready", p.unready_reason ? "no: " + p.unready_reason : "yes", "pipeline.ready", !p.unready_reason],
    ];
    if (p.journal_lag_s !== null && p.journal_lag_s !== undefined) {
      items.push(["journal lag", num(p.journal_lag_s, 1) + " s", "pipeline.journal_lag_s", p.journal_lag_s]);
      items.push(["journal behind", int(p.journal_lag_bytes) + " bytes", "pipeline.journal_lag_bytes", p.journal_lag_bytes]);
    }
    if (p.shipper) {
      const up = p.shipper_up === null ? "" : p.shipper_up ? ", up" : ", DOWN";
      items.push(["shipper", p.shipper + up, "pipeline.shipper_up", p.shipper_up]);
    }
    if (p.shipper_restarts !== null && p.shipper_restarts !== undefined) {
      items.push(["shipper restarts", int(p.shipper_restarts), "pipeline.shipper_restarts", p.shipper_restarts]);
    }
    dl.replaceChildren(...items.flatMap(([k, v, field, value]) =>
      [el("dt", k), el("dd", v, { "data-field": field, "data-value": JSON.stringify(value) })]));
  }

  function renderWindow(e) {
    const dl = $("window");
    if (!e) { dl.replaceChildren(el("dt", "not available")); return; }
    const first = e.days.length ? e.days[0].date : "–";
    const items = [
      ["event days", e.days.length + " (first " + first + ")"],
      ["as of", when(e.as_of) + " UTC"],
      ["matured until", when(e.matured_until) + " UTC"],
      ["maturity", num(e.maturity_days, 0) + " days (labels complete after)"],
      ["computed in", num(e.computed_in_s, 2) + " s"],
    ];
    dl.replaceChildren(...items.flatMap(([k, v]) => [el("dt", k), el("dd", v)]));
  }

  function renderArms(d) {
    const body = document.querySelector("#arms-table tbody");
    const e = d.evaluation;
    if (!e) {
      rows(body, [el("tr", null)]);
      body.firstChild.appendChild(el("td", "not available: " + (d.evaluation_error || "no evaluation"),
        { colspan: 9, class: "na" }));
      return;
    }
    $("alpha-note").textContent = (100 * (1 - e.decision.alpha)).toFixed(0) + "%";
    rows(body, e.arms.map((a) => {
      const tr = el("tr", null, { "data-arm": a.arm });
      const name = el("td");
      name.append(swatch(a.arm), a.arm);
      const f = (k) => "arm." + a.arm + "." + k;
      const lat = a.latency
        ? num(a.latency.p50_ms, 2) + " / " + num(a.latency.p99_ms, 2) + " ms" : "–";
      tr.append(
        name, el("td", a.role),
        cell(int(a.transactions), f("transactions"), a.transactions, "num"),
        cell(pct(a.label_coverage), f("label_coverage"), a.label_coverage, "num"),
        cell(int(a.pending), f("pending"), a.pending, "num"),
        cell(interval(a.precision), f("precision"), a.precision, "num"),
        cell(interval(a.recall), f("recall"), a.recall, "num"),
        cell(interval(a.alert_rate), f("alert_rate"), a.alert_rate, "num"),
        cell(lat, f("latency"), a.latency ? [a.latency.p50_ms, a.latency.p99_ms] : null, "num"),
      );
      return tr;
    }));
  }

  // a line per arm with its interval as a band; days whose labels are not complete are shaded
  function lineChart(chart, days, pick, label) {
    chart.replaceChildren();
    const W = 560, H = 200, L = 44, R = 10, T = 24, B = 24;
    if (!days.length) {
      chart.appendChild(svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "na" },
        "no event days yet"));
      return;
    }
    const arms = days[0].arms.map((a) => a.arm);
    let top = 0;
    for (const day of days) for (const a of day.arms) {
      const i = pick(a);
      if (finite(i.estimate)) top = Math.max(top, finite(i.high) ? i.high : i.estimate);
    }
    top = top > 0 ? Math.min(1, niceCeil(top)) : 1;
    const x = (k) => L + (days.length === 1 ? (W - L - R) / 2 : (k * (W - L - R)) / (days.length - 1));
    const y = (v) => T + (1 - v / top) * (H - T - B);
    const firstOpen = days.findIndex((dd) => !dd.matured);
    if (firstOpen >= 0) {
      const x0 = firstOpen === 0 ? L : (x(firstOpen - 1) + x(firstOpen)) / 2;
      chart.appendChild(svg("rect", { x: x0, y: T, width: W - R - x0, height: H - T - B, fill: "#eef0f4" }));
      chart.appendChild(svg("text", { x: W - R - 4, y: T + 12, "text-anchor": "end" }, "labels incomplete"));
      chart.appendChild(svg("title", {}, "days younger than the maturity: their labels are still arriving"));
    }
    for (let g = 0; g <= 4; g++) {
      const v = (top * g) / 4;
      chart.appendChild(svg("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), stroke: "#dde1e8" }));
      chart.appendChild(svg("text", { x: L - 4, y: y(v) + 4, "text-anchor": "end" }, pct(v)));
    }
    chart.appendChild(svg("text", { x: L, y: H - 8 }, days[0].date));
    chart.appendChild(svg("text", { x: W - R, y: H - 8, "text-anchor": "end" }, days[days.length - 1].date));
    arms.forEach((arm, j) => {
      const points = [];
      days.forEach((day, k) => {
        const i = pick(day.arms[j]);
        if (finite(i.estimate)) points.push([x(k), i]);
      });
      if (!points.length) return;
      const band = points.map(([px, i]) => px + "," + y(finite(i.high) ? i.high : i.estimate))
        .concat(points.slice().reverse().map(([px, i]) => px + "," + y(finite(i.low) ? i.low : i.estimate)));
      chart.appendChild(svg("polygon", { points: band.join(" "), fill: color(arm), "fill-opacity": 0.12 }));
      chart.appendChild(svg("polyline", {
        points: points.map(([px, i]) => px + "," + y(i.estimate)).join(" "),
        fill: "none", stroke: color(arm), "stroke-width": 2, "data-arm": arm,
      }));
    });
    const legend = svg("g", {});
    arms.forEach((arm, j) => {
      legend.appendChild(svg("rect", { x: L + j * 200, y: 4, width: 10, height: 10, fill: color(arm) }));
      legend.appendChild(svg("text", { x: L + 14 + j * 200, y: 13 }, arm + " " + label));
    });
    chart.appendChild(legend);
  }

  function niceCeil(v) {
    const steps = [0.01, 0.02, 0.05, 0.1, 0.2, 0.25, 0.5, 1];
    return steps.find((s) => s >= v * 1.05) || 1;
  }

  function renderDays(d) {
    const days = d.evaluation ? d.evaluation.days : [];
    lineChart($("recall-chart"), days, (a) => a.recall, "recall");
    lineChart($("alert-chart"), days, (a) => a.alert_rate, "alert rate");
  }

  function notAvailable(box, why) {
    box.replaceChildren(el("p", "not available: " + why, { class: "na", "data-field": "na" }));
  }

  function duration(seconds) {
    if (!finite(seconds)) return "–";
    if (seconds % 86400 === 0) return seconds / 86400 + " d";
    if (seconds % 3600 === 0) return seconds / 3600 + " h";
    if (seconds % 60 === 0) return seconds / 60 + " min";
    return num(seconds, 0) + " s";
  }

  function table(headers, titles, numeric) {  // numeric: the indices of the number columns
    const t = el("table");
    const head = el("tr");
    headers.forEach((h, i) => head.appendChild(el("th", h, {
      title: titles[i] || undefined, class: numeric.includes(i) ? "num" : undefined })));
    t.appendChild(el("thead")).appendChild(head);
    return [t, t.appendChild(el("tbody"))];
  }

  // the label-free estimate (calibrated scores, traffic window) beside the label-joined figures
  function renderEstimated(d) {
    const box = $("estimated");
    const p = d.estimated;
    if (!p) {
      notAvailable(box, "this server has no monitoring (the realised figures are in Arms)");
      return;
    }
    const note = el("p", "Estimated: expected from the calibrated scores of the last "
      + duration(p.traffic_window_s) + " (no labels). Realised: label-joined, last "
      + duration(p.label_window_days * 86400) + " by event time.", { class: "muted" });
    const [t, body] = table(
      ["model", "decisions", "estimated", "realised", "estimated", "realised", "coverage", "frauds"],
      ["", "decisions behind the estimate (traffic window)", "sum of flagged scores / flagged",
        "labelled true alerts / labelled alerts", "sum of flagged scores / sum of all scores",
        "labelled frauds caught / labelled frauds", "share of decisions labelled or matured",
        "labelled frauds behind the realised recall"], [1, 2, 3, 4, 5, 6, 7]);
    const group = el("tr");
    for (const [text, span] of [["", 2], ["precision", 2], ["recall", 2], ["labels", 2]]) {
      group.appendChild(el("th", text, { colspan: span, class: text ? "group" : undefined }));
    }
    t.tHead.prepend(group);
    for (const m of p.models) {
      const f = (k) => "estimated." + m.model + "." + k;
      const r = m.realised;
      const name = el("td", null, { class: "name" });
      name.append(swatch(m.model), m.model);
      if (m.role) name.append(el("div", m.role, { class: "muted small" }));
      body.appendChild(el("tr", null, { "data-model": m.model })).append(
        name,
        cell(int(m.decisions), f("decisions"), m.decisions, "num"),
        cell(pct(m.precision), f("precision"), m.precision, "num est"),
        cell(r ? pct(r.precision) : "–", f("realised.precision"), r ? r.precision : null, "num"),
        cell(pct(m.recall), f("recall"), m.recall, "num est"),
        cell(r ? pct(r.recall) : "–", f("realised.recall"), r ? r.recall : null, "num"),
        cell(r ? pct(r.label_coverage) : "–", f("realised.label_coverage"), r ? r.label_coverage : null, "num"),
        cell(r ? int(r.labelled_frauds) : "–", f("realised.labelled_frauds"), r ? r.labelled_frauds : null, "num"),
      );
    }
    const parts = [note, t];
    if (p.champion && p.challenger) {
      const line = el("p");
      line.append("Champion/challenger disagreement: ",
        el("strong", pct(p.disagreement), { "data-field": "estimated.disagreement",
          "data-value": JSON.stringify(p.disagreement) }),
        " of ", el("span", int(p.paired), { "data-field": "estimated.paired",
          "data-value": JSON.stringify(p.paired) }),
        " transactions both scored (the shadow).");
      parts.push(line);
    }
    if (p.ledger_error) parts.push(el("p", "the last ledger read failed (realised figures are older): "
      + p.ledger_error, { class: "warn-text" }));
    box.replaceChildren(...parts);
  }

  function renderLatency(d) {
    const chart = $("latency-chart");
    chart.replaceChildren();
    const arms = (d.evaluation ? d.evaluation.arms : []).filter((a) => a.latency);
    if (!arms.length) {
      chart.appendChild(svg("text", { x: 200, y: 70, "text-anchor": "middle" }, "not available: no latency recorded yet"));
      return;
    }
    const keys = [["p50_ms", "p50"], ["p95_ms", "p95"], ["p99_ms", "p99"]];
    const top = Math.max(...arms.flatMap((a) => keys.map(([k]) => a.latency[k]).filter(finite))) || 1;
    const L = 110, W = 400, rowH = 14;
    arms.forEach((a, j) => {
      const y0 = 6 + j * (keys.length * rowH + 12);
      chart.appendChild(svg("text", { x: 0, y: y0 + 10 }, a.arm.length > 18 ? a.arm.slice(0, 17) + "…" : a.arm));
      keys.forEach(([k, label], r) => {
        const v = a.latency[k];
        const w = finite(v) ? ((W - L - 70) * v) / top : 0;
        const y = y0 + r * rowH;
        chart.appendChild(svg("rect", { x: L, y, width: w, height: rowH - 3, fill: color(a.arm), "fill-opacity": 0.45 + 0.2 * r }));
        chart.appendChild(svg("text", { x: L + w + 4, y: y + 10, "data-field": "latency." + a.arm + "." + label }, label + " " + num(v, 2)));
      });
    });
  }

  // PSI and KS per column (features and score) of each model's recent scored rows, worst first
  function renderDrift(d) {
    const box = $("drift");
    const p = d.drift;
    if (!p) {
      notAvailable(box, "this server has no monitoring");
      return;
    }
    if (!p.models.length) {
      notAvailable(box, "no served model has a training reference in its registry version");
      return;
    }
    const pillClass = { alert: "bad", warning: "warn", stable: "ok", unknown: "" };
    const summary = el("p");
    p.models.forEach((m, i) => {
      const f = (k) => "drift." + m.model + "." + k;
      if (i) summary.append(el("br"));
      summary.append(swatch(m.model), m.model + ": ",
        el("span", int(m.rows ? m.rows : m.collected), { "data-field": f("rows"),
          "data-value": JSON.stringify(m.rows), "data-collected": JSON.stringify(m.collected) }),
        m.rows ? " rows · " : " rows kept, drift from " + int(p.min_rows) + " · ",
        el("span", m.alert + " alert", { class: "pill " + (m.alert ? "bad" : "ok"),
          "data-field": f("alert"), "data-value": JSON.stringify(m.alert) }), " ",
        el("span", (m.warning - m.alert) + " warning", { class: "pill " + (m.warning > m.alert ? "warn" : "ok"),
          "data-field": f("warning"), "data-value": JSON.stringify(m.warning) }));
    });
    const shown = p.columns.slice(0, MAX_DRIFT_ROWS);
    const [t, body] = table(["model", "feature", "PSI", "KS", "status"],
      ["", "", "Population Stability Index against the training reference",
        "Kolmogorov-Smirnov statistic (largest CDF gap)", "by monitoring.psi_warning / psi_alert"], [2, 3]);
    for (const c of shown) {
      const f = (k) => "drift." + c.model + "." + c.feature + "." + k;
      const status = el("td", null, { "data-field": f("level"), "data-value": JSON.stringify(c.level) });
      status.appendChild(el("span", c.level === "unknown" ? "–" : c.level, { class: "pill " + pillClass[c.level] }));
      const name = el("td");
      name.append(swatch(c.model), c.model);
      body.appendChild(el("tr", null, { "data-drift": c.model + "/" + c.feature })).append(
        name, el("td", c.feature),
        cell(num(c.psi, 3), f("psi"), c.psi, "num"),
        cell(num(c.ks_statistic, 3), f("ks"), c.ks_statistic, "num"),
        status);
    }
    const note = el("p", "Worst " + shown.length + " of " + p.columns.length + " columns by PSI; warning ≥ "
      + p.psi_warning + ", alert ≥ " + p.psi_alert + ".", { class: "muted", id: "drift-note" });
    box.replaceChildren(summary, t, note);
  }

  function renderWeightsForm(d) {
    const weights = d.experiment.weights;
    const key = Object.keys(weights).join("|") + "#" + d.experiment.generation;
    const box = $("weights-inputs");
    if (key === weightsKey) return; // the same arms and generation: keep what is being typed
    weightsKey = key;
    box.replaceChildren(...Object.entries(weights).map(([arm, w]) => {
      const span = el("span", null, { class: "weight-input" });
      const id = "weight-" + arm;
      span.append(el("label", arm, { for: id }),
        el("input", null, { id, type: "number", min: 0, max: 1000000, step: 1, value: String(w), "data-arm": arm }));
      return span;
    }));
  }

  function renderHistory(history) {
    const body = document.querySelector("#history-table tbody");
    const fmt = (w) => Object.entries(w || {}).map(([k, v]) => k + " " + v).join(", ") || "–";
    rows(body, history.map((c) => {
      const tr = el("tr");
      tr.append(el("td", when(c.at)), el("td", c.actor), el("td", fmt(c.old)), el("td", fmt(c.new)));
      return tr;
    }));
  }

  // -- actions -------------------------------------------------------------------------------
  function result(ok, text) {
    const box = $("action-result");
    box.className = "result " + (ok ? "ok" : "error");
    box.textContent = text;
    box.dataset.ok = String(ok);
  }

  $("weights-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!last) return result(false, "the dashboard has not loaded yet");
    const weights = {};
    for (const input of $("weights-inputs").querySelectorAll("input[data-arm]")) {
      const value = Number(input.value);
      if (!Number.isInteger(value) || value < 0) {
        return result(false, "weight of " + input.dataset.arm + ": expected a whole number ≥ 0, received "
          + JSON.stringify(input.value));
      }
      weights[input.dataset.arm] = value;
    }
    const answer = await call("PUT", last.actions.weights, { weights, actor: "dashboard" });
    if (answer.ok) {
      result(true, "weights set: " + Object.entries(answer.data.new).map(([k, v]) => k + " " + v).join(", "));
      weightsKey = "";
      refresh();
    } else {
      result(false, "set weights refused (" + answer.status + "): " + answer.message);
    }
  });

  async function rollout(action) {
    if (!last) return result(false, "the dashboard has not loaded yet");
    const reason = $("reason").value.trim();
    if (!reason) return result(false, action + ": enter a reason first (it is recorded with the change)");
    const answer = await call("POST", last.actions[action], { reason });
    if (answer.ok) {
      result(true, action + " done" + (answer.data ? ": " + JSON.stringify(answer.data) : ""));
      weightsKey = "";
      refresh();
    } else {
      result(false, action + " refused (" + answer.status + "): " + answer.message);
    }
  }
  $("promote").addEventListener("click", () => rollout("promote"));
  $("rollback").addEventListener("click", () => rollout("rollback"));

  refresh();
})();
