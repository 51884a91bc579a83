// The page: a chosen file or the microphone -> acula.js -> a live plot of cough probability, events and scores.
// State for tests and scripts: document.body.dataset.state (loading, ready, running, done, live, error) and
// window.aculaResult (the last file's windows, events, scores and per-hop latencies).

import { decodeFile, loadModel, scoreWindows, StreamingResampler } from "./acula.js";

const $ = (id) => document.getElementById(id);
const LIVE_SPAN_S = 30;

function setState(state, text, isError = false) {
  document.body.dataset.state = state;
  $("status").textContent = text;
  if (isError) $("status").dataset.error = ""; else delete $("status").dataset.error;
}

function percentile(values, q) {
  if (!values.length) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const pos = (s.length - 1) * q, lo = Math.floor(pos), hi = Math.ceil(pos);
  return s[lo] + (s[hi] - s[lo]) * (pos - lo);
}

/** Cough probability per window (at the window's centre), thresholds, events; the last LIVE_SPAN_S when live. */
function drawPlot(model, windows, events, { endS, live }) {
  const canvas = $("plot"), g = canvas.getContext("2d");
  const W = canvas.width, H = canvas.height, left = 70, right = 20, top = 20, bottom = 50;
  const t1 = Math.max(endS, live ? LIVE_SPAN_S : 4), t0 = live ? Math.max(0, t1 - LIVE_SPAN_S) : 0;
  const x = (t) => left + ((t - t0) / (t1 - t0)) * (W - left - right);
  const y = (p) => top + (1 - p) * (H - top - bottom);
  g.clearRect(0, 0, W, H);
  g.font = "22px system-ui, sans-serif";
  g.fillStyle = "rgba(220, 60, 60, 0.18)";
  for (const e of events) g.fillRect(x(e.start_s), y(1), Math.max(2, x(e.end_s) - x(e.start_s)), y(0) - y(1));
  g.strokeStyle = "#999"; g.lineWidth = 1; g.fillStyle = "#444";
  g.strokeRect(left, top, W - left - right, H - top - bottom);
  for (const p of [0, 0.5, 1]) g.fillText(p.toFixed(1), 20, y(p) + 8);
  const step = t1 - t0 > 60 ? 10 : t1 - t0 > 20 ? 5 : 1;
  for (let t = Math.ceil(t0 / step) * step; t <= t1; t += step) g.fillText(`${t}s`, Math.min(x(t) - 12, W - right - 40), H - 15);
  const { on, off } = model.desc.screening;
  g.setLineDash([12, 8]); g.strokeStyle = "#c22"; g.lineWidth = 2;
  g.beginPath(); g.moveTo(left, y(on)); g.lineTo(W - right, y(on)); g.stroke();
  g.setLineDash([4, 6]); g.strokeStyle = "#d80";
  g.beginPath(); g.moveTo(left, y(off)); g.lineTo(W - right, y(off)); g.stroke();
  g.setLineDash([]);
  g.fillStyle = "#c22"; g.fillText(`on ${on.toFixed(2)}`, W - right - 110, y(on) - 6);
  g.fillStyle = "#d80"; g.fillText(`off ${off.toFixed(2)}`, W - right - 110, y(off) + 24);
  g.strokeStyle = "#1d5fbf"; g.lineWidth = 3; g.beginPath();
  let pen = false;
  for (const w of windows) {
    const t = (w.start_s + w.end_s) / 2;
    if (t < t0) continue;
    if (w.cough_probability === null) { // gated out by signal quality: a grey tick, and a gap in the line
      g.fillStyle = "#aaa"; g.fillRect(x(t) - 2, y(0) - 12, 4, 12); pen = false; continue;
    }
    if (pen) g.lineTo(x(t), y(w.cough_probability)); else g.moveTo(x(t), y(w.cough_probability));
    pen = true;
  }
  g.stroke();
  g.fillStyle = "#1d5fbf";
  for (const w of windows) {
    const t = (w.start_s + w.end_s) / 2;
    if (t >= t0 && w.cough_probability !== null) {
      g.beginPath(); g.arc(x(t), y(w.cough_probability), 5, 0, 2 * Math.PI); g.fill();
    }
  }
}

function renderScores(scores) {
  const rows = Object.entries(scores).map(([set, probs]) => probs === null
    ? `<tr><th>${set}</th><td colspan="2">no window passed the quality gate</td></tr>`
    : Object.entries(probs).map(([label, p], i) => `<tr>${i ? "<td></td>" : `<th>${set}</th>`}<td>${label}</td>` +
      `<td><span class="bar" style="width:${Math.round(p * 80)}px"></span> ${p.toFixed(3)}</td></tr>`).join(""));
  $("scores").innerHTML = `<table>${rows.join("")}</table>`;
}

function renderEvents(events) {
  $("events").innerHTML = events.length
    ? `<table>${events.map((e) => `<tr><td>${e.start_s.toFixed(2)}-${e.end_s.toFixed(2)} s</td>` +
      `<td>confidence ${e.confidence.toFixed(3)}</td></tr>`).join("")}</table>`
    : "none";
}

function renderLatency(latencyMs, audioS) {
  if (!latencyMs.length) { $("latency").textContent = "none yet"; return; }
  const total = latencyMs.reduce((a, b) => a + b, 0);
  $("latency").innerHTML = `<table><tr><td>p50</td><td>${percentile(latencyMs, 0.5).toFixed(2)} ms</td></tr>` +
    `<tr><td>p99</td><td>${percentile(latencyMs, 0.99).toFixed(2)} ms</td></tr>` +
    `<tr><td>per s of audio</td><td>${(total / Math.max(audioS, 1e-9)).toFixed(2)} ms</td></tr>` +
    `<tr><td>hops</td><td>${latencyMs.length}</td></tr></table>`;
}

/** The file path: decode, resample to 16 kHz, stream it one hop at a time (timing each hop), then score. */
async function analyseFile(model, file) {
  setState("running", `Analysing ${file.name}...`);
  const rate = model.sampleRateHz;
  const { samples, sourceRateHz, resampledBy } = await decodeFile(file, rate);
  const stream = model.stream();
  const windows = [], latencyMs = [];
  for (let i = 0; i < samples.length; i += model.hopSamples) {
    const t0 = performance.now();
    windows.push(...await stream.accept(samples.subarray(i, i + model.hopSamples)));
    latencyMs.push(performance.now() - t0);
  }
  windows.push(...await stream.flush());
  const durationS = samples.length / rate;
  const scores = Object.fromEntries(Object.keys(model.labelSets).map((s) => [s, scoreWindows(model, windows, s)]));
  drawPlot(model, windows, stream.events, { endS: durationS, live: false });
  renderScores(scores); renderEvents(stream.events); renderLatency(latencyMs, durationS);
  window.aculaResult = {
    file: file.name, n_samples: samples.length, duration_s: durationS, events: stream.events, scores,
    latency_ms: latencyMs, hop_samples: model.hopSamples, source_rate_hz: sourceRateHz, resampled_by: resampledBy,
    windows: windows.map((w) => ({ index: w.index, start_s: w.start_s, end_s: w.end_s,
      cough_probability: w.cough_probability, problems: w.problems, embedding: Array.from(w.embedding) })),
  };
  const source = resampledBy === "none" ? "" : resampledBy === "browser" ? " (resampled by the browser)"
    : ` (${sourceRateHz} Hz, resampled in the page)`;
  setState("done", `${file.name}${source}: ${durationS.toFixed(2)} s, ${windows.length} windows, ` +
    `${stream.events.length} cough event(s).`);
}

/** The microphone path: an AudioContext at the device's rate, an AudioWorklet posting blocks, the SDK's
 * resampler to 16 kHz, one Stream per session. */
class Live {
  constructor(model) { this.model = model; this.ctx = null; }

  async start() {
    const media = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
    });
    this.ctx = new AudioContext();
    this.resampler = new StreamingResampler(this.ctx.sampleRate, this.model.sampleRateHz);
    await this.ctx.audioWorklet.addModule(new URL("capture-worklet.js", import.meta.url));
    const node = new AudioWorkletNode(this.ctx, "acula-capture", { numberOfInputs: 1, numberOfOutputs: 0 });
    this.ctx.createMediaStreamSource(media).connect(node);
    this.media = media;
    this.stream = this.model.stream();
    this.windows = []; this.latencyMs = []; this.nSamples = 0;
    this.queue = Promise.resolve();  // blocks are processed in order, one at a time
    node.port.onmessage = ({ data }) => {
      this.queue = this.queue.then(async () => {
        const t0 = performance.now();
        const x = this.resampler.accept(data);
        const fresh = await this.stream.accept(x);
        if (fresh.length) this.latencyMs.push(performance.now() - t0);
        this.nSamples += x.length;
        this.windows.push(...fresh);
        if (this.windows.length > 4 * LIVE_SPAN_S) this.windows.splice(0, this.windows.length - 4 * LIVE_SPAN_S);
        if (fresh.length) this.render();
      });
    };
    setState("live", `Listening at ${this.ctx.sampleRate} Hz, resampled to ${this.model.sampleRateHz} Hz ` +
      "(nothing leaves this page)...");
  }

  render() {
    const endS = this.nSamples / this.model.sampleRateHz;
    drawPlot(this.model, this.windows, this.stream.events, { endS, live: true });
    renderEvents(this.stream.events);
    renderLatency(this.latencyMs, endS);
    window.aculaLive = { n_windows: this.stream.nWindows, seconds: endS, events: this.stream.events };
  }

  async stop() {
    this.media.getTracks().forEach((t) => t.stop());
    await this.ctx.close();
    await this.queue;
    this.windows.push(...await this.stream.accept(this.resampler.flush()));
    this.windows.push(...await this.stream.flush());
    const scores = Object.fromEntries(Object.keys(this.model.labelSets).map(
      (s) => [s, scoreWindows(this.model, this.windows, s)]));
    this.render(); renderScores(scores);
    setState("ready", `Stopped: ${(this.nSamples / this.model.sampleRateHz).toFixed(1)} s, ` +
      `${this.stream.nWindows} windows, ${this.stream.events.length} cough event(s).`);
  }
}

async function warmUp(model) {
  // first inference and caches, as sdk.bench.time_hops does: 3 s of silence through a throwaway stream
  await model.stream().accept(new Float32Array(3 * model.sampleRateHz));
}

async function main() {
  try {
    const model = await loadModel(new URL("model/", document.baseURI).href, { numThreads: 1 });
    await warmUp(model);
    window.acula = { model };
    const d = model.desc;
    $("model").textContent = `Bundle '${d.bundle.name}', ${d.student.file} (${d.student.precision}, sha256 ` +
      `${d.student.sha256.slice(0, 12)}... checked); window ${d.window_frames} frames, hop ${d.hop_frames} ` +
      `frames (${(model.hopSamples / model.sampleRateHz).toFixed(2)} s); cough on ${d.screening.on}, off ` +
      `${d.screening.off}.`;
    drawPlot(model, [], [], { endS: 0, live: false });
    const live = new Live(model);
    $("file").disabled = false;
    $("mic").disabled = false;
    $("file").addEventListener("change", async () => {
      const file = $("file").files[0];
      if (!file) return;
      try { await analyseFile(model, file); } catch (err) { setState("error", `Cannot analyse ${file.name}: ${err.message}`, true); }
    });
    $("mic").addEventListener("click", async () => {
      try {
        if (live.ctx && live.ctx.state !== "closed") { await live.stop(); $("mic").textContent = "Start microphone"; return; }
        await live.start();
        $("mic").textContent = "Stop";
      } catch (err) { setState("error", `Microphone: ${err.message}`, true); }
    });
    setState("ready", "Ready: choose a recording or start the microphone.");
  } catch (err) {
    setState("error", `Cannot load the model: ${err.message}`, true);
  }
}

main();
