// recipekit's WebGPU viewer: loads webgpu.json, the model and the pinned onnxruntime-web, preprocesses an
// image exactly as the manifest declares (letterbox/stretch/center-crop, scale, mean, std, colour order, layout), runs
// it, and draws the detections (boxes, scores, keypoints) on the image.
const statusEl = document.getElementById('status');
const canvas = document.getElementById('view');
const say = (text, error = false) => { statusEl.textContent = text; statusEl.className = error ? 'error' : ''; };
const params = new URLSearchParams(location.search);
let manifest, ort, session, ep;

function pixelsOf(img) {
  const c = new OffscreenCanvas(img.width, img.height), g = c.getContext('2d');
  g.drawImage(img, 0, 0);
  return g.getImageData(0, 0, img.width, img.height).data;
}

function resizeLinear(src, sw, sh, dst, dw, dh, dstStride, x0, y0) {
  // Bilinear resize with OpenCV's INTER_LINEAR sampling (what recipekit.preprocess uses), not the
  // browser's canvas scaling: the page must feed the model what the gates validated.
  const sx = sw / dw, sy = sh / dh;
  for (let y = 0; y < dh; y++) {
    let fy = (y + 0.5) * sy - 0.5, iy = Math.floor(fy); fy -= iy;
    if (iy < 0) { iy = 0; fy = 0; }
    if (iy >= sh - 1) { iy = sh - 1; fy = 0; }
    const iy1 = Math.min(iy + 1, sh - 1);
    for (let x = 0; x < dw; x++) {
      let fx = (x + 0.5) * sx - 0.5, ix = Math.floor(fx); fx -= ix;
      if (ix < 0) { ix = 0; fx = 0; }
      if (ix >= sw - 1) { ix = sw - 1; fx = 0; }
      const ix1 = Math.min(ix + 1, sw - 1), o = ((y + y0) * dstStride + x + x0) * 4;
      for (let c = 0; c < 3; c++) {
        const a = src[(iy * sw + ix) * 4 + c], b = src[(iy * sw + ix1) * 4 + c];
        const d = src[(iy1 * sw + ix) * 4 + c], e = src[(iy1 * sw + ix1) * 4 + c];
        dst[o + c] = Math.round((a * (1 - fx) + b * fx) * (1 - fy) + (d * (1 - fx) + e * fx) * fy);
      }
    }
  }
}

// Pillow's Image.resize(BILINEAR) on 8-bit RGB, as its Resample.c computes it (what recipekit.preprocess's
// center-crop uses, after Ultralytics' classify_transforms): a triangle filter widened by the scale when
// shrinking (antialiasing), coefficients in 22-bit fixed point, a horizontal then a vertical pass, each
// rounded to 8 bits.
const PRECISION_BITS = 22;

function pilCoefficients(inSize, outSize) {
  const scale = inSize / outSize, filterscale = Math.max(scale, 1), support = filterscale;
  const ksize = Math.ceil(support) * 2 + 1, bounds = new Int32Array(outSize * 2), kk = new Float64Array(outSize * ksize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = 0 + (xx + 0.5) * scale, ss = 1.0 / filterscale, k = new Float64Array(ksize);
    const xmin = Math.max(0, Math.trunc(center - support + 0.5)), n = Math.min(inSize, Math.trunc(center + support + 0.5)) - xmin;
    let ww = 0.0;
    for (let x = 0; x < n; x++) {
      const t = Math.abs((x + xmin - center + 0.5) * ss);
      k[x] = t < 1.0 ? 1.0 - t : 0.0;
      ww += k[x];
    }
    for (let x = 0; x < n; x++) {
      const v = ww !== 0.0 ? k[x] / ww : k[x];
      kk[xx * ksize + x] = Math.trunc(v < 0 ? -0.5 + v * (1 << PRECISION_BITS) : 0.5 + v * (1 << PRECISION_BITS));
    }
    bounds[xx * 2] = xmin; bounds[xx * 2 + 1] = n;
  }
  return { ksize, bounds, kk };
}

function pilPass(src, sw, sh, dw, dh, horizontal) {
  // One pass of Pillow's resample: rows (horizontal) or columns resized, RGBA in and out.
  const { ksize, bounds, kk } = pilCoefficients(horizontal ? sw : sh, horizontal ? dw : dh);
  const dst = new Uint8ClampedArray(dw * dh * 4), half = 1 << (PRECISION_BITS - 1), one = 2 ** PRECISION_BITS;
  for (let y = 0; y < dh; y++) {
    for (let x = 0; x < dw; x++) {
      const i = horizontal ? x : y, first = bounds[i * 2], n = bounds[i * 2 + 1], o = (y * dw + x) * 4;
      for (let c = 0; c < 3; c++) {
        let ss = half;
        for (let t = 0; t < n; t++) {
          const at = horizontal ? (y * sw + first + t) * 4 : ((first + t) * sw + x) * 4;
          ss += src[at + c] * kk[i * ksize + t];
        }
        dst[o + c] = Math.min(255, Math.max(0, Math.floor(ss / one)));
      }
      dst[o + 3] = 255;
    }
  }
  return dst;
}

const roundHalfEven = (v) => { const f = Math.floor(v), d = v - f; return d > 0.5 || (d === 0.5 && f % 2 !== 0) ? f + 1 : f; };

function centerCrop(src, iw, ih, h, w) {
  // torchvision Resize(short side) + CenterCrop on a PIL image (recipekit.preprocess.center_crop): the
  // limiting side to its target, the other to int(target * long / short), then the centre cut out.
  let nh, nw;
  if (h / ih >= w / iw) [nh, nw] = [h, Math.trunc(h * iw / ih)];
  else [nh, nw] = [Math.trunc(w * ih / iw), w];
  [nh, nw] = [Math.max(nh, h), Math.max(nw, w)];
  const sized = pilPass(pilPass(src, iw, ih, nw, ih, true), nw, ih, nw, nh, false);
  const top = roundHalfEven((nh - h) / 2), left = roundHalfEven((nw - w) / 2), pixels = new Uint8ClampedArray(w * h * 4);
  for (let y = 0; y < h; y++) pixels.set(sized.subarray(((y + top) * nw + left) * 4, ((y + top) * nw + left + w) * 4), y * w * 4);
  return { pixels, ratio: [nw / iw, nh / ih], pad: [-left, -top] };
}

function fit(img, [h, w], pre) {
  // The image as the model sees it (HxW RGBA pixels) and the mapping back to image pixels.
  const src = pixelsOf(img), pixels = new Uint8ClampedArray(w * h * 4);
  if (pre.resize === 'center-crop') return centerCrop(src, img.width, img.height, h, w);
  if (pre.resize === 'none' && (img.width !== w || img.height !== h)) {
    throw new Error(`resize: none needs ${h}x${w} images, got ${img.height}x${img.width}`);
  }
  if (pre.resize === 'letterbox') {
    const r = Math.min(h / img.height, w / img.width), nw = Math.round(img.width * r), nh = Math.round(img.height * r);
    const pad = [Math.round((w - nw) / 2 - 0.1), Math.round((h - nh) / 2 - 0.1)];
    pixels.fill(pre.pad_value);
    resizeLinear(src, img.width, img.height, pixels, nw, nh, w, pad[0], pad[1]);
    return { pixels, ratio: [r, r], pad };
  }
  resizeLinear(src, img.width, img.height, pixels, w, h, w, 0, 0);
  return { pixels, ratio: [w / img.width, h / img.height], pad: [0, 0] };
}

function toTensor(pixels, [h, w], pre) {
  const data = new Float32Array(3 * h * w), order = pre.color === 'rgb' ? [0, 1, 2] : [2, 1, 0];
  for (let i = 0; i < h * w; i++) {
    for (let c = 0; c < 3; c++) {
      const v = (pixels[i * 4 + order[c]] * pre.scale - pre.mean[c]) / pre.std[c];
      data[pre.layout === 'nchw' ? c * h * w + i : i * 3 + c] = v;
    }
  }
  const dims = pre.layout === 'nchw' ? [1, 3, h, w] : [1, h, w, 3];
  return new ort.Tensor('float32', data, dims);
}

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
  const size = manifest.input_size, pre = manifest.preprocess;
  const map = fit(img, size, pre);
  const feeds = { [manifest.inputs[0].name]: toTensor(map.pixels, size, pre) };
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
