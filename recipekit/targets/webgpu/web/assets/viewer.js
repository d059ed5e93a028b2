// recipekit's WebGPU viewer: loads webgpu.json, the model and the pinned onnxruntime-web, preprocesses an
// image exactly as the manifest declares (preprocess.js: the same bits as the gates' tensors), runs it, and
// draws the detections (boxes, scores, keypoints) on the image.
import { deployedSize, pixelsOf, preprocess } from './preprocess.js';

const statusEl = document.getElementById('status');
const canvas = document.getElementById('view');
const say = (text, error = false) => { statusEl.textContent = text; statusEl.className = error ? 'error' : ''; };
const params = new URLSearchParams(location.search);
let manifest, ort, session, ep;

// Output semantics (webgpu.json outputs[].kind, recipekit.recipe.outputs): post-NMS rows pack fields in columns.
const field = (kind, role) => (kind.columns || []).find((c) => c.role === role);

function detections(out, kind) {
  if (!kind.columns || out.dims.length !== 3) return [];
  const [, n, cols] = out.dims, d = out.data, s = field(kind, 'score')?.start ?? 4, rows = [];
  for (let i = 0; i < n; i++) {
    const row = Array.from(d.subarray(i * cols, (i + 1) * cols));
    if (row[s] > 0) rows.push(row);
  }
  return rows;
}

function draw(img, found, map) {
  canvas.width = img.width; canvas.height = img.height;
  const g = canvas.getContext('2d');
  g.drawImage(img, 0, 0);
  const back = (x, axis) => (x - map.pad[axis]) / map.ratio[axis];
  g.lineWidth = Math.max(2, img.width / 300); g.font = `${Math.max(12, img.width / 50)}px sans-serif`;
  for (const { row, kind } of found) {
    const box = field(kind, 'box') || { start: 0, format: 'xyxy' }, b0 = box.start;
    let [a, b, c, e] = row.slice(b0, b0 + 4);
    if (box.format === 'cxcywh') [a, b, c, e] = [a - c / 2, b - e / 2, a + c / 2, b + e / 2];
    if (box.format === 'xywh') [c, e] = [a + c, b + e];
    const x1 = back(a, 0), y1 = back(b, 1), x2 = back(c, 0), y2 = back(e, 1);
    g.strokeStyle = '#00e676'; g.fillStyle = '#00e676';
    g.strokeRect(x1, y1, x2 - x1, y2 - y1);
    const cls = field(kind, 'class'), score = field(kind, 'score')?.start ?? 4;
    g.fillText(`class ${cls ? row[cls.start] : '-'} ${row[score].toFixed(2)}`, Math.max(2, x1 + 3), Math.max(14, y1 - 4));
    const kp = field(kind, 'keypoints');
    if (kp) {
      const { start, dims } = kp, count = (kp.stop - kp.start) / dims;
      g.fillStyle = '#ff1744';
      for (let k = 0; k < count; k++) {
        const x = row[start + k * dims], y = row[start + k * dims + 1], v = dims > 2 ? row[start + k * dims + 2] : 1;
        if (v > 0.5) { g.beginPath(); g.arc(back(x, 0), back(y, 1), g.lineWidth * 1.5, 0, 2 * Math.PI); g.fill(); }
      }
    }
  }
}

async function run(img) {
  const pre = manifest.preprocess, size = deployedSize(img.height, img.width, pre, manifest.input_shapes || [manifest.input_size]);
  const map = preprocess(pixelsOf(img), img.width, img.height, size, pre);
  const feeds = { [manifest.inputs[0].name]: new ort.Tensor('float32', map.data, map.dims) };
  const t0 = performance.now();
  const outs = await session.run(feeds);
  const ms = performance.now() - t0, found = [], summary = [];
  for (const o of manifest.outputs) {
    if (o.kind.kind === 'detections') for (const row of detections(outs[o.name], o.kind)) found.push({ row, kind: o.kind });
    summary.push(`${o.name} [${outs[o.name].dims}]`);
  }
  draw(img, found, map);
  say(`${found.length} detection(s) in ${ms.toFixed(0)} ms on ${ep} (onnxruntime-web ${manifest.onnxruntime_web.version}, ${manifest.onnxruntime_web.bundle} bundle); outputs: ${summary.join(', ')}`);
  const x = feeds[manifest.inputs[0].name].data;
  const input = params.has('input') ? Array.from(x) : undefined;  // ?input: the tensor fed, for tests
  return { detections: found.length, ep, ms, input_mean: x.reduce((a, v) => a + v, 0) / x.length, input };
}

const load = (src) => new Promise((ok, fail) => { const i = new Image(); i.onload = () => ok(i); i.onerror = () => fail(new Error(`cannot load image ${src}`)); i.src = src; });
const report = (r) => params.has('report') && fetch('/result', { method: 'POST', body: JSON.stringify({ ...r, png: canvas.toDataURL('image/png') }) });

async function main() {
  manifest = await (await fetch('webgpu.json')).json();
  const rt = manifest.onnxruntime_web, base = params.get('ort') || rt.base;
  ort = await import(new URL(rt.entry, new URL(base, location.href)).href);
  ort.env.wasm.wasmPaths = new URL(base, location.href).href;
  for (const candidate of manifest.execution_providers) {
    const options = { executionProviders: [candidate] };
    if (manifest.external_data && manifest.external_data.length) options.externalData = manifest.external_data;
    try { session = await ort.InferenceSession.create(manifest.model, options); ep = candidate; break; }
    catch (e) { console.warn(`${candidate} unavailable: ${e.message || e}`); }
  }
  if (!session) throw new Error('no execution provider could load the model');
  document.getElementById('file').addEventListener('change', async (ev) => {
    const f = ev.target.files[0];
    if (f) await run(await load(URL.createObjectURL(f))).catch((e) => say(String(e.message || e), true));
  });
  say(`model loaded on ${ep}; pick an image`);
  if (manifest.sample) report(await run(await load(manifest.sample)));
}

main().catch((e) => { say(`error: ${e.message || e}`, true); report({ error: String(e.message || e) }); });
