// The form of the main page: a prompt (or one per line), duration, sounds, seed, the advanced settings with what
// each does and the model's defaults, a negative prompt; the live length count; submitting with retries.
import { API, $, api, h, state } from "./common.js";

let onQueued = () => {};
// The generation settings the form sends, with the element and how its value is read.
const FIELDS = { duration: "duration", cfg_coef: "cfg", temperature: "temperature", top_k: "top-k", top_p: "top-p" };

function numberOrNull(value) { return value === "" ? null : Number(value); }
const batchMode = () => $("batch").checked;

// The lines of a batch that hold a prompt, with the line number the user sees (blank lines are skipped).
function promptLines() {
  return $("prompt").value.split("\n").map((text, i) => ({ text: text.trim(), line: i + 1 })).filter((l) => l.text);
}

function readSettings() {
  const body = { duration: Number($("duration").value), count: Number($("count").value),
    seed: $("seed-random").checked ? null : numberOrNull($("seed").value), cfg_coef: Number($("cfg").value),
    temperature: Number($("temperature").value), top_k: Number($("top-k").value || 0), top_p: Number($("top-p").value) };
  const negative = $("negative-prompt").value.trim();
  if (negative) body.negative_prompt = negative;
  if (continuation && continuation.data) body.audio_prompt = continuation.data;
  if (continuation && continuation.ref) body.continue_from = continuation.ref;
  return body;
}

export function fillForm(job) {
  setContinuation(null);
  $("batch").checked = false; $("batch").dispatchEvent(new Event("change"));
  $("prompt").value = job.prompt; $("duration").value = job.duration; $("count").value = job.count;
  setSeed(job.seed); $("cfg").value = job.cfg_coef; $("temperature").value = job.temperature;
  $("top-k").value = job.top_k; $("top-p").value = job.top_p; $("negative-prompt").value = job.negative_prompt || "";
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

// The defaults are the API's own (what a request that leaves a field out gets), shown beside each setting.
function applyDefaults() {
  const settings = state.info.settings || {};
  for (const [name, id] of Object.entries(FIELDS)) {
    const s = settings[name];
    if (!s || s.default === null) continue;
    if ($(id).max !== "" && s.default > Number($(id).max)) $(id).max = String(s.default);  // the control can show it
    if ($(id).min !== "" && s.default < Number($(id).min)) $(id).min = String(s.default);
    $(id).value = String(s.default);
    $(id).dispatchEvent(new Event("input"));
    const shown = document.querySelector(`[data-default-for="${name}"]`);
    if (shown) shown.textContent = `default ${s.default}`;
  }
}

function bindOutputs() {
  const pairs = [["duration", (v) => Number(v).toFixed(1) + " s"], ["cfg", (v) => Number(v).toFixed(1)],
    ["temperature", (v) => Number(v).toFixed(2)], ["top-p", (v) => Number(v).toFixed(2)]];
  for (const [id, fmt] of pairs) {
    const update = () => { $(id + "-out").textContent = fmt($(id).value); };
    $(id).addEventListener("input", update); update();
  }
  $("prompt").addEventListener("input", countPrompt);
  $("prompt").addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) $("form").requestSubmit();
  });
  if (/Mac|iPhone|iPad/.test(navigator.platform)) $("prompt-hint").firstElementChild.textContent = "⌘";
  $("seed-random").addEventListener("change", () => {
    $("seed").disabled = $("seed-random").checked;
    if (!$("seed").disabled) $("seed").focus();
  });
  $("batch").addEventListener("change", () => {
    $("prompt").placeholder = batchMode() ? "one prompt per line, e.g.\nheavy rain on a tin roof\na door slams shut"
      : "e.g. a huge explosion, or heavy rain";
    $("prompt").rows = batchMode() ? 5 : 3;
    countPrompt();
  });
  $("reset-settings").addEventListener("click", applyDefaults);
  $("clip-button").addEventListener("click", () => $("clip-input").click());
  $("clip-input").addEventListener("change", () => pickClip().catch((e) => showFormError("Could not read the clip: " + e.message)));
  $("continue-clear").addEventListener("click", () => setContinuation(null));
}

// ---- prompt length: characters here, tokens of the model's text encoder counted by the server ----
const tokenCache = new Map();
const promptCount = { seq: 0, timer: null, problem: null };

function lineProblem(l, many) {
  const info = state.info || {}, maxChars = info.max_prompt_chars || 500, maxTokens = info.max_prompt_tokens;
  const where = many ? `Line ${l.line} is` : "The prompt is", tokens = tokenCache.get(l.text);
  if (l.text.length > maxChars) return `${where} ${l.text.length} characters long; the limit is ${maxChars}: shorten it.`;
  if (maxTokens && tokens > maxTokens) return `${where} ${tokens} tokens long; this model reads at most ${maxTokens}: shorten it.`;
  return null;
}

function renderCount() {
  const info = state.info || {}, maxChars = info.max_prompt_chars || 500, maxTokens = info.max_prompt_tokens;
  const lines = batchMode() ? promptLines() : [{ text: $("prompt").value.trim(), line: 1 }];
  const longest = lines.reduce((a, l) => (l.text.length >= a.text.length ? l : a), { text: "", line: 1 });
  const mostTokens = Math.max(0, ...lines.map((l) => tokenCache.get(l.text) || 0));
  const sizes = [maxTokens ? `${longest.text ? mostTokens : 0} / ${maxTokens} tokens` : null,
    `${longest.text.length} / ${maxChars} characters`].filter(Boolean);
  const text = batchMode() ? `${lines.length} / ${info.max_batch_prompts || 16} prompts · longest: ${sizes.join(", ")}`
    : sizes.join(" · ");
  promptCount.problem = batchMode() && lines.length > (info.max_batch_prompts || 16)
    ? `${lines.length} prompts is too many for one request; the limit is ${info.max_batch_prompts}: split them.`
    : lines.map((l) => lineProblem(l, batchMode())).find((p) => p) || null;
  $("prompt-count").textContent = text;
  $("prompt-count").classList.toggle("over", promptCount.problem !== null);
}

function countPrompt() {
  clearTimeout(promptCount.timer);
  const info = state.info, seq = ++promptCount.seq;
  renderCount();
  if (!info || !info.max_prompt_tokens) return;
  const lines = (batchMode() ? promptLines() : [{ text: $("prompt").value.trim() }])
    .filter((l) => l.text && l.text.length <= info.max_prompt_chars && !tokenCache.has(l.text)).slice(0, 32);
  if (!lines.length) return;
  promptCount.timer = setTimeout(async () => {
    try {
      await Promise.all(lines.map(async (l) => {
        const r = await (await api(API + "/prompts/count", { method: "POST", json: { prompt: l.text } })).json();
        tokenCache.set(l.text, r.tokens);
      }));
      if (seq === promptCount.seq) renderCount();
    } catch { /* only a help while typing: the server checks every prompt again when it is submitted */ }
  }, 120);
}

// ---- continuing a sound: an uploaded clip, or a result of the history (its Continue button) ----
let continuation = null;  // {label, seconds, data (base64 of the file) | ref ("<job id>/<index>")}

export function setContinuation(value) {
  continuation = value;
  $("continue-chip").hidden = !value;
  $("continue-text").textContent = value ? `Continuing ${value.label}` + (value.seconds ? ` (${value.seconds.toFixed(1)} s)` : "") : "";
  $("duration-label").textContent = value ? "Seconds to add" : "Duration";
  if (!value) $("clip-input").value = "";
}

// The clip's length as the browser reads it (null when it cannot: the server decodes more formats).
function clipSeconds(file) {
  return new Promise((resolve) => {
    const a = new Audio(), url = URL.createObjectURL(file);
    const done = (v) => { URL.revokeObjectURL(url); resolve(v); };
    a.onloadedmetadata = () => done(Number.isFinite(a.duration) ? a.duration : null);
    a.onerror = () => done(null);
    a.preload = "metadata"; a.src = url;
  });
}

async function pickClip() {
  const file = $("clip-input").files[0];
  if (!file) return;
  $("form-error").hidden = true;
  const info = state.info, room = Math.floor((info.max_body_bytes - 4096) * 3 / 4);  // base64 in a JSON body
  const mb = (n) => (n / 1e6).toFixed(1) + " MB";
  if (file.size > room) {
    setContinuation(null);
    showFormError(`This clip is ${mb(file.size)}; this server takes clips of up to ${mb(room)}: use a shorter one, or a compressed format (OGG, MP3, FLAC).`);
    return;
  }
  const seconds = await clipSeconds(file);
  if (seconds !== null && seconds > info.max_continue_seconds) {
    setContinuation(null);
    showFormError(`This clip is ${seconds.toFixed(1)} s long; at most ${info.max_continue_seconds} s can be continued: trim it, or use its end.`);
    return;
  }
  const data = await new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result).split(",", 2)[1] || "");
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
  setContinuation({ label: file.name, seconds, data });
}

// ---- submitting ----
async function submit(ev) {
  ev.preventDefault();
  $("form-error").hidden = true;
  const lines = batchMode() ? promptLines() : [{ text: $("prompt").value.trim(), line: 1 }];
  if (!lines.length || !lines[0].text) { showFormError("Describe the sound first, e.g. “rain on a tin roof”."); return; }
  if (promptCount.problem) { showFormError(promptCount.problem); return; }
  if (batchMode() && continuation) { showFormError("A batch cannot continue a sound: turn off “One prompt per line”, or press × to continue nothing."); return; }
  const settings = readSettings();
  if (batchMode()) await send(API + "/generations/batch", { prompts: lines.map((l) => l.text), ...settings }, newKey(), lines);
  else await send(API + "/generations", { prompt: lines[0].text, ...settings }, newKey(), null);
}

// One idempotency key per submission, kept by its retries: a retry after a lost answer gets the same job back.
function newKey() { return crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random().toString(16).slice(2); }

async function send(url, body, key, lines) {
  $("submit").disabled = true;
  try {
    const answer = await (await api(url, { method: "POST", json: body, headers: { "Idempotency-Key": key } })).json();
    onQueued(lines ? answer.items : [answer]);
    setContinuation(null);
  } catch (e) {
    if (e.status === 401) return;
    const wrong = e.body && e.body.lines && e.body.lines.length && lines;
    // The server counts the prompts it was sent; the user counts the lines they see (blank ones included).
    const message = wrong ? e.body.lines.map((l) => `Line ${lines[l.line - 1].line}: ${l.error}`).join(" ") : e.message;
    showFormError(message, e.status === 0 ? () => send(url, body, key, lines) : null);
  } finally { $("submit").disabled = false; }
}

export function showFormError(message, retry = null) {
  const el = $("form-error");
  el.replaceChildren(message);
  if (retry) el.append(" ", h("button", { class: "ghost small", type: "button", onclick: () => { el.hidden = true; retry(); } }, "Retry"));
  el.hidden = false;
}

export function setupForm(info, queued) {
  onQueued = queued;
  bindOutputs();
  $("duration").max = info.max_duration;
  $("count").replaceChildren(...Array.from({ length: info.max_count }, (_, i) => h("option", { value: i + 1 }, String(i + 1))));
  $("examples").replaceChildren(...info.example_prompts.map((p) => h("button", { class: "chip", type: "button",
    onclick: () => { $("prompt").value = p; $("prompt").dispatchEvent(new Event("input")); $("prompt").focus(); } }, p)));
  $("negative-prompt").maxLength = info.max_prompt_chars;
  applyDefaults();
  $("prompt").dispatchEvent(new Event("input"));
  $("form").addEventListener("submit", submit);
}
