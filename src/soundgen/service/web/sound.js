// The page of one sound, /sound/<job>[/<n>]: what a shared link opens. It asks the API with the visitor's own key,
// so it shows exactly what the job API shows them: the sound when the job is theirs, and otherwise the same
// "nothing here" whether the job exists or not (the API answers 404 for both).
import { API, $, ApiError, api, askKey, h, loadInfo, setupKeyDialog, setupTheme, state } from "./common.js";
import { isActive, renderJob, stampEta, updateProgress } from "./cards.js";

const [, , jobId, nth] = location.pathname.split("/");
const index = nth ? Number(nth) - 1 : null;
let job = null;

function notFound(message) {
  document.title = "No sound here · soundgen";
  $("sound-title").textContent = "No sound here";
  $("sound").replaceChildren(h("div", { class: "card notice", "data-state": "missing" },
    h("h2", {}, "No sound at this link"), h("p", {}, message),
    state.info && state.info.auth_required
      ? h("p", {}, h("button", { class: "ghost small", type: "button", onclick: () => askKey("") }, "Use another API key")) : null,
    h("p", {}, h("a", { href: "/" }, "Make a sound of your own"))));
}

const MISSING = "It may have been deleted, the link may be mistyped, or it belongs to an API key other than yours.";

function show(fresh) {
  job = stampEta(fresh, job);
  const shown = index === null ? job : { ...job, results: job.results.filter((r) => r.index === index) };
  if (job.state === "succeeded" && index !== null && !shown.results.length) {
    notFound(`This generation has ${job.results.length} sound(s); there is no #${index + 1}.`); return;
  }
  document.title = `${job.prompt} · soundgen`;
  $("sound-title").textContent = job.prompt;
  const card = $("sound").querySelector("article.job");
  if (card && card.dataset.state === job.state && isActive(job)) { updateProgress(card, job); return; }
  $("sound").replaceChildren(renderJob(shown));
  if (index !== null && job.count > 1)
    $("sound").append(h("p", { class: "help" }, `Sound ${index + 1} of ${job.count} · `, h("a", { href: `/sound/${job.id}` }, `all ${job.count}`)));
}

async function load() {
  if (!/^[0-9a-f]{32}$/.test(jobId || "") || (nth !== undefined && !/^[1-9][0-9]*$/.test(nth))) { notFound(MISSING); return; }
  try { show(await (await api(`${API}/generations/${jobId}`)).json()); }
  catch (e) {
    if (e.status === 404) notFound(MISSING);
    else if (e.status !== 401) $("sound").replaceChildren(h("p", { class: "error" }, "Could not load this sound. " + e.message, " ",
      h("button", { class: "ghost small", type: "button", onclick: load }, "Retry")));
    return;
  }
  if (isActive(job)) follow();
}

// A job still in the queue or generating: follow it until it ends (its events, and its place in the queue).
function follow() {
  const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}${API}/generations/${jobId}/events`;
  const sock = state.key && state.info.auth_required ? new WebSocket(url, ["bearer", state.key]) : new WebSocket(url);
  sock.onmessage = (ev) => { const msg = JSON.parse(ev.data); if (msg.type === "job") show(msg); };
  let ticks = 0;
  const timer = setInterval(async () => {
    if (!job || !isActive(job)) { clearInterval(timer); return; }
    const card = $("sound").querySelector("article.job");
    if (card) updateProgress(card, job);
    if (job.state === "queued" && ++ticks % 3 === 0) { try { show(await (await api(`${API}/generations/${jobId}`)).json()); } catch (e) { if (!(e instanceof ApiError)) throw e; } }
  }, 1000);
}

async function start() {
  setupTheme();
  setupKeyDialog(load);
  const info = await loadInfo();
  if (info.auth_required && !state.key) { notFound("This server needs an API key to show its sounds."); askKey(""); return; }
  await load();
}

start().catch((e) => $("sound").replaceChildren(h("p", { class: "error" }, "The page could not start. " + e.message)));
