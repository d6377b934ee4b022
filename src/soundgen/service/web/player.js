// A player you can see: the sound's picture (waveform over spectrogram, time left to right) is a slider. Click or
// drag on it to seek; a playhead moves while the sound plays; with the picture focused, the left and right arrows
// seek (Shift: 5 s), Home/End go to the ends, and Space or Enter plays and pauses. The browser's own controls
// stay below it.
import { h, mediaUrl } from "./common.js";

const STEP_S = 1, BIG_STEP_S = 5;

export function player(job, result, label) {
  const img = h("img", { alt: `waveform and spectrogram of ${label}`, loading: "lazy", draggable: "false" });
  const head = h("div", { class: "playhead", "aria-hidden": "true" });
  const scope = h("div", { class: "scope", role: "slider", tabindex: "0", "aria-label": `position in ${label}`,
    "aria-valuemin": "0", "aria-valuemax": (job.duration + (job.prompt_seconds || 0)).toFixed(1), "aria-valuenow": "0",
    "aria-valuetext": "0.0 s", "aria-keyshortcuts": "ArrowLeft ArrowRight Home End Space",
    title: "click to seek · ← → seek · Space plays or pauses" }, img, head);
  const audio = h("audio", { controls: true, preload: "metadata", "aria-label": `player of ${label}` });
  mediaUrl(result.image_url).then((u) => { img.src = u; }).catch(() => {});
  mediaUrl(result.audio_url).then((u) => { audio.src = u; }).catch(() => {});

  const planned = job.duration + (job.prompt_seconds || 0);  // until the file says: a continuation is longer
  const length = () => (Number.isFinite(audio.duration) && audio.duration > 0 ? audio.duration : planned);
  let frame = 0;
  const draw = () => {
    const t = audio.currentTime || 0, d = length(), f = Math.min(1, t / d);
    head.style.left = (100 * f) + "%";
    head.classList.toggle("on", t > 0 || !audio.paused);
    scope.setAttribute("aria-valuemax", d.toFixed(1));
    scope.setAttribute("aria-valuenow", t.toFixed(1));
    scope.setAttribute("aria-valuetext", `${t.toFixed(1)} s of ${d.toFixed(1)} s` + (audio.paused ? "" : ", playing"));
  };
  const tick = () => { draw(); frame = audio.paused ? 0 : requestAnimationFrame(tick); };
  audio.addEventListener("play", () => { if (!frame) frame = requestAnimationFrame(tick); });
  for (const ev of ["pause", "seeked", "timeupdate", "loadedmetadata", "ended"]) audio.addEventListener(ev, draw);

  const seek = (t) => { audio.currentTime = Math.max(0, Math.min(length(), t)); draw(); };
  const toggle = () => { if (audio.paused) audio.play().catch(() => {}); else audio.pause(); };
  const seekTo = (ev) => {
    const box = scope.getBoundingClientRect();
    seek(length() * Math.max(0, Math.min(1, (ev.clientX - box.left) / box.width)));
  };
  scope.addEventListener("pointerdown", (ev) => {
    if (ev.button !== 0) return;
    scope.focus(); scope.setPointerCapture(ev.pointerId); seekTo(ev);
    const move = (e) => seekTo(e);
    const up = () => { scope.removeEventListener("pointermove", move); scope.removeEventListener("pointerup", up); };
    scope.addEventListener("pointermove", move); scope.addEventListener("pointerup", up);
  });
  scope.addEventListener("keydown", (ev) => {
    const step = ev.shiftKey ? BIG_STEP_S : STEP_S;
    const keys = { ArrowLeft: () => seek(audio.currentTime - step), ArrowRight: () => seek(audio.currentTime + step),
      ArrowDown: () => seek(audio.currentTime - step), ArrowUp: () => seek(audio.currentTime + step),
      Home: () => seek(0), End: () => seek(length()), " ": toggle, Enter: toggle };
    if (keys[ev.key]) { ev.preventDefault(); keys[ev.key](); }
  });
  return h("div", { class: "player" }, scope, audio);
}
