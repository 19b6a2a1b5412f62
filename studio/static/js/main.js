// The studio page: pick a photo, pick an endpoint and its options, send, compare, download.

import { OptionsForm, CLICKED_OPTION } from "./form.js";
import { Hints } from "./hints.js";
import { Viewer } from "./viewer.js";

const $ = (selector) => document.querySelector(selector);
const viewer = new Viewer($("#viewer"));
const hints = new Hints(viewer);
const form = new OptionsForm();
const state = {
  endpoints: {}, // name -> schema, from /api/endpoints
  maxBytes: Infinity,
  file: null, // the photo as chosen
  result: null, // {blob, url, endpoint, format, quality, sent}: the last answer
};

async function start() {
  const reply = await fetch("/api/endpoints");
  const info = await reply.json();
  state.endpoints = info.endpoints;
  state.maxBytes = info.max_request_bytes;
  for (const name of Object.keys(state.endpoints)) $("#endpoint").append(new Option(name, name));
  chooseEndpoint();
  $("#endpoint").addEventListener("change", chooseEndpoint);
  $("#file").addEventListener("change", () => $("#file").files[0] && choosePhoto($("#file").files[0]));
  wireDrop();
  $("#run").addEventListener("click", () => run().catch(showError));
  $("#download").addEventListener("click", () => download().catch(showError));
  $("#fit").addEventListener("click", () => viewer.fit());
  $("#actual").addEventListener("click", () => viewer.actualSize());
  $("#hints-clear").addEventListener("click", () => hints.clear());
  hints.addEventListener("refused", (e) => showError(new Error(e.detail)));
  form.onChange(updateButtons);
  document.body.dataset.ready = "true";
}

function chooseEndpoint() {
  const schema = state.endpoints[$("#endpoint").value];
  form.build(schema.options);
  const hinted = form.declares(CLICKED_OPTION, schema.options);
  $("#hints").hidden = !hinted;
  hints.setEnabled(hinted);
  hideError();
  updateButtons();
}

async function choosePhoto(file) {
  hideError();
  if (file.size > state.maxBytes) {
    showError(new Error(`${file.name} is ${file.size} bytes; the server takes at most ${state.maxBytes}`));
    return;
  }
  state.file = file;
  state.result = null;
  hints.clear();
  const shown = await viewer.setPhoto(URL.createObjectURL(file));
  $("#placeholder").hidden = shown;
  $("#placeholder").textContent = shown ? "" : "The browser cannot preview this file; Restore sends it anyway.";
  $("#file-info").textContent = shown ? `${file.name}, ${viewer.photo.width}×${viewer.photo.height}` : file.name;
  updateButtons();
}

function wireDrop() {
  const drop = $("#drop");
  for (const target of [drop, $("#viewer")]) {
    target.addEventListener("dragover", (e) => {
      e.preventDefault();
      drop.classList.add("over");
    });
    target.addEventListener("dragleave", () => drop.classList.remove("over"));
    target.addEventListener("drop", (e) => {
      e.preventDefault();
      drop.classList.remove("over");
      const file = e.dataTransfer.files[0];
      if (file) choosePhoto(file).catch(showError);
    });
  }
}

/** What a run sends: the photo, every option set in the form, and the clicked hints. */
function request() {
  const endpoint = $("#endpoint").value;
  const body = new FormData();
  body.append(state.endpoints[endpoint].image_field, state.file);
  form.fill(body);
  if (!$("#hints").hidden && hints.items.length) body.append(CLICKED_OPTION, JSON.stringify(hints.toJSON()));
  return { endpoint, body };
}

async function run() {
  const { endpoint, body } = request();
  hideError();
  setBusy(`Running ${endpoint}…`);
  try {
    const reply = await fetch(`/api/predict/${endpoint}`, { method: "POST", body });
    const type = reply.headers.get("Content-Type") || "";
    if (!reply.ok || !type.startsWith("image/")) throw await replyError(reply, type);
    const blob = await reply.blob();
    if (state.result) URL.revokeObjectURL(state.result.url);
    state.result = { blob, url: URL.createObjectURL(blob), endpoint, format: form.value("format"),
                     quality: form.value("quality"), sent: signature(endpoint, body) };
    await viewer.setResult(state.result.url);
    $("#result-info").textContent = `${endpoint}: ${viewer.size.width}×${viewer.size.height} ${type}, `
      + `${(blob.size / 1024).toFixed(0)} KiB`;
  } finally {
    setBusy(null);
    updateButtons();
  }
}

/** Save the answer; if the format, quality or anything else sent has changed since, ask again first. */
async function download() {
  const { endpoint, body } = request();
  if (!state.result || state.result.sent !== signature(endpoint, body)) await run();
  const { blob, format } = state.result;
  const link = document.createElement("a");
  link.href = state.result.url;
  link.download = `${state.file.name.replace(/\.[^.]*$/, "")}_${state.result.endpoint}.${format ?? extension(blob)}`;
  document.body.append(link);
  link.click();
  link.remove();
}

/** A run's inputs as text: a result is stale once this changes. */
function signature(endpoint, body) {
  const parts = [...body.entries()].map(([k, v]) => `${k}=${v instanceof File ? `${v.name}:${v.size}:${v.lastModified}` : v}`);
  return `${endpoint}?${parts.join("&")}`;
}

function extension(blob) {
  return blob.type.split("/")[1] || "bin";
}

async function replyError(reply, type) {
  if (type.startsWith("application/json")) {
    const { code, type: kind, message } = await reply.json();
    return new Error(`${code ?? reply.status} ${kind ?? ""}: ${message ?? "(no message)"}`);
  }
  return new Error(`${reply.status} ${reply.statusText}: ${(await reply.text()).slice(0, 300)}`);
}

function updateButtons() {
  const busy = !$("#busy").hidden;
  $("#run").disabled = busy || !state.file;
  $("#download").disabled = busy || !state.result;
  const hinted = !$("#hints").hidden;
  $("#run").textContent = hinted && state.result ? "Recolour" : "Restore";
  const format = form.value("format");
  $("#download").textContent = format ? `Download ${format}` : "Download";
}

let busyTimer = null;
function setBusy(text) {
  clearInterval(busyTimer);
  $("#busy").hidden = text === null;
  document.body.setAttribute("aria-busy", String(text !== null));
  if (text !== null) {
    const started = performance.now();
    const tick = () => {
      $("#busy-text").textContent = `${text} ${((performance.now() - started) / 1000).toFixed(0)} s`;
    };
    tick();
    busyTimer = setInterval(tick, 500);
  }
  updateButtons();
}

function showError(err) {
  $("#error").textContent = err.message;
  $("#error").hidden = false;
}

function hideError() {
  $("#error").hidden = true;
  $("#error").textContent = "";
}

start().catch(showError);
