// recipekit's gate page: asks the local server for a job (GET /next), runs its ONNX model in onnxruntime-web
// on each requested execution provider and each input case, POSTs every output (raw bytes, base64), every
// error's text, the WebGPU adapter and the captured console (ORT's node-placement log) back, then reloads
// itself for the next job. The reload gives every job a fresh WebGPU device: a defective kernel that writes
// out of bounds (JSEP's Split into 9) corrupts later sessions on the same device. The browser, its
// compiled shaders and V8's code cache of onnxruntime-web stay, so a job after the first starts quickly.
const consoleLines = [];
for (const level of ['log', 'info', 'warn', 'error', 'debug']) {
  const original = console[level].bind(console);
  console[level] = (...args) => { consoleLines.push(`[${level}] ` + args.map(String).join(' ')); original(...args); };
}
let currentJob = null;
const progress = (text) => fetch('/progress', { method: 'POST', body: `${currentJob} ${text}` }).catch(() => {});
const errorText = (e) => (e && e.message) ? String(e.message) : String(e);
const post = (report) => fetch('/result', { method: 'POST', headers: { 'Content-Type': 'application/json' },
  body: JSON.stringify({ id: currentJob, ...report, console: consoleLines.slice(-20000) }) });

window.addEventListener('error', (ev) => post({ error: `page error: ${ev.message}` }));
window.addEventListener('unhandledrejection', (ev) => post({ error: `unhandled rejection: ${errorText(ev.reason)}` }));

function toBase64(typed) {
  const bytes = new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength);
  let text = '';
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  return btoa(text);
}

const ARRAYS = { float32: Float32Array, float16: Uint16Array, int64: BigInt64Array, int32: Int32Array, uint8: Uint8Array, bool: Uint8Array };

async function loadFeeds(ort, feeds) {
  const out = {};
  for (const [name, f] of Object.entries(feeds)) {
    const buf = await (await fetch(f.url)).arrayBuffer();
    out[name] = new ort.Tensor(f.type, new ARRAYS[f.type](buf), f.dims);
  }
  return out;
}

async function adapterInfo() {
  if (!navigator.gpu) return { available: false, reason: 'navigator.gpu is undefined (WebGPU not exposed)' };
  const adapter = await navigator.gpu.requestAdapter();
  if (!adapter) return { available: false, reason: 'navigator.gpu.requestAdapter() returned null' };
  const info = adapter.info || {};
  return { available: true, vendor: info.vendor, architecture: info.architecture, device: info.device,
           description: info.description, fallback: Boolean(adapter.isFallbackAdapter || info.isFallbackAdapter),
           jspi: typeof WebAssembly.Suspending === 'function' };
}

async function runEp(ort, job, ep) {
  const result = { ep, cases: [] };
  const t0 = performance.now();
  let session;
  try {
    consoleLines.push(`[recipekit] session ${ep} begin`);
    const epOptions = (job.ep_options || {})[ep];
    const options = { executionProviders: [epOptions ? { name: ep, ...epOptions } : ep], logSeverityLevel: 0, logVerbosityLevel: 0 };
    if (job.external_data && job.external_data.length) options.externalData = job.external_data;  // weights beside the graph
    session = await ort.InferenceSession.create(job.model, options);
    consoleLines.push(`[recipekit] session ${ep} end`);
  } catch (e) {
    result.error = errorText(e);
    return result;
  }
  result.create_ms = performance.now() - t0;
  for (const c of job.cases) {
    await progress(`${ep} ${c.name}`);
    const row = { name: c.name };
    try {
      const feeds = await loadFeeds(ort, c.feeds);
      const t1 = performance.now();
      const outs = await session.run(feeds, { logSeverityLevel: 3 });
      row.run_ms = performance.now() - t1;
      row.outputs = {};
      for (const name of session.outputNames) {
        const t = outs[name];
        row.outputs[name] = { type: t.type, dims: Array.from(t.dims), data: toBase64(t.data) };
      }
    } catch (e) {
      row.error = errorText(e);
    }
    result.cases.push(row);
  }
  await session.release();
  return result;
}

let adapter = null;

async function runJob(job) {
  const report = { adapter, isolated: self.crossOriginIsolated, runs: [] };
  await progress('import onnxruntime-web');
  const ort = await import(job.ort);
  ort.env.wasm.wasmPaths = job.wasm_paths;
  ort.env.logLevel = 'warning';
  report.ort_version = ort.env.versions ? ort.env.versions.web : undefined;
  for (const ep of job.eps) {
    if (ep === 'webgpu' && !adapter.available) {
      report.runs.push({ ep, error: `WebGPU unavailable: ${adapter.reason}` });
      continue;
    }
    report.runs.push(await runEp(ort, job, ep));
  }
  return report;
}

async function main() {
  let job;
  for (;;) {
    try {
      job = await (await fetch('/next')).json();
    } catch (e) {
      await new Promise((resolve) => setTimeout(resolve, 250));  // the server is going away, or busy
      continue;
    }
    if (!job.wait) break;
  }
  if (job.done) return;
  currentJob = job.id;
  adapter = await adapterInfo();
  let report;
  try {
    report = await runJob(job);
  } catch (e) {
    report = { error: `runner failed: ${errorText(e)}` };
  }
  await post(report);
  location.reload();  // a fresh page (and WebGPU device) for the next job
}

main().catch((e) => post({ error: `runner failed: ${errorText(e)}` }));
