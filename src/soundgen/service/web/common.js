// What every page of soundgen shares: elements, HTTP with the API key, media behind a key, downloads, the key
// dialog, notices, the theme. Plain JavaScript modules, no build step, no network beyond this server.

import { setupSignIn, storedToken } from "./oidc.js";

export const API = "/api/v1";
// The bearer token: this tab's sign-in (oidc.js) when there is one, else the saved API key.
export const state = { info: null, key: storedToken() || localStorage.getItem("soundgen.key") || "", blobs: new Map() };
export const $ = (id) => document.getElementById(id);

export function h(tag, attrs = {}, ...children) {
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
export class ApiError extends Error {
  constructor(status, message, body = null) { super(message); this.status = status; this.body = body; }
}
// What the browser's bare "Failed to fetch" means here (status 0: no answer at all).
export const UNREACHABLE = "The server did not answer: it may be stopped or restarting, or this device is offline.";

export async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  if (state.key) headers["Authorization"] = "Bearer " + state.key;
  if (options.json !== undefined) { headers["Content-Type"] = "application/json"; options.body = JSON.stringify(options.json); }
  let res;
  try { res = await fetch(path, Object.assign({}, options, { headers })); }
  catch { throw new ApiError(0, UNREACHABLE); }
  if (res.status === 401) { askKey("Your key was not accepted: " + (await errorBody(res)).message); throw new ApiError(401, "API key needed"); }
  if (!res.ok) { const e = await errorBody(res); throw new ApiError(res.status, e.message, e.body); }
  return res.status === 204 ? null : res;
}

async function errorBody(res) {
  try { const body = await res.json(); return { message: body.error || JSON.stringify(body), body }; }
  catch { return { message: res.statusText, body: null }; }
}

// Media elements cannot send headers: with a key, fetch the file and hand the element a blob URL.
export async function mediaUrl(url) {
  if (!state.info || !state.info.auth_required) return url;
  if (state.blobs.has(url)) return state.blobs.get(url);
  const res = await api(url);
  const blobUrl = URL.createObjectURL(await res.blob());
  state.blobs.set(url, blobUrl);
  return blobUrl;
}

// Saves what ``url`` answers under the name its Content-Disposition gives (any script: filename*=UTF-8).
export async function download(url) {
  const res = await api(url + (url.includes("?") ? "&" : "?") + "download=1");
  const disposition = res.headers.get("Content-Disposition") || "";
  const utf8 = /filename\*=UTF-8''([^;]+)/i.exec(disposition), plain = /filename="?([^";]+)"?/.exec(disposition);
  const name = utf8 ? decodeURIComponent(utf8[1]) : plain ? plain[1] : "sound";
  const a = h("a", { href: URL.createObjectURL(await res.blob()), download: name });
  document.body.append(a); a.click(); a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}

// ---- API key dialog (made here so that every page has the same one) ----
let onKeySaved = () => {};

export function askKey(message) {
  const dialog = $("key-dialog");
  $("key-error").hidden = !message; $("key-error").textContent = message || "";
  $("key-input").value = "";
  if (!dialog.open) dialog.showModal();
}

export function setupKeyDialog(onSaved) {
  onKeySaved = onSaved;
  const form = h("form", { method: "dialog", id: "key-form" },
    h("h2", {}, "API key needed"),
    h("p", {}, "This server asks for an API key. Its owner creates one with ", h("code", {}, "soundgen keys create --name NAME"), "."),
    h("p", { id: "key-error", class: "error", hidden: true }),
    h("input", { id: "key-input", type: "password", placeholder: "sg_…", autocomplete: "off", "aria-label": "API key", required: true }),
    h("div", { class: "actions" }, h("button", { value: "cancel", class: "ghost", formnovalidate: true }, "Cancel"),
      h("button", { id: "key-save", value: "ok", class: "primary" }, "Save key")));
  document.body.append(h("dialog", { id: "key-dialog", "aria-labelledby": "key-title" }, form));
  form.querySelector("h2").id = "key-title";
  form.addEventListener("submit", (ev) => {
    if (ev.submitter && ev.submitter.value === "cancel") return;
    state.key = $("key-input").value.trim();
    localStorage.setItem("soundgen.key", state.key);
    sessionStorage.removeItem("soundgen.token");  // a key typed in replaces this tab's sign-in
    state.blobs.clear();
    onKeySaved();
  });
  $("key-button").addEventListener("click", () => askKey(""));
}

// ---- notices at the bottom of the screen (errors of card actions, undo of a delete, copied links) ----
export function toast(message, action = null, ms = 6000) {
  const el = h("div", { class: "toast" }, h("span", {}, message),
    action ? h("button", { class: "ghost small", type: "button", onclick: () => { el.remove(); action.run(); } }, action.label) : null,
    h("button", { class: "ghost small", type: "button", "aria-label": "dismiss", onclick: () => el.remove() }, "×"));
  $("toasts").append(el);
  setTimeout(() => el.remove(), ms);
  return el;
}

// ---- theme ----
export function setupTheme() {
  const saved = localStorage.getItem("soundgen.theme");
  if (saved) document.documentElement.dataset.theme = saved;
  $("theme-button").addEventListener("click", () => {
    const dark = document.documentElement.dataset.theme ? document.documentElement.dataset.theme === "dark"
      : matchMedia("(prefers-color-scheme: dark)").matches;
    document.documentElement.dataset.theme = dark ? "light" : "dark";
    localStorage.setItem("soundgen.theme", document.documentElement.dataset.theme);
  });
}

// The server's limits and settings; the model badge and the untrained-model warning every page shows.
export async function loadInfo() {
  const info = await (await api(API + "/info")).json();
  state.info = info;
  $("model-badge").textContent = "model: " + info.model;
  if (info.warning) { $("warning").textContent = "⚠ " + info.warning; $("warning").hidden = false; }
  $("key-button").hidden = !info.auth_required;
  await setupSignIn(info, state, (message) => askKey(message));
  return info;
}

// "about 12 s", "about 3 min": an estimate, said as one.
export function about(seconds) {
  if (seconds < 1) return "under a second";
  if (seconds < 90) return `about ${Math.round(seconds)} s`;
  return `about ${Math.round(seconds / 60)} min`;
}
