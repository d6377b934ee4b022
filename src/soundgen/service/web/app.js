// soundgen page: submit prompts, follow jobs live over a WebSocket, play and download results.
// Plain JavaScript, no build step, no network beyond this server.
"use strict";

const API = "/api/v1";
const state = { info: null, key: localStorage.getItem("soundgen.key") || "", jobs: new Map(), cursor: null,
  ws: null, wsRetry: 0, blobs: new Map() };
const $ = (id) => document.getElementById(id);

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) el.append(c);
  return el;
}

// ---- HTTP with the API key when the server wants one ----
class ApiError extends Error { constructor(status, message) { super(message); this.status = status; } }
// What the browser's bare "Failed to fetch" means here (status 0: no answer at all).
const UNREACHABLE = "The server did not answer: it may be stopped or restarting, or this device is offline.";

async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  if (state.key) headers["Authorization"] = "Bearer " + state.key;
  if (options.json !== undefined) { headers["Content-Type"] = "application/json"; options.body = JSON.stringify(options.json); }
  let res;
  try { res = await fetch(path, Object.assign({}, options, { headers })); }
  catch { throw new ApiError(0, UNREACHABLE); }
  if (res.status === 401) { askKey("Your key was not accepted: " + (await errorText(res))); throw new ApiError(401, "API key needed"); }
  if (!res.ok) throw new ApiError(res.status, await errorText(res));
  return res.status === 204 ? null : res;
}

async function errorText(res) {
  try { const body = await res.json(); return body.error || JSON.stringify(body); } catch { return res.statusText; }
}

// Media elements cannot send headers: with a key, fetch the file and hand the element a blob URL.
async function mediaUrl(url) {
  if (!state.info || !state.info.auth_required) return url;
  if (state.blobs.has(url)) return state.blobs.get(url);
  const res = await api(url);
  const blobUrl = URL.createObjectURL(await res.blob());
  state.blobs.set(url, blobUrl);
  return blobUrl;
}

async function download(url) {
  const res = await api(url + "?download=1");
  const disposition = res.headers.get("Content-Disposition") || "";
  const utf8 = /filename\*=UTF-8''([^;]+)/i.exec(disposition), plain = /filename="?([^";]+)"?/.exec(disposition);
  const name = utf8 ? decodeURIComponent(utf8[1]) : plain ? plain[1] : "sound";
  const a = h("a", { href: URL.createObjectURL(await res.blob()), download: name });
  document.body.append(a); a.click(); a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}

// ---- API key dialog ----
function askKey(message) {
  const dialog = $("key-dialog");
  $("key-error").hidden = !message; $("key-error").textContent = message || "";
  $("key-input").value = "";
  if (!dialog.open) dialog.showModal();
}

function setupKeyDialog() {
  $("key-form").addEventListener("submit", (ev) => {
    if (ev.submitter && ev.submitter.value === "cancel") return;
    state.key = $("key-input").value.trim();
    localStorage.setItem("soundgen.key", state.key);
    connect(true); reloadJobs();
  });
  $("key-button").addEventListener("click", () => askKey(""));
}

// ---- the form ----
function numberOrNull(value) { return value === "" ? null : Number(value); }

function readForm() {
  return { prompt: $("prompt").value.trim(), duration: Number($("duration").value), count: Number($("count").value),
    seed: $("seed-random").checked ? null : numberOrNull($("seed").value), cfg_coef: Number($("cfg").value), temperature: Number($("temperature").value),
    top_k: Number($("top-k").value || 0), top_p: Number($("top-p").value) };
}

function fillForm(job) {
  $("prompt").value = job.prompt; $("duration").value = job.duration; $("count").value = job.count;
  setSeed(job.seed); $("cfg").value = job.cfg_coef; $("temperature").value = job.temperature;
  $("top-k").value = job.top_k; $("top-p").value = job.top_p;
  for (const el of document.querySelectorAll("#form input, #form textarea")) el.dispatchEvent(new Event("input"));
  window.scrollTo({ top: 0, behavior: "smooth" }); $("prompt").focus();
}

// The seed sits beside Generate, never hidden: "Random" (a new sound each time) or a fixed number (the same sound
// again), so reusing a job's settings cannot silently fix every later sound.
function setSeed(seed) {
  const random = seed === null || seed === undefined;
  $("seed-random").checked = random; $("seed").disabled = random;
  $("seed").value = random ? "" : String(seed);
}

function bindSeed() {
  $("seed-random").addEventListener("change", () => {
    $("seed").disabled = $("seed-random").checked;
    if (!$("seed").disabled) $("seed").focus();
  });
}

function bindOutputs() {
  const pairs = [["duration", (v) => Number(v).toFixed(1) + " s"], ["cfg", (v) => Number(v).toFixed(1)],
    ["temperature", (v) => Number(v).toFixed(2)], ["top-p", (v) => Number(v).toFixed(2)]];
  for (const [id, fmt] of pairs) {
    const update = () => { $(id + "-out").textContent = fmt($(id).value); };
    $(id).addEventListener("input", update); update();
  }
  $("prompt").addEventListener("input", countPrompt); countPrompt();
  $("prompt").addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) $("form").requestSubmit();
  });
  if (/Mac|iPhone|iPad/.test(navigator.platform)) $("prompt-hint").firstElementChild.textContent = "⌘";
}

// ---- prompt length: characters here, tokens of the model's text encoder counted by the server ----
const promptCount = { tokens: 0, seq: 0, timer: null, problem: null };

function renderCount() {
  const info = state.info || {}, text = $("prompt").value.trim(), chars = text.length;
  const maxChars = info.max_prompt_chars || 500, maxTokens = info.max_prompt_tokens, tokens = promptCount.tokens;
  const parts = maxTokens ? [`${tokens} / ${maxTokens} tokens`] : [];
  parts.push(`${chars} / ${maxChars} characters`);
  promptCount.problem = chars > maxChars ? `The prompt is ${chars} characters long; the limit is ${maxChars}: shorten it.`
    : maxTokens && tokens > maxTokens ? `The prompt is ${tokens} tokens long; this model reads at most ${maxTokens}: shorten it.`
    : null;
  $("prompt-count").textContent = parts.join(" · ");
  $("prompt-count").classList.toggle("over", promptCount.problem !== null);
}

function countPrompt() {
  clearTimeout(promptCount.timer);
  const text = $("prompt").value.trim(), info = state.info;
  const seq = ++promptCount.seq;
  if (!text) promptCount.tokens = 0;
  renderCount();
  if (!text || !info || !info.max_prompt_tokens || text.length > info.max_prompt_chars) return;
  promptCount.timer = setTimeout(async () => {
    try {
      const r = await (await api(API + "/prompts/count", { method: "POST", json: { prompt: text } })).json();
      if (seq === promptCount.seq) { promptCount.tokens = r.tokens; renderCount(); }
    } catch { /* only a help while typing: the server checks the prompt again when it is submitted */ }
  }, 120);
}

async function submit(ev) {
  ev.preventDefault();
  const body = readForm();
  $("form-error").hidden = true;
  if (!body.prompt) { showFormError("Describe the sound first, e.g. “rain on a tin roof”."); return; }
  if (promptCount.problem) { showFormError(promptCount.problem); return; }
  await send(body, newKey());
}

// One idempotency key per submission, kept by its retries: a retry after a lost answer gets the same job back.
function newKey() { return crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random().toString(16).slice(2); }

async function send(body, key) {
  $("submit").disabled = true;
  try {
    const job = await (await api(API + "/generations", { method: "POST", json: body, headers: { "Idempotency-Key": key } })).json();
    upsertJob(job, true);
  } catch (e) { if (e.status !== 401) showFormError(e.message, e.status === 0 ? () => send(body, key) : null); }
  finally { $("submit").disabled = false; }
}

function showFormError(message, retry = null) {
  const el = $("form-error");
  el.replaceChildren(message);
  if (retry) el.append(" ", h("button", { class: "ghost small", type: "button", onclick: () => { el.hidden = true; retry(); } }, "Retry"));
  el.hidden = false;
}

// ---- notices at the bottom of the screen (errors of card actions, undo of a delete) ----
function toast(message, action = null, ms = 6000) {
  const el = h("div", { class: "toast" }, h("span", {}, message),
    action ? h("button", { class: "ghost small", type: "button", onclick: () => { el.remove(); action.run(); } }, action.label) : null,
    h("button", { class: "ghost small", type: "button", "aria-label": "dismiss", onclick: () => el.remove() }, "×"));
  $("toasts").append(el);
  setTimeout(() => el.remove(), ms);
  return el;
}

// ---- job cards ----
const STATE_LABEL = { queued: "Queued", running: "Generating", succeeded: "Done", failed: "Failed", cancelled: "Cancelled" };

function when(t) {
  const d = new Date(t * 1000), today = new Date().toDateString() === d.toDateString();
  return today ? d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) : d.toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
}

const RANK = { queued: 0, running: 1, succeeded: 2, failed: 2, cancelled: 2 };

// Answers and pushes can cross (a POST answer saying "queued" may land after a push saying "running"):
// never let an older view of a job replace a newer one.
function isOlder(job, prev) {
  if (!prev) return false;
  if (RANK[job.state] !== RANK[prev.state]) return RANK[job.state] < RANK[prev.state];
  return job.state === "running" && job.step < prev.step;
}

function upsertJob(job, isNew = false) {
  const prev = state.jobs.get(job.id);
  if (isOlder(job, prev)) return;
  state.jobs.set(job.id, job);
  let card = document.querySelector(`[data-job="${job.id}"]`);
  if (card && prev && prev.state === job.state && job.state === "running") { updateProgress(card, job); return; }
  const fresh = renderJob(job);
  if (pendingDeletes.has(job.id)) fresh.hidden = true;
  if (card) card.replaceWith(fresh);
  else if (isNew) $("jobs").prepend(fresh);
  else $("jobs").append(fresh);
  $("empty").hidden = state.jobs.size > 0;
}

function updateProgress(card, job) {
  const bar = card.querySelector(".bar > div"), pct = card.querySelector(".pct");
  if (bar) bar.style.width = job.progress + "%";
  const text = job.state === "queued" ? "waiting…" : `${Math.floor(job.progress)}%` + (job.total_steps ? ` · ${job.step}/${job.total_steps}` : "");
  if (bar) bar.parentElement.setAttribute("aria-valuenow", String(Math.round(job.progress)));
  if (bar) bar.parentElement.setAttribute("aria-valuetext", job.state === "queued" ? "waiting in the queue" : text);
  if (pct) pct.textContent = text;
}

function renderJob(job) {
  const meta = [`${job.duration.toFixed(1)} s`, job.count > 1 ? `${job.count} sounds` : null, `seed ${job.seed}`, when(job.created_at),
    job.elapsed ? `took ${job.elapsed.toFixed(1)} s` : null].filter(Boolean).join(" · ");
  const card = h("article", { class: `job ${job.state}`, "data-job": job.id, "data-state": job.state, "data-seed": job.seed },
    h("div", { class: "job-head" },
      h("div", {}, h("div", { class: "job-title" }, job.prompt), h("div", { class: "job-meta" }, meta)),
      h("span", { class: `state ${job.state}` }, STATE_LABEL[job.state] || job.state)));
  if (job.state === "queued" || job.state === "running") {
    card.append(h("div", { class: "progress" },
      h("div", { class: "bar", role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": "0",
        "aria-label": `progress of “${job.prompt}”` }, h("div")),
      h("span", { class: "pct" })));
    updateProgress(card, job);
  }
  if (job.error && job.state === "failed") card.append(h("div", { class: "job-error" }, job.error));
  if (job.state === "succeeded") card.append(h("div", { class: "results" }, job.results.map((r) => renderResult(job, r))));
  card.append(renderActions(job));
  return card;
}

function renderResult(job, r) {
  const img = h("img", { alt: `waveform and spectrogram of “${job.prompt}” #${r.index + 1}`, loading: "lazy" });
  const audio = h("audio", { controls: true, preload: "metadata" });
  mediaUrl(r.image_url).then((u) => { img.src = u; }).catch(() => {});
  mediaUrl(r.audio_url).then((u) => { audio.src = u; }).catch(() => {});
  const buttons = Object.entries(r.downloads).map(([fmt, url]) =>
    h("button", { class: "ghost small", type: "button", title: `download as ${fmt.toUpperCase()}`,
      onclick: () => download(url).catch((e) => toast("Could not download: " + e.message)) }, fmt === "opus" ? "Opus" : fmt.toUpperCase()));
  return h("div", { class: "result" }, img, audio, h("div", { class: "result-row" }, h("span", { class: "label" }, "Download"), buttons));
}

function renderActions(job) {
  const active = job.state === "queued" || job.state === "running";
  const act = (label, fn, cls = "ghost small") => h("button", { class: cls, type: "button",
    onclick: (ev) => { const b = ev.currentTarget; b.disabled = true; fn().catch((e) => { if (e.status !== 401) toast(e.message); }).finally(() => { b.disabled = false; }); } }, label);
  const newSeed = act("New seed", () => api(`${API}/generations/${job.id}/variations`, { method: "POST" }).then((r) => r.json()).then((j) => upsertJob(j, true)));
  newSeed.title = "the same prompt and settings again, with a new random seed";
  return h("div", { class: "job-actions" },
    active ? act("Cancel", () => api(`${API}/generations/${job.id}/cancel`, { method: "POST" }).then((r) => r.json()).then((j) => upsertJob(j))) : null,
    job.state === "succeeded" ? newSeed : null,
    act("Reuse settings", async () => fillForm(job)),
    !active ? act("Delete", async () => deleteWithUndo(job), "ghost small danger") : null);
}

// Delete hides the card at once and deletes on the server only when the Undo notice has gone.
const UNDO_MS = 6000;
const pendingDeletes = new Map();

function deleteWithUndo(job) {
  const card = () => document.querySelector(`[data-job="${job.id}"]`);
  if (card()) card().hidden = true;
  const finish = async () => {
    pendingDeletes.delete(job.id);
    try { await api(`${API}/generations/${job.id}`, { method: "DELETE" }); removeJob(job.id); }
    catch (e) { if (card()) card().hidden = false; if (e.status !== 404) toast("Could not delete: " + e.message); else removeJob(job.id); }
  };
  const timer = setTimeout(finish, UNDO_MS);
  pendingDeletes.set(job.id, timer);
  const title = job.prompt.length > 40 ? job.prompt.slice(0, 39) + "…" : job.prompt;
  toast(`Deleted “${title}”.`, { label: "Undo", run: () => {
    clearTimeout(timer); pendingDeletes.delete(job.id); if (card()) card().hidden = false;
  } }, UNDO_MS);
}

// Leaving the page within the undo time still deletes (keepalive requests outlive the page).
window.addEventListener("pagehide", () => {
  const headers = state.key ? { Authorization: "Bearer " + state.key } : {};
  for (const id of pendingDeletes.keys()) fetch(`${API}/generations/${id}`, { method: "DELETE", keepalive: true, headers });
});

function removeJob(id) {
  state.jobs.delete(id);
  const card = document.querySelector(`[data-job="${id}"]`);
  if (card) card.remove();
  $("empty").hidden = state.jobs.size > 0;
}

// ---- history: pages from the API (survives reloads and restarts) ----
async function loadPage(reset) {
  if (reset) { state.jobs.clear(); $("jobs").replaceChildren(); state.cursor = null; }
  const params = new URLSearchParams({ limit: "10" });
  if (state.cursor) params.set("cursor", state.cursor);
  if ($("search").value.trim()) params.set("q", $("search").value.trim());
  if ($("state-filter").value) params.set("state", $("state-filter").value);
  try {
    const page = await (await api(`${API}/generations?${params}`)).json();
    for (const job of page.items) upsertJob(job);
    state.cursor = page.next_cursor;
    $("more").hidden = !page.next_cursor;
    $("empty").hidden = state.jobs.size > 0;
  } catch (e) { if (e.status !== 401) showFormError("Could not load your sounds. " + e.message, () => loadPage(reset)); }
}
function reloadJobs() { return loadPage(true); }

// ---- live updates: one WebSocket for all my jobs ----
function connect(force) {
  if (state.ws && !force) return;
  if (state.ws) { state.ws.onclose = null; state.ws.close(); }
  const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}${API}/events`;
  const ws = state.key && state.info && state.info.auth_required ? new WebSocket(url, ["bearer", state.key]) : new WebSocket(url);
  state.ws = ws;
  ws.onopen = () => { state.wsRetry = 0; setLive(true); refreshActive(); };
  ws.onmessage = (ev) => {
    const msg = JSON.parse(ev.data);
    if (msg.type === "job") { if (state.jobs.has(msg.id) || matchesFilter(msg)) upsertJob(msg, !state.jobs.has(msg.id)); }
    else if (msg.type === "deleted") removeJob(msg.id);
  };
  ws.onclose = (ev) => {
    setLive(false); state.ws = null;
    if (ev.code === 4401) { askKey(ev.reason || "This server needs an API key."); return; }
    const delay = Math.min(10000, 500 * 2 ** state.wsRetry++);
    setTimeout(() => connect(false), delay);
  };
}

function matchesFilter(job) {
  const f = $("state-filter").value, q = $("search").value.trim().toLowerCase();
  return (!f || f === job.state) && (!q || job.prompt.toLowerCase().includes(q));
}

// After a reconnect, jobs may have moved on while we were away: re-read the active ones.
async function refreshActive() {
  for (const job of [...state.jobs.values()].filter((j) => j.state === "queued" || j.state === "running")) {
    try { upsertJob(await (await api(`${API}/generations/${job.id}`)).json()); }
    catch (e) { if (e.status === 404) removeJob(job.id); }
  }
}

function setLive(on) { $("live").classList.toggle("on", on); $("live").querySelector("span").textContent = on ? "live" : "offline"; }

// ---- theme ----
function setupTheme() {
  const saved = localStorage.getItem("soundgen.theme");
  if (saved) document.documentElement.dataset.theme = saved;
  $("theme-button").addEventListener("click", () => {
    const dark = document.documentElement.dataset.theme ? document.documentElement.dataset.theme === "dark"
      : matchMedia("(prefers-color-scheme: dark)").matches;
    document.documentElement.dataset.theme = dark ? "light" : "dark";
    localStorage.setItem("soundgen.theme", document.documentElement.dataset.theme);
  });
}

// ---- start ----
async function start() {
  setupTheme(); setupKeyDialog(); bindOutputs(); bindSeed();
  const info = await (await api(API + "/info")).json();
  state.info = info;
  $("model-badge").textContent = "model: " + info.model;
  if (info.warning) { $("warning").textContent = "⚠ " + info.warning; $("warning").hidden = false; }
  $("duration").max = info.max_duration;
  $("count").replaceChildren(...Array.from({ length: info.max_count }, (_, i) => h("option", { value: i + 1 }, String(i + 1))));
  $("examples").replaceChildren(...info.example_prompts.map((p) => h("button", { class: "chip", type: "button",
    onclick: () => { $("prompt").value = p; $("prompt").dispatchEvent(new Event("input")); $("prompt").focus(); } }, p)));
  $("prompt").dispatchEvent(new Event("input"));
  $("key-button").hidden = !info.auth_required;
  $("form").addEventListener("submit", submit);
  $("more").addEventListener("click", () => loadPage(false));
  let timer = null;
  $("search").addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(reloadJobs, 250); });
  $("state-filter").addEventListener("change", reloadJobs);
  if (info.auth_required && !state.key) { askKey(""); return; }
  await reloadJobs();
  connect(false);
}

start().catch((e) => showFormError("The page could not start. " + e.message, () => location.reload()));
