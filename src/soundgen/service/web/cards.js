// A job as a card (the main page's history and the page of one sound share it): state, progress with the queue
// position and the time left, the seekable player, downloads one by one or all in a zip, and a link to share.
import { about, download, h, state, toast } from "./common.js";
import { player } from "./player.js";

export const STATE_LABEL = { queued: "Queued", running: "Generating", succeeded: "Done", failed: "Failed", cancelled: "Cancelled" };
export const isActive = (job) => job.state === "queued" || job.state === "running";

function when(t) {
  const d = new Date(t * 1000), today = new Date().toDateString() === d.toDateString();
  return today ? d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) : d.toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
}

// The server's estimate counts down here between its updates (it is in seconds from when the answer came).
export function stampEta(job, prev) {
  if (job.eta_seconds !== null && job.eta_seconds !== undefined) job.etaAt = Date.now() / 1000 + job.eta_seconds;
  else if (prev && prev.state === job.state && prev.etaAt) job.etaAt = prev.etaAt;  // a push without one
  if ((job.queue_position === null || job.queue_position === undefined) && prev && prev.state === job.state)
    job.queue_position = prev.queue_position;
  return job;
}

function left(job) { return job.etaAt ? Math.max(0, job.etaAt - Date.now() / 1000) : null; }

export function progressText(job) {
  const eta = left(job);
  if (job.state === "queued") {
    const place = job.queue_position ? (job.queue_position === 1 ? "next in the queue" : `#${job.queue_position} in the queue`) : "waiting in the queue";
    return place + (eta !== null ? ` · done in ${about(eta)}` : "");
  }
  const parts = [`${Math.floor(job.progress)}%`];
  if (job.total_steps) parts.push(`${job.step}/${job.total_steps}`);
  if (eta !== null) parts.push(eta < 1 ? "finishing" : `${about(eta)} left`);
  return parts.join(" · ");
}

export function updateProgress(card, job) {
  const bar = card.querySelector(".bar"), pct = card.querySelector(".pct");
  if (!bar) return;
  const text = progressText(job);
  bar.firstElementChild.style.width = job.progress + "%";
  bar.setAttribute("aria-valuenow", String(Math.round(job.progress)));
  bar.setAttribute("aria-valuetext", text);
  pct.textContent = text;
}

// What a continuation starts with: "your clip", or a link to the page of the sound it extends.
function continues(job) {
  if (!job.continues) return null;
  const head = `${(job.prompt_seconds || 0).toFixed(1)} s`;
  if (job.continues === "upload") return h("div", { class: "continues" }, `continues your clip (${head})`);
  const [id, index] = job.continues.split("/");
  return h("div", { class: "continues" }, "extends ", h("a", { href: `/sound/${id}/${Number(index) + 1}` }, "an earlier sound"), ` (${head})`);
}

// ``actions(job)``: the row of buttons under a card; ``resultActions(job, result)``: buttons beside each sound.
export function renderJob(job, actions = null, resultActions = null) {
  const length = job.continues ? `${(job.prompt_seconds || 0).toFixed(1)} + ${job.duration.toFixed(1)} s` : `${job.duration.toFixed(1)} s`;
  const meta = [length, job.count > 1 ? `${job.count} sounds` : null, `seed ${job.seed}`, when(job.created_at),
    job.elapsed ? `took ${job.elapsed.toFixed(1)} s` : null].filter(Boolean).join(" · ");
  const card = h("article", { class: `job ${job.state}`, "data-job": job.id, "data-state": job.state, "data-seed": job.seed },
    h("div", { class: "job-head" },
      h("div", {}, h("div", { class: "job-title" }, job.prompt), h("div", { class: "job-meta" }, meta)),
      h("span", { class: `state ${job.state}` }, STATE_LABEL[job.state] || job.state)));
  if (job.negative_prompt) card.querySelector(".job-meta").append(h("div", { class: "negative" }, `negative prompt: ${job.negative_prompt}`));
  const source = continues(job);
  if (source) card.querySelector(".job-meta").append(source);
  if (isActive(job)) {
    card.append(h("div", { class: "progress" },
      h("div", { class: "bar", role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": "0",
        "aria-label": `progress of “${job.prompt}”` }, h("div")),
      h("span", { class: "pct" })));
    updateProgress(card, job);
  }
  if (job.error && job.state === "failed") card.append(h("div", { class: "job-error" }, job.error));
  if (job.state === "succeeded") {
    card.append(h("div", { class: "results" }, job.results.map((r) => renderResult(job, r, resultActions))));
    if (job.results.length > 1) card.append(zipRow(job));
  }
  if (actions) card.append(actions(job));
  return card;
}

export const soundLink = (job, index = null) => `/sound/${job.id}` + (index === null ? "" : `/${index + 1}`);

export function renderResult(job, r, resultActions = null) {
  const label = `“${job.prompt}”` + (job.count > 1 ? ` #${r.index + 1}` : "");
  const buttons = Object.entries(r.downloads).map(([fmt, url]) =>
    h("button", { class: "ghost small", type: "button", title: `download as ${fmt.toUpperCase()}`,
      onclick: () => download(url).catch((e) => toast("Could not download: " + e.message)) }, fmt === "opus" ? "Opus" : fmt.toUpperCase()));
  return h("div", { class: "result", "data-index": r.index }, player(job, r, label),
    h("div", { class: "result-row" }, h("span", { class: "label" }, "Download"), buttons,
      shareLink(soundLink(job, r.index), `link to ${label}`)),
    resultActions ? resultActions(job, r, label) : null);
}

export function zipRow(job) {
  const formats = Object.keys(job.results[0].downloads);
  return h("div", { class: "result-row zip-row" }, h("span", { class: "label" }, `All ${job.results.length} as ZIP`),
    formats.map((fmt) => h("button", { class: "ghost small", type: "button", title: `download every sound as ${fmt.toUpperCase()} in one zip`,
      "aria-label": `ZIP of ${fmt.toUpperCase()}`,
      onclick: () => download(`${job.archive_url}?fmt=${fmt}`).catch((e) => toast("Could not download: " + e.message)) },
    fmt === "opus" ? "Opus" : fmt.toUpperCase())));
}

// A link to the page of one sound; the button beside it copies the address (the same key opens it).
function shareLink(path, label) {
  const url = new URL(path, location.href).href;
  const copy = async () => {
    const who = state.info && state.info.auth_required ? "anyone using the same API key" : "anyone who can reach this server";
    try { await navigator.clipboard.writeText(url); toast(`Link copied: it opens for ${who}.`); }
    catch { toast("Copy this link: " + url, null, 12000); }
  };
  return h("span", { class: "share" }, h("a", { href: path, class: "small-link", "aria-label": label }, "Link"),
    h("button", { class: "ghost small", type: "button", "aria-label": `copy ${label}`, onclick: copy }, "Copy link"));
}
