// AcuLa Edge in the browser: the SDK's device path (sdk/frontend.py, sdk/stream.py, sdk/quality.py's
// WindowGate, sdk/scoring.py, sdk/screening.py's EventDetector with its split into single coughs) in
// JavaScript, with the student graph on onnxruntime-web (WASM).
//
//   const model = await loadModel("model/");          // model.json + student ONNX + prompt bank, sha256-checked
//   const stream = model.stream();                    // one per session; accept() takes any chunk length
//   const windows = await stream.accept(samples16k);  // Float32Array at 16 kHz -> new WindowResults
//   await stream.flush(); stream.events;              // cough events; scoreWindows(model, windows, "lung")
//
// Every table comes from model.json, written by `python -m sdk.web.build` from the bundle's FrontendConfig;
// tests/test_web.py checks this file's results against sdk.load("default") in headless Chromium.
// Nothing is uploaded: the page fetches its own model files and computes everything here.

import * as ort from "./node_modules/onnxruntime-web/dist/ort.wasm.min.mjs";

export const WEB_FORMAT_VERSION = 4;

async function sha256Hex(buffer) {
  if (!globalThis.crypto || !crypto.subtle) {
    throw new Error("crypto.subtle is unavailable: serve the page from https:// or http://localhost");
  }
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", buffer));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function fetchChecked(url, sha256) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`cannot fetch ${url}: HTTP ${response.status}`);
  const buffer = await response.arrayBuffer();
  const actual = await sha256Hex(buffer);
  if (actual !== sha256) throw new Error(`${url} has sha256 ${actual}, model.json expects ${sha256}`);
  return buffer;
}

/** Load model.json, the student graph and the prompt bank from `baseUrl`; one WASM thread by default. */
export async function loadModel(baseUrl = "model/", { numThreads = 1 } = {}) {
  const base = new URL(baseUrl, document.baseURI);
  const response = await fetch(new URL("model.json", base));
  if (!response.ok) {
    throw new Error(`cannot fetch ${base}model.json (HTTP ${response.status}); run 'python -m sdk.web.build'`);
  }
  const desc = await response.json();
  if (desc.format !== "acula-web" || desc.format_version !== WEB_FORMAT_VERSION) {
    throw new Error(`model.json is ${desc.format} version ${desc.format_version}; this page reads acula-web ` +
      `version ${WEB_FORMAT_VERSION} (rebuild with 'python -m sdk.web.build -f')`);
  }
  const [graph, prompts] = await Promise.all([
    fetchChecked(new URL(desc.student.file, base), desc.student.sha256),
    fetchChecked(new URL(desc.prompts.file, base), desc.prompts.sha256),
  ]);
  ort.env.wasm.numThreads = numThreads;
  ort.env.wasm.wasmPaths = new URL("./node_modules/onnxruntime-web/dist/", import.meta.url).href;
  const session = await ort.InferenceSession.create(new Uint8Array(graph), {
    executionProviders: ["wasm"], graphOptimizationLevel: "all",
  });
  return new Model(desc, session, new Float32Array(prompts));
}

/** Iterative radix-2 complex FFT of one size, tables built once. */
class FFT {
  constructor(n) {
    this.n = n;
    this.rev = new Uint32Array(n);
    const bits = Math.log2(n);
    for (let i = 0; i < n; i++) {
      let r = 0;
      for (let b = 0; b < bits; b++) r |= ((i >> b) & 1) << (bits - 1 - b);
      this.rev[i] = r;
    }
    this.cos = new Float64Array(n / 2);
    this.sin = new Float64Array(n / 2);
    for (let k = 0; k < n / 2; k++) {
      this.cos[k] = Math.cos((2 * Math.PI * k) / n);
      this.sin[k] = -Math.sin((2 * Math.PI * k) / n);
    }
  }

  /** In place on (re, im), each a Float64Array of length n. */
  run(re, im) {
    const n = this.n;
    for (let i = 0; i < n; i++) {
      const j = this.rev[i];
      if (j > i) {
        let t = re[i]; re[i] = re[j]; re[j] = t;
        t = im[i]; im[i] = im[j]; im[j] = t;
      }
    }
    for (let size = 2; size <= n; size <<= 1) {
      const half = size >> 1;
      const step = n / size;
      for (let start = 0; start < n; start += size) {
        for (let k = 0; k < half; k++) {
          const wr = this.cos[k * step], wi = this.sin[k * step];
          const a = start + k, b = a + half;
          const xr = re[b] * wr - im[b] * wi;
          const xi = re[b] * wi + im[b] * wr;
          re[b] = re[a] - xr; im[b] = im[a] - xi;
          re[a] += xr; im[a] += xi;
        }
      }
    }
  }
}

/** sdk.frontend.LogMelFrontend for one config: periodic Hann, power spectrum, HTK mel (sparse), log, affine. */
export class LogMel {
  constructor(cfg, melBands) {
    this.cfg = cfg;
    this.bands = melBands.map((b) => ({ start: b.start, weights: Float64Array.from(b.weights) }));
    this.window = new Float64Array(cfg.n_fft);
    for (let i = 0; i < cfg.n_fft; i++) this.window[i] = 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / cfg.n_fft);
    this.fft = new FFT(cfg.n_fft);
    this.re = new Float64Array(cfg.n_fft);
    this.im = new Float64Array(cfg.n_fft);
    this.power = new Float64Array(cfg.n_fft / 2 + 1);
  }

  /** Frames that n samples yield (sdk.frontend_config.FrontendConfig.n_frames). */
  nFrames(n) {
    return n < this.cfg.n_fft ? 0 : 1 + Math.floor((n - this.cfg.n_fft) / this.cfg.hop_length);
  }

  /** One frame from samples[offset, offset + n_fft): Float32Array(n_mels), normalised log-mel. */
  frame(samples, offset) {
    const { n_fft: nFft, amin_power: amin, norm_mean_db: mean, norm_std_db: std } = this.cfg;
    const { re, im, power } = this;
    for (let i = 0; i < nFft; i++) { re[i] = samples[offset + i] * this.window[i]; im[i] = 0; }
    this.fft.run(re, im);
    for (let k = 0; k < power.length; k++) power[k] = re[k] * re[k] + im[k] * im[k];
    const out = new Float32Array(this.bands.length);
    this.bands.forEach((band, m) => {
      let acc = 0;
      for (let j = 0; j < band.weights.length; j++) acc += power[band.start + j] * band.weights[j];
      out[m] = (10 * Math.log10(Math.max(acc, amin)) - mean) / std;
    });
    return out;
  }
}

/** Float32 samples with a moving origin: push at the end, drop from the front. */
class SampleBuffer {
  constructor() { this.data = new Float32Array(1 << 16); this.n = 0; }
  push(x) {
    if (this.n + x.length > this.data.length) {
      const grown = new Float32Array(Math.max(this.n + x.length, 2 * this.data.length));
      grown.set(this.data.subarray(0, this.n));
      this.data = grown;
    }
    this.data.set(x, this.n);
    this.n += x.length;
  }
  drop(k) { this.data.copyWithin(0, k, this.n); this.n -= k; }
  view(a, b) { return this.data.subarray(Math.max(0, a), Math.min(this.n, Math.max(0, b))); }
}

/** sdk.quality.assess_quality on one window's samples: {silent, clipped, low_level, rms_dbfs}.  Clipping is
 * flat tops (runs of >= clip_min_run samples at or above clip_level whose neighbours differ by at most
 * clip_tolerance), RMS is taken around the mean as sqrt(sumsq / n - mean^2), as QualityMeter computes it. */
export function windowQuality(x, q) {
  const n = x.length;
  let peak = 0, sum = 0, sumsq = 0;
  for (let i = 0; i < n; i++) {
    const v = x[i], a = Math.abs(v);
    if (a > peak) peak = a;
    sum += v; sumsq += v * v;
  }
  let nClipped = 0;
  if (peak >= q.clip_level) {  // flat tops to count (rare)
    let run = 0;
    for (let i = 0; i < n; i++) {
      const high = Math.abs(x[i]) >= q.clip_level;
      if (!high) { run = 0; continue; }
      const link = i > 0 && Math.abs(x[i - 1]) >= q.clip_level && Math.abs(x[i] - x[i - 1]) <= q.clip_tolerance;
      run = link ? run + 1 : 1;
      if (run === q.clip_min_run) nClipped += q.clip_min_run;
      else if (run > q.clip_min_run) nClipped += 1;
    }
  }
  const mean = sum / n;
  const rms = Math.sqrt(Math.max(0, sumsq / n - mean * mean));
  const rmsDbfs = rms > 0 ? 20 * Math.log10(rms) : -Infinity;
  const silent = peak < q.silence_peak;
  return { silent, clipped: nClipped / n >= q.clipped_fraction, low_level: !silent && rmsDbfs < q.low_level_rms_dbfs,
    rms_dbfs: rmsDbfs };
}

/** sdk.quality.WindowGate.problems: silence and clipping are absolute; low_level gates a window only when it is
 * quiet *and* inactive_below_loudest_db under the loudest window this stream has seen so far. */
export class WindowGate {
  /** relative: the level-blind gate of sdk.level (low level judged against the loudest window alone). */
  constructor(q, relative = false) { this.q = q; this.relative = relative; this.reset(); }
  reset() { this.loudestDbfs = -Infinity; }
  problems(seg) {
    if (!seg.length) return ["too_short"];
    const w = windowQuality(seg, this.q);
    this.loudestDbfs = Math.max(this.loudestDbfs, w.rms_dbfs);
    const low = this.relative ? !w.silent : w.low_level;
    const inactive = low && w.rms_dbfs < this.loudestDbfs - this.q.inactive_below_loudest_db;
    return [["silent", w.silent], ["clipped", w.clipped], ["low_level", inactive]].filter(([, on]) => on)
      .map(([p]) => p);
  }
}

const round = (x, digits) => Math.round(x * 10 ** digits) / 10 ** digits;

/** Python's round() to an integer: halves go to the even neighbour. */
function pyRound(x) {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** numpy.percentile(a, pct) with the default linear method (numpy's _lerp, its t >= 0.5 branch included). */
function percentile(a, pct) {
  const sorted = Float64Array.from(a).sort();
  const pos = (pct / 100) * (sorted.length - 1);
  const lo = Math.floor(pos), hi = Math.min(lo + 1, sorted.length - 1), t = pos - lo;
  const x = sorted[lo], y = sorted[hi], d = y - x;
  return t >= 0.5 ? y - d * (1 - t) : x + d * t;
}

/** sdk.screening.split_bursts: single coughs in one event's envelope (dB per frame); [first, end) frame ranges,
 * in order, or [] when no burst stands out of the floor. */
export function splitBursts(levelDb, cfg) {
  const n = levelDb.length;
  if (n < 3) return [];
  const floor = percentile(levelDb, cfg.floor_percentile);
  let loudest = -Infinity;
  for (let i = 0; i < n; i++) if (levelDb[i] > loudest) loudest = levelDb[i];
  const edge = Math.max(floor + cfg.edge_db, loudest - cfg.range_db);
  const runs = [];
  for (let i = 0; i < n;) {
    if (levelDb[i] < edge) { i++; continue; }
    let j = i;
    while (j < n && levelDb[j] >= edge) j++;
    runs.push([i, j]);
    i = j;
  }
  const minGap = pyRound(cfg.min_gap_s / cfg.frame_s);
  const merged = [];
  for (const run of runs) {
    if (merged.length && run[0] - merged[merged.length - 1][1] < minGap) merged[merged.length - 1][1] = run[1];
    else merged.push(run);
  }
  const minLen = pyRound(cfg.min_burst_s / cfg.frame_s);
  const need = Math.max(floor + cfg.rise_db, loudest - cfg.peak_below_loudest_db);
  const out = [];
  for (const [a, b] of merged) {
    if (b - a >= minLen && maxOf(levelDb, a, b) >= need) out.push(...splitBout(levelDb, a, b, need, cfg));
  }
  return out;
}

function maxOf(x, a, b) {
  let m = -Infinity;
  for (let i = a; i < b; i++) if (x[i] > m) m = x[i];
  return m;
}

/** sdk.screening._split_bout: split the run [a, b) at sharp onsets; a piece whose peak does not reach `need`
 * stays with the cough before it. */
function splitBout(levelDb, a, b, need, cfg) {
  const k = Math.max(1, pyRound(cfg.onset_s / cfg.frame_s));
  const minCough = pyRound(cfg.min_cough_s / cfg.frame_s);
  const starts = [a];
  for (let i = a + 1; i < b; i++) {
    let lo = Math.max(a, i - k);
    for (let j = lo + 1; j < i; j++) if (levelDb[j] < levelDb[lo]) lo = j;  // first minimum, as argmin
    if (levelDb[i] - levelDb[lo] >= cfg.onset_db && lo - starts[starts.length - 1] >= minCough) starts.push(lo);
  }
  const kept = [];
  starts.forEach((s, i) => {
    const e = i + 1 < starts.length ? starts[i + 1] : b;
    if (kept.length && maxOf(levelDb, s, e) < need) kept[kept.length - 1][1] = e;
    else kept.push([s, e]);
  });
  return kept;
}

/** sdk.screening.EventDetector: window probabilities (update) and the 16 kHz samples (acceptSamples, fed before
 * the windows they complete) -> closed cough events.  Window level: smoothing, hysteresis, minimum duration,
 * refractory period; then each closed event is split into single coughs on the 10 ms energy envelope. */
export class EventDetector {
  constructor(cfg, kind = "cough", sampleRateHz = 16000) {
    this.cfg = { split_coughs: false, ...cfg };  // a model.json without the split fields: one event per span
    this.kind = kind;
    this.sampleRateHz = sampleRateHz;
    this.frameSamples = Math.max(1, pyRound((this.cfg.frame_s ?? 0.01) * sampleRateHz));
    this.reset();
  }

  reset() {
    this.recent = []; this.open = null; this.windows = []; this.lastEnd = -1e9;
    this.tail = new Float64Array(this.frameSamples); this.nTail = 0;  // samples after the last whole frame
    this.power = []; this.powerBase = 0;  // mean-square power per frame, from frame powerBase on
  }

  /** Samples at sampleRateHz, any chunk length: extends the energy envelope on a fixed frame grid. */
  acceptSamples(x) {
    if (!this.cfg.split_coughs || !x.length) return;
    const fs = this.frameSamples;
    let i = 0;
    if (this.nTail) {  // complete the frame the last chunk left open
      while (this.nTail < fs && i < x.length) this.tail[this.nTail++] = x[i++];
      if (this.nTail < fs) return;
      let acc = 0;
      for (let j = 0; j < fs; j++) acc += this.tail[j] * this.tail[j];
      this.power.push(acc / fs);
      this.nTail = 0;
    }
    for (; i + fs <= x.length; i += fs) {
      let acc = 0;
      for (let j = i; j < i + fs; j++) acc += x[j] * x[j];
      this.power.push(acc / fs);
    }
    for (; i < x.length; i++) this.tail[this.nTail++] = x[i];
  }

  frameOf(tS) { return Math.floor(pyRound(tS * this.sampleRateHz) / this.frameSamples); }

  trim(beforeS) {
    const drop = Math.min(this.frameOf(beforeS) - this.powerBase, this.power.length);
    if (drop > 0) { this.power.splice(0, drop); this.powerBase += drop; }
  }

  event(start, end, confidence) {
    return { kind: this.kind, start_s: round(start, 3), end_s: round(end, 3), confidence: round(confidence, 4) };
  }

  /** Single coughs inside [start, end]: whole frames inside the span, all seen before it closed. */
  split(start, end, peak) {
    const whole = [this.event(start, end, peak)];
    if (!this.cfg.split_coughs) return whole;
    const a = Math.ceil(pyRound(start * this.sampleRateHz) / this.frameSamples) - this.powerBase;
    const b = Math.floor(pyRound(end * this.sampleRateHz) / this.frameSamples) - this.powerBase;
    if (a < 0 || b > this.power.length) return whole;  // no samples for this span
    const levelDb = this.power.slice(a, Math.max(a, b)).map((p) => 10 * Math.log10(Math.max(p, 1e-12)));
    const bursts = splitBursts(levelDb, this.cfg);
    if (!bursts.length) return whole;
    const frameS = this.frameSamples / this.sampleRateHz;
    return bursts.map(([first, last]) => {
      const s = (a + this.powerBase + first) * frameS, e = (a + this.powerBase + last) * frameS;
      let conf = -Infinity;
      for (const [ws, we, p] of this.windows) if (ws < e && we > s && p > conf) conf = p;
      return this.event(s, e, conf === -Infinity ? peak : conf);
    });
  }

  close() {
    if (this.open === null) return [];
    const [start, end, peak] = this.open;
    this.open = null;
    const events = end - start < this.cfg.min_duration_s ? [] : this.split(start, end, peak);
    if (events.length) this.lastEnd = end;
    this.windows = [];
    return events;
  }

  /** One window (probability null = gated out by signal quality); returns the events it closes. */
  update(startS, endS, probability) {
    const events = this.step(startS, endS, probability);
    if (this.open === null) this.trim(startS);  // the next event starts at a later window
    return events;
  }

  step(startS, endS, probability) {
    if (probability === null) return this.close();
    this.recent.push(probability);
    if (this.recent.length > Math.max(1, this.cfg.smoothing_windows)) this.recent.shift();
    const p = this.recent.reduce((x, y) => x + y, 0) / this.recent.length;
    if (this.open !== null) {
      if (p >= this.cfg.off) {
        this.open = [this.open[0], endS, Math.max(this.open[2], p)];
        this.windows.push([startS, endS, p]);
        return [];
      }
      return this.close();
    }
    if (p >= this.cfg.on && startS >= this.lastEnd + this.cfg.refractory_s) {
      this.open = [startS, endS, p];
      this.windows = [[startS, endS, p]];
    }
    return [];
  }

  flush() { return this.close(); }
}

/** Stateless and shared, like sdk.Model: tables, the ORT session and the prompt bank. */
export class Model {
  constructor(desc, session, prompts) {
    this.desc = desc;
    this.session = session;
    this.frontend = new LogMel(desc.frontend, desc.mel_bands);
    this.sampleRateHz = desc.frontend.sample_rate_hz;
    this.windowFrames = desc.window_frames;
    this.hopFrames = desc.hop_frames;
    this.hopSamples = desc.hop_frames * desc.frontend.hop_length;
    this.embedDim = desc.embed_dim;
    this.prompts = prompts; // (n_prompts, embed_dim), row-major
    this.labelSets = Object.fromEntries(Object.entries(desc.label_sets).map(([k, v]) => [k, v.labels]));
    // the prompt matmul is done once per prompt, then averaged per label as sdk.Model._label_logits does
    this.nPrompts = desc.prompts.shape[0];
  }

  stream() { return new Stream(this); }

  /** One window (Float32Array(window_frames * n_mels)) -> {embedding: Float32Array, heads: Float32Array}. */
  async runWindow(logmel) {
    const { input, outputs } = this.desc.student;
    const tensor = new ort.Tensor("float32", logmel, [1, this.windowFrames, this.desc.frontend.n_mels]);
    const result = await this.session.run({ [input]: tensor });
    return { embedding: result[outputs[0]].data, heads: result[outputs[1]].data };
  }

  /** Per label set: logits of shape (n_labels,), sdk.Model._label_logits for one embedding. */
  labelLogits(embedding) {
    let norm = 0;
    for (let i = 0; i < embedding.length; i++) norm += embedding[i] * embedding[i];
    norm = Math.sqrt(norm) + 1e-12;
    const sims = new Float64Array(this.nPrompts);
    for (let p = 0; p < this.nPrompts; p++) {
      let dot = 0;
      const row = p * this.embedDim;
      for (let i = 0; i < this.embedDim; i++) dot += embedding[i] * this.prompts[row + i];
      sims[p] = (dot / norm) * this.desc.logit_scale;
    }
    const out = {};
    for (const [name, set] of Object.entries(this.desc.label_sets)) {
      const t = this.desc.temperature[name] ?? 1.0;
      const b = (this.desc.bias ?? {})[name];
      out[name] = set.prompt_indices.map((idx, j) => idx.reduce((a, i) => a + sims[i], 0) / idx.length / t
        + (b ? b[j] : 0));
    }
    return out;
  }
}

/** One session, like sdk.Stream: accept() takes 16 kHz samples of any length and returns the new windows. */
export class Stream {
  constructor(model) {
    this.model = model;
    this.detector = new EventDetector(model.desc.screening, "cough", model.sampleRateHz);
    this.level = model.desc.level ?? null;  // sdk.level: windows shifted to a running level
    this.gate = new WindowGate(model.desc.quality, this.level !== null && this.level.gate === "relative");
    this.reset();
  }

  reset() {
    this.feBuffer = new SampleBuffer();   // samples not yet turned into frames
    this.samples = new SampleBuffer();    // samples a future window still needs; samples.data[0] = sampleBase
    this.sampleBase = 0;
    this.frames = [];                     // frames[0] is global frame frameBase
    this.frameBase = 0;
    this.peaks = [];                      // each frame's loudest cell (level bundles); peaks[0] is frame peakBase
    this.peakBase = 0;
    this.nSamples = 0;
    this.nWindows = 0;
    this.events = [];
    this.detector.reset();
    this.gate.reset();
  }

  windowSpan(k) {
    const { hop_length: hop, n_fft: nFft } = this.model.desc.frontend;
    const start = k * this.model.hopFrames * hop;
    return [start, (k * this.model.hopFrames + this.model.windowFrames - 1) * hop + nFft];
  }

  async accept(chunk) {
    const x = chunk instanceof Float32Array ? chunk : Float32Array.from(chunk);
    for (let i = 0; i < x.length; i++) {
      if (!Number.isFinite(x[i])) throw new Error("chunk holds NaN or infinite samples");
    }
    this.nSamples += x.length;
    this.samples.push(x);
    this.detector.acceptSamples(x);  // the energy envelope that splits an event into single coughs
    this.feBuffer.push(x);
    const fe = this.model.frontend;
    const n = fe.nFrames(this.feBuffer.n);
    for (let i = 0; i < n; i++) {
      const f = fe.frame(this.feBuffer.data, i * fe.cfg.hop_length);
      this.frames.push(f);
      if (this.level) this.peaks.push(f.reduce((a, v) => (v > a ? v : a), -Infinity));
    }
    if (n) this.feBuffer.drop(n * fe.cfg.hop_length);
    return this.emit(false);
  }

  async emit(tail) {
    const W = this.model.windowFrames, H = this.model.hopFrames;
    const out = [];
    for (;;) {
      const k = this.nWindows;
      const first = k * H - this.frameBase;
      if (first + W <= this.frames.length) {
        out.push(await this.run(this.frames.slice(first, first + W), this.windowSpan(k), k * H + W));
        continue;
      }
      if (tail && k === 0 && this.frames.length > 0) { // shorter than one window: tile it
        const tiled = Array.from({ length: W }, (_, i) => this.frames[i % this.frames.length]);
        out.push(await this.run(tiled, [0, this.nSamples], this.frameBase + this.frames.length));
      }
      break;
    }
    const keepFrame = this.nWindows * H - this.frameBase;
    if (keepFrame > 0) { this.frames.splice(0, keepFrame); this.frameBase += keepFrame; }
    if (this.level) {  // the frame levels the next window's running level still reads
      const keepPeak = this.nWindows * H + W - this.level.history_frames - this.peakBase;
      if (keepPeak > 0) { this.peaks.splice(0, keepPeak); this.peakBase += keepPeak; }
    }
    const keepSample = this.windowSpan(this.nWindows)[0] - this.sampleBase;
    if (keepSample > 0) { this.samples.drop(Math.min(keepSample, this.samples.n)); this.sampleBase += keepSample; }
    return out;
  }

  /** Score one window of frames ending at global frame ``end`` (exclusive), its samples [s, e). */
  async run(frames, [s, e], end) {
    const model = this.model, nMels = model.desc.frontend.n_mels;
    const logmel = new Float32Array(frames.length * nMels);
    frames.forEach((f, i) => logmel.set(f, i * nMels));
    if (this.level) {  // sdk.level.LevelShift.shift: window - float32(L - ref), L the loudest of the history
      let top = -Infinity;
      for (let g = Math.max(this.peakBase, end - this.level.history_frames); g < end; g++) {
        top = Math.max(top, this.peaks[g - this.peakBase]);
      }
      const shift = Math.fround(top - this.level.ref);
      const floor = this.level.keep_floor ? this.level.floor : null;  // digital silence stays at the floor cell
      const low = this.level.low == null ? null : Math.fround(this.level.low);  // range_db: the relative floor
      for (let i = 0; i < logmel.length; i++) {
        if (floor !== null && logmel[i] <= floor + 1e-5) logmel[i] = floor;
        else logmel[i] -= shift;  // stored as float32, as numpy's subtraction
        if (low !== null && logmel[i] < low) logmel[i] = low;
      }
    }
    const { embedding, heads } = await model.runWindow(logmel);
    const seg = this.samples.view(s - this.sampleBase, e - this.sampleBase);
    const problems = this.gate.problems(seg);
    const head = model.desc.cough_head;
    const p = head !== null && head !== undefined && problems.length === 0 ? 1 / (1 + Math.exp(-heads[head])) : null;
    const rate = model.sampleRateHz;
    const w = { index: this.nWindows, start_s: round(s / rate, 4), end_s: round(e / rate, 4),
      embedding: Float32Array.from(embedding), cough_probability: p, label_logits: model.labelLogits(embedding),
      problems };
    this.nWindows += 1;
    this.events.push(...this.detector.update(w.start_s, w.end_s, p));
    return w;
  }

  /** End of input: a tiled window for a clip shorter than one window, and any open event. */
  async flush() {
    const out = await this.emit(true);
    this.events.push(...this.detector.flush());
    return out;
  }
}

/** sdk.Model.score over windows already computed: clip probabilities from the mean of the usable windows'
 * logits, or null when the quality gate left none. */
export function scoreWindows(model, windows, labelSet) {
  const labels = model.labelSets[labelSet];
  const usable = windows.filter((w) => w.problems.length === 0);
  if (!usable.length) return null;
  const pooled = labels.map((_, j) => usable.reduce((a, w) => a + w.label_logits[labelSet][j], 0) / usable.length);
  const top = Math.max(...pooled);
  const ex = pooled.map((v) => Math.exp(v - top));
  const total = ex.reduce((a, b) => a + b, 0);
  return Object.fromEntries(labels.map((l, j) => [l, ex[j] / total]));
}

/** Modified Bessel function of the first kind, order 0 (power series), for the Kaiser window. */
function besselI0(x) {
  let sum = 1, term = 1;
  for (let k = 1; k < 200; k++) {
    term *= (x / (2 * k)) ** 2;
    sum += term;
    if (term < sum * 1e-17) break;
  }
  return sum;
}

const gcd = (a, b) => (b ? gcd(b, a % b) : a);

/** sdk.resample.StreamingResampler: Kaiser-windowed sinc polyphase FIR (scipy.signal.resample_poly's design),
 * delay-compensated; chunks of any length give the output of one call.  accept() returns Float32Array. */
export class StreamingResampler {
  constructor(sourceRateHz, targetRateHz, kaiserBeta = 5.0) {
    const g = gcd(sourceRateHz, targetRateHz);
    this.up = targetRateHz / g; this.down = sourceRateHz / g;
    const half = this.up === this.down ? 0 : 10 * Math.max(this.up, this.down);
    const taps = 2 * half + 1, cutoff = 1 / Math.max(this.up, this.down);
    this.h = new Float64Array(taps);
    if (half === 0) this.h[0] = 1;
    else {
      let total = 0;
      for (let n = 0; n < taps; n++) {
        const m = n - (taps - 1) / 2;
        const x = cutoff * m;
        const sinc = x === 0 ? 1 : Math.sin(Math.PI * x) / (Math.PI * x);
        const r = (2 * n) / (taps - 1) - 1;
        this.h[n] = cutoff * sinc * (besselI0(kaiserBeta * Math.sqrt(Math.max(0, 1 - r * r))) / besselI0(kaiserBeta));
        total += this.h[n];
      }
      for (let n = 0; n < taps; n++) this.h[n] = (this.h[n] / total) * this.up;
    }
    this.delay = half;
    this.reset();
  }

  reset() { this.buf = new Float64Array(0); this.base = 0; this.nIn = 0; this.m = 0; }

  emit(limitM) {
    const nOut = Math.max(0, limitM - this.m);
    const out = new Float32Array(nOut);
    const { h, up, down, delay, buf, base } = this, taps = h.length;
    for (let i = 0; i < nOut; i++) {
      const p = (this.m + i) * down + delay;
      const jHi = Math.floor(p / up), jLo = Math.max(0, Math.floor((p - taps) / up) + 1);
      let acc = 0;
      for (let j = jLo; j <= jHi && j < this.nIn; j++) acc += h[p - j * up] * buf[j - base];
      out[i] = acc;
    }
    this.m += nOut;
    // keep only the source samples a future output can still reach
    const firstNeeded = Math.max(0, Math.floor((this.m * down + delay - taps) / up) + 1);
    const drop = Math.min(Math.max(0, firstNeeded - this.base), this.buf.length);
    if (drop) { this.buf = this.buf.slice(drop); this.base += drop; }
    return out;
  }

  accept(chunk) {
    if (this.up === this.down) return Float32Array.from(chunk);
    const grown = new Float64Array(this.buf.length + chunk.length);
    grown.set(this.buf); grown.set(chunk, this.buf.length);
    this.buf = grown;
    this.nIn += chunk.length;
    // output m is final once its newest source sample j = (m*down + delay) // up has arrived
    const limit = this.nIn ? Math.floor((this.nIn * this.up - this.delay - 1) / this.down) + 1 : 0;
    return this.emit(Math.max(limit, 0));
  }

  /** The tail: outputs up to the input's duration, later input taken as silence. */
  flush() {
    if (this.up === this.down) return new Float32Array(0);
    return this.emit(Math.ceil((this.nIn * this.up) / this.down));
  }
}

/** The sample rate a WAV or FLAC header declares, or null for other formats. */
export function headerSampleRate(bytes) {
  const b = new Uint8Array(bytes);
  const ascii = (o, n) => String.fromCharCode(...b.subarray(o, o + n));
  if (b.length >= 12 && ascii(0, 4) === "RIFF" && ascii(8, 4) === "WAVE") {
    const view = new DataView(bytes);
    for (let o = 12; o + 8 <= b.length;) {
      const size = view.getUint32(o + 4, true);
      if (ascii(o, 4) === "fmt " && o + 16 <= b.length) return view.getUint32(o + 12, true);
      o += 8 + size + (size & 1);
    }
  }
  if (b.length >= 22 && ascii(0, 4) === "fLaC") return (b[18] << 12) | (b[19] << 4) | (b[20] >> 4);
  return null;
}

/** Decode a file to mono Float32Array at `rateHz`.  WAV and FLAC are decoded at their own rate (no resampling
 * by the browser) and resampled here as the SDK does; channels are averaged as sdk.audio.prepare_audio does.
 * Other formats are resampled by the browser's OfflineAudioContext (close to, not equal to, the SDK).
 * Returns {samples, sourceRateHz, resampledBy}. */
export async function decodeFile(file, rateHz) {
  const bytes = await file.arrayBuffer();
  const declared = headerSampleRate(bytes);
  const decodeRate = declared && declared >= 3000 && declared <= 768000 ? declared : rateHz;
  const buffer = await new OfflineAudioContext(1, 1, decodeRate).decodeAudioData(bytes);
  const mono = new Float32Array(buffer.length);
  for (let c = 0; c < buffer.numberOfChannels; c++) {
    const ch = buffer.getChannelData(c);
    for (let i = 0; i < mono.length; i++) mono[i] += ch[i] / buffer.numberOfChannels;
  }
  if (decodeRate === rateHz) {
    return { samples: mono, sourceRateHz: declared ?? null, resampledBy: declared ? "none" : "browser" };
  }
  const r = new StreamingResampler(decodeRate, rateHz);
  const head = r.accept(mono), tail = r.flush();
  const samples = new Float32Array(head.length + tail.length);
  samples.set(head); samples.set(tail, head.length);
  return { samples, sourceRateHz: declared, resampledBy: "acula.js" };
}
