// soundgen's main page: submit prompts, follow jobs live over a WebSocket (and their place in the queue), play,
// download and share results, and keep the history.
import { API, $, api, askKey, h, loadInfo, setupKeyDialog, setupTheme, state, toast } from "./common.js";
import { isActive, renderJob, stampEta, updateProgress } from "./cards.js";
import { fillForm, setContinuation, setupForm, showFormError } from "./form.js";

const jobs = new Map();
let cursor = null, ws = null, wsRetry = 0;
const RANK = { queued: 0, running: 1, succeeded: 2, failed: 2, cancelled: 2 };

// Answers and pushes can cross (a POST answer saying "queued" may land after a push saying "running"):
// never let an older view of a job replace a newer one.
function isOlder(job, prev) {
  if (!prev) return false;
  if (RANK[job.state] !== RANK[prev.state]) return RANK[job.state] < RANK[prev.state];
  return job.state === "running" && job.step < prev.step;
}

function upsertJob(job, isNew = false) {
  const prev = jobs.get(job.id);
  if (isOlder(job, prev)) return;
  jobs.set(job.id, stampEta(job, prev));
  const card = document.querySelector(`[data-job="${job.id}"]`);
  if (card && prev && prev.state === job.state && isActive(job)) { updateProgress(card, job); return; }
  const fresh = renderJob(job, renderActions, resultActions);
  if (pendingDeletes.has(job.id)) fresh.hidden = true;
  if (card) card.replaceWith(fresh);
  else if (isNew) $("jobs").prepend(fresh);
  else $("jobs").append(fresh);
  $("empty").hidden = jobs.size > 0;
}

function renderActions(job) {
  const active = isActive(job);
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

// Beside each sound: Continue (the form continues it, with a prompt of your choice) and Extend (N more seconds of
// it, with its own prompt and settings, at once).
function resultActions(job, r, label) {
  const ref = `${job.id}/${r.index}`;
  const seconds = h("input", { type: "number", min: "0.5", max: String(state.info.max_duration), step: "0.5", value: "5",
    class: "extend-seconds", "aria-label": `seconds to add to ${label}` });
  const add = h("button", { class: "ghost small", type: "button" }, "Add");
  const extend = h("span", { class: "extend", hidden: true }, seconds, h("span", { class: "help" }, "s"), add);
  add.addEventListener("click", async () => {
    add.disabled = true;
    const body = { prompt: job.prompt, duration: Number(seconds.value), count: 1, cfg_coef: job.cfg_coef, temperature: job.temperature,
      top_k: job.top_k, top_p: job.top_p, continue_from: ref };
    if (job.negative_prompt) body.negative_prompt = job.negative_prompt;
    try { upsertJob(await (await api(`${API}/generations`, { method: "POST", json: body })).json(), true); extend.hidden = true; }
    catch (e) { if (e.status !== 401) toast("Could not extend: " + e.message); }
    finally { add.disabled = false; }
  });
  const toggle = h("button", { class: "ghost small", type: "button", "aria-expanded": "false", "aria-label": `extend ${label}`,
    title: "add seconds to this sound, with its own prompt and settings" }, "Extend");
  toggle.addEventListener("click", () => {
    extend.hidden = !extend.hidden; toggle.setAttribute("aria-expanded", String(!extend.hidden));
    if (!extend.hidden) seconds.focus();
  });
  const cont = h("button", { class: "ghost small", type: "button", "aria-label": `continue ${label} with a new prompt`,
    title: "the form continues this sound: write a prompt for what comes next" }, "Continue");
  cont.addEventListener("click", () => {
    setContinuation({ label, seconds: job.duration + (job.prompt_seconds || 0), ref });
    window.scrollTo({ top: 0, behavior: "smooth" }); $("prompt").focus();
  });
  return h("div", { class: "result-row" }, h("span", { class: "label" }, "Go on"), cont, toggle, extend);
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
  jobs.delete(id);
  const card = document.querySelector(`[data-job="${id}"]`);
  if (card) card.remove();
  $("empty").hidden = jobs.size > 0;
}

// ---- history: pages from the API (survives reloads and restarts) ----
async function loadPage(reset) {
  if (reset) { jobs.clear(); $("jobs").replaceChildren(); cursor = null; }
  const params = new URLSearchParams({ limit: "10" });
  if (cursor) params.set("cursor", cursor);
  if ($("search").value.trim()) params.set("q", $("search").value.trim());
  if ($("state-filter").value) params.set("state", $("state-filter").value);
  try {
    const page = await (await api(`${API}/generations?${params}`)).json();
    for (const job of page.items) upsertJob(job);
    cursor = page.next_cursor;
    $("more").hidden = !page.next_cursor;
    $("empty").hidden = jobs.size > 0;
  } catch (e) { if (e.status !== 401) showFormError("Could not load your sounds. " + e.message, () => loadPage(reset)); }
}
const reloadJobs = () => loadPage(true);

// ---- live updates: one WebSocket for all my jobs ----
function connect(force) {
  if (ws && !force) return;
  if (ws) { ws.onclose = null; ws.close(); }
  const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}${API}/events`;
  const sock = state.key && state.info && state.info.auth_required ? new WebSocket(url, ["bearer", state.key]) : new WebSocket(url);
  ws = sock;
  sock.onopen = () => { wsRetry = 0; setLive(true); refreshActive(); };
  sock.onmessage = (ev) => {
    const msg = JSON.parse(ev.data);
    if (msg.type === "job") { if (jobs.has(msg.id) || matchesFilter(msg)) upsertJob(msg, !jobs.has(msg.id)); }
    else if (msg.type === "deleted") removeJob(msg.id);
  };
  sock.onclose = (ev) => {
    setLive(false); ws = null;
    if (ev.code === 4401) { askKey(ev.reason || "This server needs an API key."); return; }
    const delay = Math.min(10000, 500 * 2 ** wsRetry++);
    setTimeout(() => connect(false), delay);
  };
}

function matchesFilter(job) {
  const f = $("state-filter").value, q = $("search").value.trim().toLowerCase();
  return (!f || f === job.state) && (!q || job.prompt.toLowerCase().includes(q));
}

// Re-read jobs that may have moved on while no push said so: the active ones after a reconnect, and the queued
// ones now and then (nothing is pushed when a job ahead of them starts, but their place changes).
async function refreshActive(states = ["queued", "running"]) {
  for (const job of [...jobs.values()].filter((j) => states.includes(j.state))) {
    try { upsertJob(await (await api(`${API}/generations/${job.id}`)).json()); }
    catch (e) { if (e.status === 404) removeJob(job.id); }
  }
}

function setLive(on) { $("live").classList.toggle("on", on); $("live").querySelector("span").textContent = on ? "live" : "offline"; }

// The estimates count down every second; the queue is read again every few seconds while something waits in it.
const QUEUE_POLL_MS = 3000;
function tickEstimates() {
  for (const job of jobs.values()) {
    if (!isActive(job)) continue;
    const card = document.querySelector(`[data-job="${job.id}"]`);
    if (card) updateProgress(card, job);
  }
}

// ---- start ----
async function start() {
  setupTheme();
  setupKeyDialog(() => { connect(true); reloadJobs(); });
  const info = await loadInfo();
  setupForm(info, (created) => {
    for (const job of created) upsertJob(job, true);
    refreshActive(["queued"]);  // their place in the queue (a submission's answer does not say it)
  });
  $("more").addEventListener("click", () => loadPage(false));
  let timer = null;
  $("search").addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(reloadJobs, 250); });
  $("state-filter").addEventListener("change", reloadJobs);
  setInterval(tickEstimates, 1000);
  setInterval(() => { if (!document.hidden) refreshActive(["queued"]); }, QUEUE_POLL_MS);
  if (info.auth_required && !state.key) { askKey(""); return; }
  await reloadJobs();
  connect(false);
}

start().catch((e) => showFormError("The page could not start. " + e.message, () => location.reload()));
