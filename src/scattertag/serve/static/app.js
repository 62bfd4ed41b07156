// scattertag serve: gallery, filters, counts plot, frame view, corrections, live frames.
// Plain JavaScript against the JSON API (see /docs); nothing is loaded from elsewhere.
"use strict";

const PAGE = 48;
const COLOURS = ["#d9641e", "#1f6fb2", "#2e7d32", "#8e24aa", "#c62828", "#00838f", "#6d4c41"];
const state = { model: null, offset: 0, total: 0, view: null, countsTimer: null, recent: [] };
const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

function svg(tag, attrs = {}) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  const key = localStorage.getItem("scattertag-api-key");
  if (key) headers["X-API-Key"] = key;
  const response = await fetch(path, Object.assign({}, options, { headers }));
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const detail = body.detail === undefined ? response.statusText : body.detail;
    throw new Error(typeof detail === "string" ? detail : JSON.stringify(detail));
  }
  return body;
}

function when(seconds) {
  return new Date(seconds * 1000).toLocaleString();
}

// ---- filters --------------------------------------------------------------------------
function filters() {
  const minP = parseFloat($("min-p").value);
  const time = (id) => ($(id).value ? new Date($(id).value).getTime() / 1000 : null);
  return {
    tag: $("tag-filter").value || null,
    minP: minP > 0 ? minP : null,
    folder: $("folder-filter").value || null,
    since: time("since"),
    until: time("until"),
    errors: $("errors-only").checked,
  };
}

function query(f, extra = {}) {
  const p = new URLSearchParams(extra);
  if (f.tag) p.set("tag", f.tag);
  if (f.tag && f.minP !== null) p.set("min_p", f.minP);
  if (f.folder) p.set("folder", f.folder);
  if (f.since !== null) p.set("since", f.since);
  if (f.until !== null) p.set("until", f.until);
  if (f.errors) p.set("errors", "true");
  return p.toString();
}

function matches(frame, f) {
  if (f.tag) {
    if (f.minP !== null) {
      if (!(frame.probabilities[f.tag] >= f.minP)) return false;
    } else if (!frame.tags.includes(f.tag)) return false;
  }
  if (f.folder && frame.folder !== f.folder) return false;
  if (f.errors && !frame.error) return false;
  if (f.since !== null && frame.time < f.since) return false;
  if (f.until !== null && frame.time > f.until) return false;
  return true;
}

// ---- gallery --------------------------------------------------------------------------
function shownTags(frame) {
  // tags to show: the correction when there is one, else the prediction
  if (!frame.labels) return frame.tags.map((t) => [t, false]);
  return Object.entries(frame.labels).filter(([, v]) => v === 1).map(([t]) => [t, true]);
}

function card(frame) {
  const chips = el("div", { class: "chips" });
  for (const [tag, corrected] of shownTags(frame)) {
    const p = frame.probabilities[tag];
    const text = p === undefined ? tag : `${tag} ${p.toFixed(2)}`;
    chips.append(el("span", { class: corrected ? "chip corrected" : "chip", text }));
  }
  const node = el(
    "div",
    { class: frame.error ? "card failed" : "card", "data-id": frame.id, onclick: () => openView(frame.id) },
    el("img", { src: `/api/frames/${frame.id}/thumb.png`, loading: "lazy", alt: frame.name }),
    el("div", { class: "name", text: frame.frame ? `${frame.name} [${frame.frame}]` : frame.name, title: frame.path }),
    el("div", { class: "meta", text: when(frame.time) }),
    chips,
  );
  if (frame.error) node.append(el("div", { class: "error", text: frame.error }));
  return node;
}

async function loadFrames() {
  const f = filters();
  try {
    const body = await api(`/api/frames?${query(f, { limit: PAGE, offset: state.offset })}`);
    state.total = body.total;
    $("gallery").replaceChildren(...body.frames.map(card));
    // frames that arrived live while this page was on its way are newer than all of it
    const newest = body.frames.length ? body.frames[0].id : 0;
    if (state.offset === 0) state.recent.filter((f) => f.id > newest).forEach(addLive);
    const last = Math.min(state.offset + PAGE, body.total);
    $("page-info").textContent = body.total ? `${state.offset + 1}-${last} of ${body.total}` : "no frames";
    $("prev").disabled = state.offset === 0;
    $("next").disabled = last >= body.total;
    $("summary").textContent = `${body.total} frame${body.total === 1 ? "" : "s"}`;
  } catch (err) {
    $("page-info").textContent = `error: ${err.message}`;
  }
}

function addLive(frame) {
  const f = filters();
  if (!matches(frame, f) || document.querySelector(`.card[data-id="${frame.id}"]`)) return;
  state.total += 1;
  $("summary").textContent = `${state.total} frame${state.total === 1 ? "" : "s"}`;
  if (state.offset !== 0) return; // the user is looking at older pages
  const node = card(frame);
  node.classList.add("new");
  $("gallery").prepend(node);
  const cards = $("gallery").children;
  if (cards.length > PAGE) cards[cards.length - 1].remove();
}

// ---- counts per tag over time -----------------------------------------------------------
async function loadCounts() {
  const f = filters();
  const p = new URLSearchParams(query({ ...f, tag: null, errors: false }));
  let counts;
  try {
    counts = await api(`/api/counts?${p}`);
  } catch (err) {
    return;
  }
  drawCounts(counts);
}

function drawCounts(counts) {
  const plot = $("counts-plot");
  const W = 900, H = 170, left = 40, bottom = 20, top = 8;
  plot.replaceChildren();
  $("plot-legend").replaceChildren();
  if (!counts.times.length) {
    plot.append(Object.assign(svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle" }), { textContent: "no frames yet" }));
    return;
  }
  const t0 = counts.times[0], t1 = counts.times[counts.times.length - 1] + counts.bucket;
  const ymax = Math.max(1, ...counts.frames);
  const x = (t) => left + ((t - t0) / (t1 - t0)) * (W - left - 5);
  const y = (n) => H - bottom - (n / ymax) * (H - bottom - top);
  plot.append(svg("line", { x1: left, y1: H - bottom, x2: W - 5, y2: H - bottom, stroke: "#999" }));
  plot.append(svg("line", { x1: left, y1: top, x2: left, y2: H - bottom, stroke: "#999" }));
  const label = (text, attrs) => plot.append(Object.assign(svg("text", attrs), { textContent: text }));
  label(String(ymax), { x: left - 4, y: top + 8, "text-anchor": "end" });
  label("0", { x: left - 4, y: H - bottom, "text-anchor": "end" });
  label(when(t0), { x: left, y: H - 4 });
  label(when(t1), { x: W - 5, y: H - 4, "text-anchor": "end" });
  const series = [["all frames", counts.frames, "#222"]];
  const ranked = Object.entries(counts.counts)
    .map(([tag, n]) => [tag, n, n.reduce((a, b) => a + b, 0)])
    .filter(([, , total]) => total > 0)
    .sort((a, b) => b[2] - a[2])
    .slice(0, COLOURS.length);
  ranked.forEach(([tag, n], i) => series.push([tag, n, COLOURS[i]]));
  for (const [name, values, colour] of series) {
    const points = values.map((n, i) => {
      const tm = counts.times[i] + counts.bucket / 2;
      return `${x(tm).toFixed(1)},${y(n).toFixed(1)}`;
    });
    const line = svg("polyline", { points: points.join(" "), fill: "none", stroke: colour, "stroke-width": 1.6 });
    line.append(Object.assign(svg("title"), { textContent: name }));
    plot.append(line);
    if (values.length === 1) plot.append(svg("circle", { cx: x(counts.times[0] + counts.bucket / 2), cy: y(values[0]), r: 3, fill: colour }));
    const item = el("span", { text: name });
    item.style.setProperty("--c", colour);
    $("plot-legend").append(item);
  }
  $("plot-legend").append(el("span", { text: `(bins of ${counts.bucket} s)`, class: "meta" }));
}

function countsSoon() {
  clearTimeout(state.countsTimer);
  state.countsTimer = setTimeout(loadCounts, 1000);
}

// ---- frame view -------------------------------------------------------------------------
async function openView(id) {
  let frame;
  try {
    frame = await api(`/api/frames/${id}`);
  } catch (err) {
    alert(err.message);
    return;
  }
  const vocabulary = state.model.vocabulary;
  const labels = {};
  for (const tag of vocabulary) {
    const corrected = frame.labels ? frame.labels[tag] : undefined;
    labels[tag] = corrected === 0 || corrected === 1 ? corrected : frame.tags.includes(tag) ? 1 : 0;
  }
  state.view = { frame, labels };
  $("view-title").textContent = frame.frame ? `${frame.name} [frame ${frame.frame}]` : frame.name;
  const beam = frame.beam_center ? `(${frame.beam_center.map((v) => v.toFixed(1)).join(", ")}) px` : "?";
  $("view-meta").textContent =
    `${frame.path} · ${when(frame.time)} · beam centre ${beam} from ${frame.beam_center_source}` +
    (frame.error ? ` · error: ${frame.error}` : "");
  $("view-image").src = `/api/frames/${id}/image.png`;
  $("view-cake").src = `/api/frames/${id}/cake.png`;
  const bars = vocabulary.map((tag) => {
    const p = frame.probabilities[tag];
    const th = state.model.thresholds[tag];
    const fill = el("div", { class: p >= th ? "fill on" : "fill" });
    fill.style.width = `${((p || 0) * 100).toFixed(1)}%`;
    const mark = el("div", { class: "threshold", title: `threshold ${th.toFixed(2)}` });
    mark.style.left = `${(th * 100).toFixed(1)}%`;
    return el("div", { class: "bar" }, el("span", { text: tag }), el("div", { class: "track" }, fill, mark),
      el("span", { text: p === undefined ? "-" : p.toFixed(2) }));
  });
  $("view-bars").replaceChildren(...bars);
  drawChips();
  $("view-note").value = "";
  $("save-status").textContent = frame.labels ? "corrected before" : "";
  $("frame-view").hidden = false;
}

function drawChips() {
  const { labels } = state.view;
  const chips = state.model.vocabulary.map((tag) =>
    el("button", {
      type: "button",
      class: labels[tag] === 1 ? "chip" : "chip off",
      "data-tag": tag,
      text: tag,
      onclick: () => {
        labels[tag] = labels[tag] === 1 ? 0 : 1;
        $("save-status").textContent = "not saved";
        drawChips();
      },
    }),
  );
  $("view-chips").replaceChildren(...chips);
}

async function saveLabels() {
  const { frame, labels } = state.view;
  $("save-status").textContent = "saving...";
  try {
    const body = await api(`/api/frames/${frame.id}/labels`, {
      method: "PUT",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ labels, note: $("view-note").value }),
    });
    $("save-status").textContent = `saved to ${body.labels_table}`;
    const updated = await api(`/api/frames/${frame.id}`);
    const old = document.querySelector(`.card[data-id="${frame.id}"]`);
    if (old) old.replaceWith(card(updated));
  } catch (err) {
    $("save-status").textContent = `not saved: ${err.message}`;
  }
}

function closeView() {
  $("frame-view").hidden = true;
  state.view = null;
}

// ---- live frames ------------------------------------------------------------------------
function connect(after) {
  // the server replays what was stored after frame `after`, then sends new frames live:
  // a frame stored between the first page and the subscription is not lost
  const source = new EventSource(`/api/events?after=${after}`);
  source.addEventListener("open", () => $("live").className = "live on");
  source.addEventListener("error", () => $("live").className = "live off");
  source.addEventListener("frame", (event) => {
    const frame = JSON.parse(event.data);
    state.recent = [...state.recent.slice(-199), frame];
    addLive(frame);
    countsSoon();
  });
}

// ---- start ------------------------------------------------------------------------------
function refresh() {
  state.offset = 0;
  loadFrames();
  loadCounts();
}

async function start() {
  state.model = await api("/api/model");
  for (const tag of state.model.vocabulary) $("tag-filter").append(el("option", { value: tag, text: tag }));
  for (const folder of await api("/api/folders")) $("folder-filter").append(el("option", { value: folder, text: folder }));
  if (state.model.needs_api_key) {
    $("key-box").hidden = false;
    $("api-key").value = localStorage.getItem("scattertag-api-key") || "";
    $("api-key").addEventListener("change", () => localStorage.setItem("scattertag-api-key", $("api-key").value));
  }
  $("min-p").addEventListener("input", () => {
    const v = parseFloat($("min-p").value);
    $("min-p-value").textContent = v > 0 ? `>= ${v.toFixed(2)}` : "model threshold";
  });
  for (const id of ["tag-filter", "min-p", "folder-filter", "since", "until", "errors-only"]) {
    $(id).addEventListener("change", refresh);
  }
  $("prev").addEventListener("click", () => { state.offset = Math.max(0, state.offset - PAGE); loadFrames(); });
  $("next").addEventListener("click", () => { state.offset += PAGE; loadFrames(); });
  $("close-view").addEventListener("click", closeView);
  $("save-labels").addEventListener("click", saveLabels);
  $("frame-view").addEventListener("click", (e) => { if (e.target === $("frame-view")) closeView(); });
  document.addEventListener("keydown", (e) => { if (e.key === "Escape") closeView(); });
  loadCounts();
  await loadFrames();
  const newest = document.querySelector("#gallery .card");
  connect(newest ? Number(newest.dataset.id) : 0);
}

start();
