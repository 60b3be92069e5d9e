// muon serve's dashboard: reads the API under /api/v1 with the bearer
// token the user gives, and builds the page from text nodes only (names,
// logs and errors never become markup).
"use strict";

const tokenKey = "muon.token";
let token = sessionStorage.getItem(tokenKey) || "";
let selected = "";
let timer = 0;

const $ = (sel) => document.querySelector(sel);

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === undefined || c === null) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

class AuthError extends Error {}

async function api(path) {
  const r = await fetch(path, { headers: { Authorization: "Bearer " + token }, cache: "no-store" });
  if (r.status === 401 || r.status === 403) {
    const body = await r.json().catch(() => ({}));
    throw new AuthError(body.error || r.statusText);
  }
  if (!r.ok) {
    const body = await r.json().catch(() => ({}));
    throw new Error(`${path}: ${r.status} ${body.error || r.statusText}`);
  }
  return (r.headers.get("content-type") || "").includes("json") ? r.json() : r.text();
}

function fmtTime(t) {
  if (!t) return "";
  const d = new Date(t);
  return isNaN(d) ? "" : d.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

function fmtDuration(a, b) {
  if (!a) return "";
  const ms = (b ? new Date(b) : new Date()) - new Date(a);
  if (ms < 1000) return ms + " ms";
  const s = ms / 1000;
  if (s < 120) return s.toFixed(1) + " s";
  if (s < 7200) return (s / 60).toFixed(1) + " min";
  return (s / 3600).toFixed(1) + " h";
}

function fmtNum(n, digits) {
  if (n === undefined || n === null || n === "") return "";
  if (typeof n !== "number") return String(n);
  return digits === undefined ? n.toLocaleString("en") : n.toFixed(digits);
}

function state(s) {
  return el("span", { class: "state " + s }, s);
}

// ---- sign in

function showLogin(msg) {
  clearInterval(timer);
  $("#main").hidden = true;
  $("#signout").hidden = true;
  $("#login").hidden = false;
  $("#login-error").textContent = msg || "";
  $("#token").focus();
}

async function signIn(t) {
  token = t.trim();
  try {
    await api("/api/v1/jobs?limit=1");
  } catch (e) {
    sessionStorage.removeItem(tokenKey);
    showLogin(e instanceof AuthError ? "That token was refused: " + e.message : e.message);
    return;
  }
  sessionStorage.setItem(tokenKey, token);
  $("#login").hidden = true;
  $("#main").hidden = false;
  $("#signout").hidden = false;
  refresh();
  clearInterval(timer);
  timer = setInterval(refresh, 2000);
}

// ---- refresh

async function refresh() {
  try {
    const [jobs, scheds, models] = await Promise.all([
      api("/api/v1/jobs?limit=50"), api("/api/v1/schedules"), api("/api/v1/models"),
    ]);
    renderRuns(jobs.jobs || []);
    renderSchedules(scheds.schedules || [], jobs.jobs || []);
    renderModels(models.stores || []);
    if (!selected && jobs.jobs && jobs.jobs.length) {
      const train = jobs.jobs.find((r) => r.job === "train" && r.state === "succeeded");
      selected = (train || jobs.jobs[0]).id;
    }
    if (selected) await renderRun(selected);
    $("#status").textContent = "updated " + new Date().toLocaleTimeString();
  } catch (e) {
    if (e instanceof AuthError) showLogin("The server refused the token: " + e.message);
    else $("#status").textContent = "error: " + e.message;
  }
}

function renderRuns(runs) {
  const body = $("#runs tbody");
  body.replaceChildren(...runs.map((r) => el("tr", {
    class: "pick" + (r.id === selected ? " selected" : ""), "data-run": r.id,
    onclick: () => { selected = r.id; refresh(); },
  },
  el("td", {}, el("code", {}, r.id)), el("td", {}, r.name), el("td", {}, r.job), el("td", {}, state(r.state)),
  el("td", {}, fmtTime(r.submitted)), el("td", { class: "num" }, fmtDuration(r.started, r.ended)))));
  if (!runs.length) body.append(el("tr", {}, el("td", { colspan: 6, class: "muted" }, "No runs yet: muon jobs submit --config FILE")));
}

function renderSchedules(scheds, runs) {
  const byID = Object.fromEntries(runs.map((r) => [r.id, r]));
  const body = $("#schedules tbody");
  body.replaceChildren(...scheds.map((s) => {
    const last = s.last_run ? byID[s.last_run] : null;
    return el("tr", { "data-schedule": s.name },
      el("td", {}, s.name), el("td", {}, el("code", {}, s.cron), s.tz ? " (" + s.tz + ")" : ""),
      el("td", {}, s.paused ? "paused" : fmtTime(s.next)), el("td", {}, s.paused ? "yes" : "no"),
      el("td", {}, s.last_run ? el("code", {}, s.last_run) : ""),
      el("td", {}, last ? state(last.state) : (s.last_run ? "" : "not fired yet")),
      el("td", { class: "num" }, fmtNum(s.skipped || 0)));
  }));
  if (!scheds.length) body.append(el("tr", {}, el("td", { colspan: 7, class: "muted" }, "No schedules: muon schedule add")));
}

function renderModels(stores) {
  const box = $("#models");
  box.replaceChildren(...stores.map((st) => el("div", { class: "store", "data-store": st.store },
    el("h3", {}, "Store ", el("code", {}, st.store)),
    st.error ? el("p", { class: "error" }, st.error) : null,
    el("table", {},
      el("thead", {}, el("tr", {}, ...["Version", "Gate", "Size", "Compression", "Weights", "Created", "Run"].map((h) => el("th", {}, h)))),
      el("tbody", {}, ...(st.versions.length ? st.versions.map((v) => el("tr", { "data-version": v.version },
        el("td", {}, el("code", {}, v.version), v.latest ? el("span", { class: "mark" }, "latest") : null, v.serving ? el("span", { class: "mark" }, "serving") : null),
        el("td", {}, el("span", { class: "state gate " + v.gate }, v.gate), v.reason ? el("div", { class: "muted" }, v.reason) : null),
        el("td", { class: "num" }, fmtNum(v.size) + " B"),
        el("td", { class: "num" }, v.compression_ratio ? v.compression_ratio.toFixed(2) + "×" : ""),
        el("td", {}, v.weights || ""), el("td", {}, fmtTime(v.created)),
        el("td", {}, v.run ? el("code", {}, v.run) : ""))) : [el("tr", {}, el("td", { colspan: 7, class: "muted" }, "nothing published yet"))]))))));
  if (!stores.length) box.append(el("p", { class: "muted" }, "No model stores yet: a train job with snapshot.store publishes to one."));
}

async function renderRun(id) {
  const run = await api("/api/v1/jobs/" + encodeURIComponent(id));
  $("#run").hidden = false;
  $("#run-id").textContent = run.id + " (" + run.name + ")";
  $("#run-state").replaceChildren(state(run.state));
  const sum = run.summary || {};
  const live = run.live || null;
  const figs = [];
  const add = (k, v) => { if (v !== undefined && v !== null && v !== "") figs.push(el("div", {}, el("dt", {}, k), el("dd", {}, v))); };
  add("Job", run.job);
  add("Submitted", fmtTime(run.submitted));
  add("Duration", fmtDuration(run.started, run.ended));
  add("Records read", fmtNum(live ? live.records_read : sum.records_read));
  add("Dead letters", fmtNum(live ? Object.values(live.dead_letters || {}).reduce((a, b) => a + b, 0) : sum.dead_letters));
  if (live) {
    add("Records written", fmtNum(live.records_written));
    for (const [t, n] of Object.entries(live.kafka_lag || {})) add("Kafka lag " + t, fmtNum(n));
  }
  const tr = sum.training;
  if (tr) {
    add("Model", tr.model);
    add("Epochs trained", tr.trained + " of " + tr.epochs);
    if (tr.validation && tr.validation.n) add("Validation", tr.validation.accuracy ? "accuracy " + tr.validation.accuracy.toFixed(4) : "RMSE " + fmtNum(tr.validation.rmse, 4));
    if (tr.test && tr.test.n) add("Test", tr.test.accuracy ? "accuracy " + tr.test.accuracy.toFixed(4) : "RMSE " + fmtNum(tr.test.rmse, 4));
    if (tr.snapshot) add("Snapshot", tr.snapshot.version + (tr.snapshot.published ? " published" : " rejected: " + tr.snapshot.reason));
  }
  for (const b of (sum.inference || [])) {
    add("Branch " + b.name, fmtNum(b.predictions) + " predictions by " + (b.final_model || b.model));
    if (b.accuracy !== undefined) add("Accuracy " + b.name, b.accuracy.toFixed(4));
    add("Latency " + b.name, "p50 " + fmtNum(b.latency_p50_ms, 1) + " ms, p99 " + fmtNum(b.latency_p99_ms, 1) + " ms");
  }
  for (const b of ((live && live.inference) || [])) {
    add("Branch " + b.name, fmtNum(b.predictions) + " predictions by version " + b.model_version);
    add("Latency " + b.name, "p50 " + fmtNum(b.latency_p50_ms, 1) + " ms, p99 " + fmtNum(b.latency_p99_ms, 1) + " ms");
  }
  if (run.error) add("Error", run.error);
  $("#run-figures").replaceChildren(...figs);

  const curve = (tr && tr.curve) || (live && live.curve) || [];
  $("#curve-box").hidden = curve.length === 0;
  if (curve.length) {
    const series = [{ name: "train loss", color: "#2d6cdf", axis: 0, pts: curve.map((p) => [p.epoch, p.train_loss]) }];
    const vl = curve.filter((p) => p.validation_loss !== undefined);
    if (vl.length) series.push({ name: "validation loss", color: "#c2372b", axis: 0, pts: vl.map((p) => [p.epoch, p.validation_loss]) });
    const vm = curve.filter((p) => p.validation_metric !== undefined);
    const reg = tr && tr.validation && !tr.validation.accuracy && tr.validation.rmse;
    if (vm.length) series.push({ name: reg ? "validation RMSE" : "validation accuracy", color: "#1f8a4c", axis: 1, pts: vm.map((p) => [p.epoch, p.validation_metric]) });
    plot($("#curve"), $("#curve-legend"), series, "epoch");
    $("#curve").setAttribute("data-points", String(curve.length));
  }
  const hist = (live && live.history) || [];
  $("#live-box").hidden = hist.length < 2;
  if (hist.length >= 2) {
    const t0 = new Date(hist[0].time).getTime();
    const series = [{ name: "records read / s", color: "#2d6cdf", axis: 0, pts: hist.map((s) => [(new Date(s.time) - t0) / 1000, s.read_per_second]) }];
    if (hist.some((s) => s.latency_p99_ms > 0)) series.push({ name: "p99 latency (ms)", color: "#b7791f", axis: 1, pts: hist.map((s) => [(new Date(s.time) - t0) / 1000, s.latency_p99_ms]) });
    plot($("#live"), $("#live-legend"), series, "seconds");
  }
  const log = await api("/api/v1/jobs/" + encodeURIComponent(id) + "/logs");
  const pre = $("#run-log");
  const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
  pre.textContent = log.length > 65536 ? "…\n" + log.slice(-65536) : log;
  if (atEnd) pre.scrollTop = pre.scrollHeight;
}

// plot draws series of [x, y] points as lines: axis 0 on the left scale,
// axis 1 on the right one.
function plot(svg, legend, series, xlabel) {
  const ns = "http://www.w3.org/2000/svg";
  const W = 640, H = 260, L = 56, R = 56, T = 12, B = 34;
  const mk = (tag, attrs, text) => {
    const e = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  };
  const xs = series.flatMap((s) => s.pts.map((p) => p[0]));
  const x0 = Math.min(...xs), x1 = Math.max(...xs) === x0 ? x0 + 1 : Math.max(...xs);
  const scales = [0, 1].map((a) => {
    const ys = series.filter((s) => s.axis === a).flatMap((s) => s.pts.map((p) => p[1])).filter(Number.isFinite);
    if (!ys.length) return null;
    let lo = Math.min(...ys), hi = Math.max(...ys);
    if (lo > 0 && lo / hi < 0.5) lo = 0;
    if (hi === lo) hi = lo + 1;
    return { lo, hi };
  });
  const X = (x) => L + (x - x0) / (x1 - x0) * (W - L - R);
  const Y = (y, a) => T + (1 - (y - scales[a].lo) / (scales[a].hi - scales[a].lo)) * (H - T - B);
  const kids = [];
  for (let i = 0; i <= 4; i++) {
    const y = T + i * (H - T - B) / 4;
    kids.push(mk("line", { class: "grid", x1: L, x2: W - R, y1: y, y2: y }));
    scales.forEach((s, a) => {
      if (!s) return;
      const v = s.hi - i * (s.hi - s.lo) / 4;
      kids.push(mk("text", { x: a ? W - R + 4 : L - 4, y: y + 4, "text-anchor": a ? "start" : "end" }, Math.abs(v) >= 1000 ? v.toFixed(0) : v.toPrecision(3)));
    });
  }
  kids.push(mk("line", { class: "axis", x1: L, x2: W - R, y1: H - B, y2: H - B }));
  kids.push(mk("line", { class: "axis", x1: L, x2: L, y1: T, y2: H - B }));
  for (const v of [x0, (x0 + x1) / 2, x1]) kids.push(mk("text", { x: X(v), y: H - B + 14, "text-anchor": "middle" }, Number.isInteger(v) ? v : v.toFixed(1)));
  kids.push(mk("text", { x: (L + W - R) / 2, y: H - 4, "text-anchor": "middle" }, xlabel));
  for (const s of series) {
    const pts = s.pts.filter((p) => Number.isFinite(p[1]));
    if (!pts.length || !scales[s.axis]) continue;
    const d = pts.map((p, i) => (i ? "L" : "M") + X(p[0]).toFixed(1) + "," + Y(p[1], s.axis).toFixed(1)).join(" ");
    kids.push(mk("path", { d, fill: "none", stroke: s.color, "stroke-width": 2, "data-series": s.name }));
    if (pts.length <= 60) for (const p of pts) kids.push(mk("circle", { cx: X(p[0]).toFixed(1), cy: Y(p[1], s.axis).toFixed(1), r: 2.5, fill: s.color }));
  }
  svg.replaceChildren(...kids);
  legend.replaceChildren(...series.map((s) => {
    const swatch = el("i", {});
    swatch.style.background = s.color; // CSSOM, which the page's CSP allows
    return el("span", {}, swatch, s.name);
  }));
}

// ---- start

document.addEventListener("DOMContentLoaded", () => {
  $("#login-form").addEventListener("submit", (e) => { e.preventDefault(); signIn($("#token").value); });
  $("#signout").addEventListener("click", () => { sessionStorage.removeItem(tokenKey); token = ""; selected = ""; showLogin(""); });
  if (token) signIn(token); else showLogin("");
});
