// odevideo serve: the page. Everything it shows comes from this server; nothing is loaded from elsewhere.
"use strict";
const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";
let models = [];
let job = null;

function svgEl(name, attrs, parent) {
  const el = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (parent) parent.appendChild(el);
  return el;
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

async function getJSON(url) {
  const response = await fetch(url);
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

function chooseModel() {
  const m = models.find((x) => x.name === $("model").value);
  if (!m) return;
  $("model-about").textContent = `${m.title}: ${m.kind}, ${m.channels === 3 ? "colour" : "grey"} ` +
    `${m.size}x${m.size}, trained ${m.n_context} -> ${m.n_future} frames. ${m.about}`;
  $("n_context").value = m.n_context;
  $("horizon").value = m.n_future;
  $("samples-box").hidden = !m.stochastic;
  if (!m.stochastic) $("samples").value = 1;
  const preferred = m.channels === 3 ? "balls_colour" : m.size === 32 ? "balls" : "digits2";
  if ([...$("clip").options].some((o) => o.value === preferred)) $("clip").value = preferred;
}

async function init() {
  try {
    models = await getJSON("/api/models");
    for (const m of models) $("model").add(new Option(`${m.name}: ${m.title}`, m.name));
    const clips = await getJSON("/api/clips");
    for (const [name, about] of Object.entries(clips)) $("clip").add(new Option(about, name));
    const limits = await getJSON("/api/limits");
    $("limits").textContent = `Uploads: GIF, MP4, WebM, NPY or NPZ, up to ` +
      `${Math.round(limits.max_upload_bytes / 2 ** 20)} MiB and ${limits.max_input_frames} frames.`;
    chooseModel();
  } catch (e) {
    showError(`The server did not answer: ${e.message}`);
  }
}

async function answer(pending) {
  const response = await pending;
  let body;
  try { body = await response.json(); } catch { body = { error: `the server answered ${response.status}` }; }
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

// A generation is a job on the server: poll it until it is done (or failed), showing its place in the queue.
async function waitFor(submitted) {
  let body = submitted;
  while (body.status === "queued" || body.status === "running") {
    $("status").textContent = body.status === "queued" && body.ahead ? `waiting: ${body.ahead} ahead...`
      : "generating...";
    await new Promise((resolve) => setTimeout(resolve, 150));
    body = await answer(fetch(`/api/jobs/${submitted.id}`));
  }
  return body;
}

async function generate(event) {
  event.preventDefault();
  showError("");
  const form = new FormData();
  form.append("model", $("model").value);
  const upload = document.querySelector("input[name=source]:checked").value === "file";
  if (upload) {
    if (!$("file").files.length) return showError("Choose a file to upload, or pick an example.");
    form.append("file", $("file").files[0]);
  } else {
    form.append("clip", $("clip").value);
  }
  for (const key of ["n_context", "fps_factor", "horizon", "times", "samples", "seed"]) {
    if ($(key).value !== "") form.append(key, $(key).value);
  }
  $("go").disabled = true;
  $("status").textContent = "generating...";
  const started = performance.now();
  try {
    const body = await waitFor(await answer(fetch("/api/predict", { method: "POST", body: form })));
    show(body);
    $("status").textContent = `${body.frames} frames in ${((performance.now() - started) / 1000).toFixed(1)} s`;
  } catch (e) {
    showError(e.message);
    $("status").textContent = "";
  } finally {
    $("go").disabled = false;
  }
}

function show(result) {
  job = result;
  $("result").hidden = false;
  const generated = $("generated");
  generated.dataset.frames = result.frames;
  generated.dataset.fps = result.fps;
  generated.src = result.video;
  $("generated-info").textContent = `${result.frames} frames at ${result.fps} fps, ` +
    `t = ${result.t_query[0]} to ${result.t_query[result.t_query.length - 1]}`;
  const truth = $("truth");
  truth.parentElement.hidden = !result.truth_video;
  if (result.truth_video) {
    truth.src = result.truth_video;
    $("truth-info").textContent = `${result.truth_frames} frames at 4 fps`;
  }
  for (const v of [generated, truth]) v.play().catch(() => {});
  const row = $("samples-row");
  row.replaceChildren();
  result.samples.forEach((url, i) => {
    const fig = document.createElement("figure");
    const v = document.createElement("video");
    Object.assign(v, { src: url, muted: true, loop: true, autoplay: true, playsInline: true });
    const cap = document.createElement("figcaption");
    cap.textContent = `sample ${i + 1}`;
    fig.append(v, cap);
    row.appendChild(fig);
  });
  $("notes").textContent = result.notes.join("; ");
  drawErrors(result.errors);
  drawLatent(result);
  const slider = $("t-slider");
  slider.min = result.t_context[0];
  slider.max = result.t_query[result.t_query.length - 1];
  slider.value = result.t_query[0];
  showFrame();
}

function scale(values, lo, hi) {
  let min = Math.min(...values), max = Math.max(...values);
  if (max - min < 1e-9) { min -= 1; max += 1; }
  return (v) => lo + ((v - min) / (max - min)) * (hi - lo);
}

function drawErrors(errors) {
  const svg = $("error-curve");
  svg.replaceChildren();
  if (!errors.length) {
    svgEl("text", { x: 20, y: 110 }, svg).textContent = "no truth after the context to compare with";
    return;
  }
  const ts = errors.map((e) => e.t);
  const ys = errors.flatMap((e) => [e.mse, e.copy_last_mse]).concat([0]);
  const x = scale(ts, 40, 345), y = scale(ys, 195, 15);
  svgEl("line", { x1: 40, y1: 195, x2: 345, y2: 195, stroke: "#999" }, svg);
  svgEl("line", { x1: 40, y1: 15, x2: 40, y2: 195, stroke: "#999" }, svg);
  svgEl("text", { x: 2, y: 20, "font-size": 10 }, svg).textContent = Math.max(...ys).toFixed(0);
  svgEl("text", { x: 20, y: 198, "font-size": 10 }, svg).textContent = "0";
  svgEl("text", { x: 36, y: 210, "font-size": 10 }, svg).textContent = ts[0];
  svgEl("text", { x: 335, y: 210, "font-size": 10 }, svg).textContent = ts[ts.length - 1];
  svgEl("text", { x: 170, y: 214, "font-size": 10 }, svg).textContent = "time t";
  const lines = [["mse", "#2f6fdf", "model"], ["copy_last_mse", "#c0504d", "copy-last"]];
  lines.forEach(([key, colour, label], i) => {
    const points = errors.map((e) => `${x(e.t)},${y(e[key])}`).join(" ");
    svgEl("polyline", { points, fill: "none", stroke: colour, "stroke-width": 2 }, svg);
    svgEl("text", { x: 50 + 90 * i, y: 12, fill: colour, "font-size": 11 }, svg).textContent = label;
  });
}

function drawLatent(result) {
  const svg = $("latent");
  svg.replaceChildren();
  const latent = result.latent;
  const colours = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#46f0f0"];
  if (latent.kind === "none") {
    $("latent-caption").textContent = "this model keeps no latent state per time (it predicts a block of " +
      "frames at once), so there is no latent path to show";
    return;  // no marker either
  }
  if (latent.kind === "tracks") {
    $("latent-caption").textContent = "each object's centre through the context (solid) and the generated " +
      "times (dashed), over the last context frame";
    svgEl("image", { href: result.context_image, x: 0, y: 0, width: 220, height: 220,
                     preserveAspectRatio: "none", style: "image-rendering: pixelated" }, svg);
    const k = 220 / latent.size;
    latent.tracks.forEach((track, i) => {
      drawPath(svg, track.map(([r, c]) => [(c + 0.5) * k, (r + 0.5) * k]), latent.observed, colours[i % 6]);
    });
  } else {
    const [a, b] = latent.explained.map((v) => `${Math.round(100 * v)}%`);
    $("latent-caption").textContent = `the latent state on its first two principal components (${a}, ${b} of ` +
      "its variance along this path): context solid, generated times dashed, z0 the dot";
    const x = scale(latent.points.map((p) => p[0]), 15, 205), y = scale(latent.points.map((p) => p[1]), 205, 15);
    drawPath(svg, latent.points.map((p) => [x(p[0]), y(p[1])]), latent.observed, colours[2]);
    svgEl("circle", { cx: x(latent.points[0][0]), cy: y(latent.points[0][1]), r: 4, fill: colours[0] }, svg);
  }
  const ink = latent.kind === "tracks" ? "#fff" : "#000";  // seen over a dark frame or a white plot
  svgEl("circle", { id: "t-marker", r: 5, fill: "none", stroke: ink, "stroke-width": 2 }, svg);
}

function drawPath(svg, xy, observed, colour) {
  // the context part solid, the rest dashed, sharing the last context point
  const line = (part) => part.map(([a, b]) => `${a},${b}`).join(" ");
  svgEl("polyline", { points: line(xy.slice(0, observed)), fill: "none", stroke: colour, "stroke-width": 2 }, svg);
  svgEl("polyline", { points: line(xy.slice(Math.max(observed - 1, 0))), fill: "none", stroke: colour,
                      "stroke-width": 2, "stroke-dasharray": "4 3" }, svg);
}

function showFrame() {
  if (!job) return;
  const t = Number($("t-slider").value);
  $("t-value").textContent = t.toFixed(2);
  $("t-frame").src = `/api/jobs/${job.id}/frame?t=${t}&scale=3`;
  const latent = job.latent, times = latent.times;
  let i = 0;
  while (i + 1 < times.length && times[i + 1] <= t) i++;
  const marker = document.getElementById("t-marker");
  if (!marker || t < times[0]) { if (marker) marker.setAttribute("r", 0); return; }
  marker.setAttribute("r", 5);
  if (latent.kind === "tracks") {
    const k = 220 / latent.size, [r, c] = latent.tracks[0][i];
    marker.setAttribute("cx", (c + 0.5) * k); marker.setAttribute("cy", (r + 0.5) * k);
  } else {
    const x = scale(latent.points.map((p) => p[0]), 15, 205), y = scale(latent.points.map((p) => p[1]), 205, 15);
    marker.setAttribute("cx", x(latent.points[i][0])); marker.setAttribute("cy", y(latent.points[i][1]));
  }
}

$("model").addEventListener("change", chooseModel);
$("file").addEventListener("change", () => { document.querySelector("input[value=file]").checked = true; });
$("clip").addEventListener("change", () => { document.querySelector("input[value=clip]").checked = true; });
$("t-slider").addEventListener("input", showFrame);
$("form").addEventListener("submit", generate);
init();
