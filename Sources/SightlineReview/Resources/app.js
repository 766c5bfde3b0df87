// The review page: library, search, per-video filmstrip and timeline, review queue.
// Plain DOM code, no framework, no network beyond this server.
"use strict";

const $ = (id) => document.getElementById(id);
const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v; else if (k.startsWith("on")) node.addEventListener(k.slice(2), v); else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
};
// Pictures say when they have loaded or failed (styling, and checkable in tests).
document.addEventListener("load", (e) => { if (e.target.tagName === "IMG") e.target.dataset.state = "loaded"; }, true);
document.addEventListener("error", (e) => { if (e.target.tagName === "IMG") e.target.dataset.state = "broken"; }, true);
const clock = (s) => {
  const t = Math.round(s * 10) / 10, m = Math.floor(t / 60), sec = (t - m * 60).toFixed(1).padStart(4, "0");
  return `${m}:${sec}`;
};
async function api(path, options) {
  const response = await fetch(path, options);
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}
function show(section) {
  for (const id of ["hits", "video", "review", "live"]) $(id).hidden = id !== section;
  $("message").textContent = "";
}
function fail(error) { $("message").textContent = String(error.message || error); }

async function loadLibrary() {
  const { videos } = await api("/api/videos");
  const list = $("video-list");
  list.replaceChildren(...videos.map((v) => el("li", { "data-source": v.source, onclick: () => openVideo(v.source) },
    v.name, " ", el("span", { class: "count" }, `${v.shots} shots${v.flagged ? `, ${v.flagged} flagged` : ""}`))));
  if (!videos.length) $("message").textContent = "The index is empty: run the batch pipeline first.";
}

async function search(event) {
  if (event) event.preventDefault();
  const q = $("search-input").value.trim();
  if (!q) return;
  const kind = $("search-kind").value;
  try {
    const { hits } = await api(`/api/search?q=${encodeURIComponent(q)}&limit=20${kind ? `&kind=${kind}` : ""}`);
    show("hits");
    const list = $("hit-list");
    list.replaceChildren(...hits.map((h) => {
      const why = [];
      if (h.matched_terms.length) why.push("words " + h.matched_terms.join(", "));
      if (h.matched_labels.length) why.push("seen " + h.matched_labels.join(", "));
      if (h.text_rank) why.push("text rank " + h.text_rank);
      if (h.vector_rank) why.push(`meaning rank ${h.vector_rank}` + (h.similarity != null ? ` (cosine ${h.similarity.toFixed(2)})` : ""));
      return el("li", { class: "hit", onclick: () => openVideo(h.source, h.shot) },
        h.thumbnail ? el("img", { src: h.thumbnail, alt: `shot ${h.shot}`, loading: "lazy" }) : el("span"),
        el("div", {},
          el("div", {}, el("strong", {}, h.location.split("/").pop()), ` ${clock(h.start)}–${clock(h.end)} · shot ${h.shot} `, h.flagged ? el("span", { class: "flag-tag" }, "flagged") : ""),
          el("div", { class: "caption" }, h.caption),
          el("div", { class: "why" }, why.join("; "))));
    }));
    if (!hits.length) $("message").textContent = `No shots match "${q}".`;
  } catch (error) { fail(error); }
}

async function openVideo(source, highlight) {
  try {
    const data = await api(`/api/shots?source=${encodeURIComponent(source)}`);
    show("video");
    for (const li of document.querySelectorAll("#video-list li")) li.classList.toggle("selected", li.dataset.source === source);
    $("video-title").textContent = `${data.location} (${clock(data.duration)})`;
    const duration = Math.max(data.duration, ...data.shots.map((s) => s.end), 0.001);
    const pct = (t) => `${(100 * t / duration).toFixed(3)}%`;
    const timeline = $("timeline");
    timeline.replaceChildren(
      ...data.shots.map((s) => el("div", { class: "shot-span" + (s.flagged ? " flagged" : ""), title: `shot ${s.index} ${clock(s.start)}–${clock(s.end)}: ${s.caption}`,
        style: `left:${pct(s.start)};width:${pct(s.end - s.start)}`, onclick: () => focusShot(s.index) })),
      ...data.flags.map((f) => el("div", { class: "flag-span", title: `${f.category} ${clock(f.start)}–${clock(f.end)} (peak ${f.peak.toFixed(2)})`,
        style: `left:${pct(f.start)};width:max(3px,${pct(f.end - f.start)})` })));
    $("filmstrip").replaceChildren(...data.shots.map((s) => shotCard(data.source, s)));
    if (highlight != null) focusShot(highlight);
  } catch (error) { fail(error); }
}

function shotCard(source, s) {
  const frame = el("div", { class: "frame" });
  if (s.thumbnail) {
    const img = el("img", { src: s.thumbnail, alt: `shot ${s.index}`, loading: "lazy" });
    frame.append(img);
    // People and faces seen in the shot, drawn over the picture on hover.
    frame.addEventListener("mouseenter", () => drawBoxes(frame, source, s));
    frame.addEventListener("mouseleave", () => frame.querySelectorAll(".box").forEach((b) => b.remove()));
  }
  return el("div", { class: "shot" + (s.flagged ? " flagged" : ""), id: `shot-${s.index}`, "data-index": s.index },
    frame,
    el("div", {}, el("strong", {}, `${clock(s.start)}–${clock(s.end)}`), s.people ? ` · ${s.people} people` : "", s.flagged ? " " : "",
      s.flagged ? el("span", { class: "flag-tag" }, "flagged") : ""),
    el("div", { class: "caption" }, s.caption),
    el("div", { class: "labels" }, s.labels),
    s.text ? el("div", { class: "ocr" }, s.text) : "");
}

async function drawBoxes(frame, source, s) {
  try {
    const { detections } = await api(`/api/detections?source=${encodeURIComponent(source)}&from=${s.start}&to=${s.end}`);
    if (!detections.length) return;
    // The frame nearest the shot's middle.
    const middle = (s.start + s.end) / 2;
    const time = detections.reduce((best, d) => Math.abs(d.time - middle) < Math.abs(best - middle) ? d.time : best, detections[0].time);
    for (const d of detections.filter((d) => d.time === time)) {
      frame.append(el("div", { class: `box ${d.kind}`, title: `${d.kind} ${d.score.toFixed(2)} ${Object.values(d.attributes).join(" ")}`,
        style: `left:${100 * d.x / d.frame_width}%;top:${100 * d.y / d.frame_height}%;width:${100 * d.width / d.frame_width}%;height:${100 * d.height / d.frame_height}%` }));
    }
  } catch (error) { fail(error); }
}

function focusShot(index) {
  for (const card of document.querySelectorAll(".shot")) card.classList.toggle("highlight", Number(card.dataset.index) === index);
  const card = $(`shot-${index}`);
  if (card) card.scrollIntoView({ block: "nearest", inline: "center" });
}

async function loadQueue() {
  try {
    const pending = $("pending-only").checked;
    const { flags } = await api(`/api/flags${pending ? "?pending=1" : ""}`);
    show("review");
    $("flag-list").replaceChildren(...flags.map(flagItem));
    if (!flags.length) $("message").textContent = pending ? "Nothing waits for review." : "No flags in the index.";
  } catch (error) { fail(error); }
}

function flagItem(f) {
  const note = el("input", { placeholder: "note", "aria-label": "note" });
  const decide = (decision) => async () => {
    try {
      const reviewer = $("reviewer").value.trim();
      if (!reviewer) throw new Error("Enter your name as reviewer first.");
      localStorage.setItem("sightline-reviewer", reviewer);
      await api(`/api/flags/${f.id}/verdict`, { method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ decision, note: note.value, reviewer }) });
      await loadQueue();
    } catch (error) { fail(error); }
  };
  const verdict = f.verdict ? el("div", { class: `verdict-${f.verdict.decision}` },
    `${f.verdict.decision} by ${f.verdict.reviewer}${f.verdict.note ? `: ${f.verdict.note}` : ""}`) : "";
  return el("li", { class: "flag", "data-id": f.id },
    f.thumbnail ? el("img", { src: f.thumbnail, alt: `shot ${f.shot}` }) : el("span"),
    el("div", {},
      el("div", {}, el("span", { class: "flag-tag" }, f.category), ` ${f.location.split("/").pop()} ${clock(f.start)}–${clock(f.end)} · peak ${f.peak.toFixed(2)}`),
      el("div", { class: "why" }, `evidence frames at ${f.evidence.map(clock).join(", ")}`),
      f.notes.length ? el("div", { class: "why" }, f.notes.join("; ")) : "",
      verdict,
      el("div", {}, note, el("button", { onclick: decide("confirmed") }, "Confirm"), el("button", { onclick: decide("dismissed") }, "Dismiss"),
        el("a", { href: "#", onclick: (e) => { e.preventDefault(); openVideo(f.source, f.shot); } }, " open video"))));
}

// Live view: the running pipeline's messages relayed over a WebSocket (/live), newest first,
// and the latest caption per source. At most 200 rows are kept in the page.
let liveSocket = null;
function liveSummary(kind, header) {
  const d = header.data || {};
  switch (kind) {
    case "captions": return d.caption || "";
    case "moderation": return `${d.event || ""} ${d.category || ""} ${d.score != null ? Number(d.score).toFixed(2) : ""}`;
    case "labels": return (d.labels || []).slice(0, 3).map((l) => l.label).join(", ");
    case "ocr": return d.text || "";
    case "people": case "faces": return `${(d.objects || []).length} ${kind}`;
    case "track_events": return `${d.event || ""} ${d.label || ""} #${d.track_id ?? ""}`;
    case "review": return `${d.decision} ${d.category} by ${d.reviewer || "someone"}${d.note ? ": " + d.note : ""}`;
    case "status": return d.event || "";
    default: return "";
  }
}
async function openLive() {
  show("live");
  const info = await api("/api/live");
  if (!info.enabled) { $("live-state").textContent = "off: start sightline serve with --live-bus ENDPOINT"; $("live-state").dataset.state = "off"; return; }
  if (liveSocket) return;
  const list = $("live-list"), latest = new Map();
  liveSocket = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}${info.path}`);
  liveSocket.onopen = () => { $("live-state").textContent = `connected to ${info.endpoint}`; $("live-state").dataset.state = "open"; };
  liveSocket.onclose = () => { $("live-state").textContent = "disconnected"; $("live-state").dataset.state = "closed"; liveSocket = null; };
  liveSocket.onmessage = (event) => {
    let message;
    try { message = JSON.parse(event.data); } catch { return; }
    const header = message.header || {}, kind = header.kind || "";
    const text = liveSummary(kind, header);
    list.prepend(el("li", { class: `live-item kind-${kind}`, "data-kind": kind },
      el("span", { class: "flag-tag" }, kind), ` ${header.source || ""} ${header.pts_start != null ? clock(header.pts_start) : ""} `, text));
    while (list.children.length > 200) list.lastChild.remove();
    if (kind === "captions") {
      latest.set(header.source, text);
      $("live-sources").replaceChildren(...[...latest].map(([source, caption]) => el("div", { class: "live-source" }, el("b", {}, source), " ", caption)));
    }
  };
}

$("search-form").addEventListener("submit", search);
$("nav-live").addEventListener("click", (e) => { e.preventDefault(); openLive().catch(fail); });
$("nav-review").addEventListener("click", (e) => { e.preventDefault(); loadQueue(); });
$("nav-library").addEventListener("click", (e) => { e.preventDefault(); loadLibrary(); show(null); });
$("pending-only").addEventListener("change", loadQueue);
$("reviewer").value = localStorage.getItem("sightline-reviewer") || "";
loadLibrary().catch(fail);
// Deep links: ?q=QUERY, ?video=SOURCE[&shot=N], ?review=1, ?live=1.
const params = new URLSearchParams(location.search);
if (params.get("q")) { $("search-input").value = params.get("q"); search(); }
else if (params.get("video")) openVideo(params.get("video"), params.has("shot") ? Number(params.get("shot")) : undefined);
else if (params.get("review")) loadQueue();
else if (params.get("live")) openLive().catch(fail);
