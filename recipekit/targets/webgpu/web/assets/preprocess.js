// recipekit's preprocessing for the browser: an image's RGBA pixels to the model's input tensor, exactly
// as the manifest's `preprocess` declares. The same steps in the same order as recipekit/onnx/pixels.py
// (what the gates feed and Jetson bundles' check.py compute), so the three agree to the bit:
// letterbox (centred or anchored top-left), stretch, center-crop (with crop_fraction), multiple (each side
// a multiple of N, the size picked per image), fixed-height (right-padded to a width bucket), none; then
// colour order, scale, mean, std, layout. No browser scaling is used: canvas resampling differs per browser.

export function pixelsOf(img) {
  // The decoded RGBA pixels of an image (PNG decodes to the same bytes everywhere; JPEG decoders differ).
  const c = new OffscreenCanvas(img.width, img.height), g = c.getContext('2d');
  g.drawImage(img, 0, 0);
  return g.getImageData(0, 0, img.width, img.height).data;
}

// Python's round(): half to even, as Ultralytics and PaddleOCR round sizes.
export const roundHalfEven = (v) => { const f = Math.floor(v), d = v - f; return d > 0.5 || (d === 0.5 && f % 2 !== 0) ? f + 1 : f; };

const placed = (size, offset, resampler, ratio, pad) => ({ size, offset, resampler, ratio, pad });

export function geometry(ih, iw, [h, w], pre) {
  // Where the image lands on the (H, W) canvas: resized size, offset (negative: cropped), resampler, and the
  // mapping back to image pixels (ratio, pad).
  const mode = pre.resize || 'letterbox';
  if (mode === 'none') {
    if (ih !== h || iw !== w) throw new Error(`resize: none needs ${h}x${w} images, got ${ih}x${iw}`);
    return placed([h, w], [0, 0], 'linear', [1, 1], [0, 0]);
  }
  if (mode === 'stretch' || mode === 'multiple') return placed([h, w], [0, 0], 'linear', [w / iw, h / ih], [0, 0]);
  if (mode === 'letterbox') {
    const r = Math.min(h / ih, w / iw), nh = roundHalfEven(ih * r), nw = roundHalfEven(iw * r);
    let top = 0, left = 0;
    if ((pre.pad || 'center') === 'center') [top, left] = [roundHalfEven((h - nh) / 2 - 0.1), roundHalfEven((w - nw) / 2 - 0.1)];
    return placed([nh, nw], [top, left], 'linear', [r, r], [left, top]);
  }
  if (mode === 'fixed-height') {
    const nw = Math.max(1, Math.min(w, Math.ceil(h * (iw / ih))));
    return placed([h, nw], [0, 0], 'linear', [nw / iw, h / ih], [0, 0]);
  }
  if (mode === 'center-crop') {
    // torchvision Resize + CenterCrop: cover (H, W) / crop_fraction, then cut the centre out.
    const f = pre.crop_fraction ?? 1.0, ch = Math.floor(h / f), cw = Math.floor(w / f);
    let nh, nw;
    if (ch / ih >= cw / iw) [nh, nw] = [ch, Math.trunc(ch * iw / ih)];
    else [nh, nw] = [Math.trunc(cw * ih / iw), cw];
    [nh, nw] = [Math.max(nh, ch), Math.max(nw, cw)];
    const top = roundHalfEven((nh - h) / 2), left = roundHalfEven((nw - w) / 2);
    return placed([nh, nw], [-top, -left], 'pil', [nw / iw, nh / ih], [-left, -top]);
  }
  throw new Error(`unknown resize mode ${mode}`);
}

export function deployedSize(ih, iw, pre, shapes) {
  // The (H, W) a deployment feeds for this image; `shapes`: the recipe's, export size first.
  const [h, w] = shapes[0];
  if (pre.resize === 'multiple') {
    const n = pre.multiple ?? 32, r = Math.min(h / ih, w / iw);
    const nh = Math.trunc(ih * r), nw = Math.trunc(iw * r);
    return [Math.max(n, roundHalfEven(nh / n) * n), Math.max(n, roundHalfEven(nw / n) * n)];
  }
  if (pre.resize === 'fixed-height') {
    const need = Math.ceil(h * (iw / ih));
    const widths = [...new Set(shapes.filter((s) => s[0] === h).map((s) => s[1]))].sort((a, b) => a - b);
    return [h, widths.find((x) => x >= need) ?? widths[widths.length - 1]];
  }
  return [h, w];
}

const COEF_BITS = 11, ONE = 1 << COEF_BITS;

function taps(nIn, nOut) {
  // Per output index: the first source index and the second one's weight in 11-bit fixed point.
  const first = new Int32Array(nOut), weight = new Int32Array(nOut), s = nIn / nOut;
  for (let o = 0; o < nOut; o++) {
    let f = (o + 0.5) * s - 0.5, i = Math.floor(f);
    f -= i;
    if (i < 0) { i = 0; f = 0; }
    if (i >= nIn - 1) { i = nIn - 1; f = 0; }
    first[o] = i; weight[o] = Math.floor(f * ONE + 0.5);
  }
  return { first, weight };
}

function linear(src, sw, sh, dw, dh) {
  // Bilinear, half-pixel centres, edges clamped, integer arithmetic (pixels.linear): RGBA in, RGBA out.
  const ty = taps(sh, dh), tx = taps(sw, dw), dst = new Uint8ClampedArray(dw * dh * 4), half = 1 << (2 * COEF_BITS - 1);
  for (let y = 0; y < dh; y++) {
    const y0 = ty.first[y], y1 = Math.min(y0 + 1, sh - 1), wy = ty.weight[y];
    for (let x = 0; x < dw; x++) {
      const x0 = tx.first[x], x1 = Math.min(x0 + 1, sw - 1), wx = tx.weight[x], o = (y * dw + x) * 4;
      for (let c = 0; c < 3; c++) {
        const top = src[(y0 * sw + x0) * 4 + c] * (ONE - wx) + src[(y0 * sw + x1) * 4 + c] * wx;
        const bottom = src[(y1 * sw + x0) * 4 + c] * (ONE - wx) + src[(y1 * sw + x1) * 4 + c] * wx;
        dst[o + c] = (top * (ONE - wy) + bottom * wy + half) >> (2 * COEF_BITS);
      }
      dst[o + 3] = 255;
    }
  }
  return dst;
}

// Pillow's Image.resize(BILINEAR) on 8-bit images, as its Resample.c computes it (pixels.pil): a triangle
// filter widened by the scale when shrinking, 22-bit fixed-point coefficients, a horizontal then a
// vertical pass, each rounded to 8 bits.
const PRECISION_BITS = 22;

function pilCoefficients(inSize, outSize) {
  const scale = inSize / outSize, filterscale = Math.max(scale, 1), support = filterscale, ss = 1.0 / filterscale;
  const ksize = Math.ceil(support) * 2 + 1, bounds = new Int32Array(outSize * 2), kk = new Float64Array(outSize * ksize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale, k = new Float64Array(ksize);
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
        let acc = half;
        for (let t = 0; t < n; t++) {
          const at = horizontal ? (y * sw + first + t) * 4 : ((first + t) * sw + x) * 4;
          acc += src[at + c] * kk[i * ksize + t];
        }
        dst[o + c] = Math.min(255, Math.max(0, Math.floor(acc / one)));
      }
      dst[o + 3] = 255;
    }
  }
  return dst;
}

function resampled(src, iw, ih, [rh, rw], how) {
  if (rh === ih && rw === iw) return src;
  if (how === 'pil') return pilPass(pilPass(src, iw, ih, rw, ih, true), rw, ih, rw, rh, false);
  return linear(src, iw, ih, rw, rh);
}

export function fit(src, iw, ih, [h, w], pre) {
  // The (H, W) RGBA canvas the model sees, which of its pixels are the image's (not padding), the geometry.
  const geo = geometry(ih, iw, [h, w], pre), [rh, rw] = geo.size, [top, left] = geo.offset;
  const sized = resampled(src, iw, ih, geo.size, geo.resampler), pad = pre.pad_value ?? 114;
  const pixels = new Uint8ClampedArray(w * h * 4), inside = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const sy = y - top, sx = x - left, o = (y * w + x) * 4, on = sy >= 0 && sy < rh && sx >= 0 && sx < rw;
      for (let c = 0; c < 3; c++) pixels[o + c] = on ? sized[(sy * rw + sx) * 4 + c] : pad;
      pixels[o + 3] = 255; inside[y * w + x] = on ? 1 : 0;
    }
  }
  return { pixels, inside, ratio: geo.ratio, pad: geo.pad };
}

export function toTensorData(pixels, inside, [h, w], pre) {
  // Colour order, scale, mean, std in float64, rounded to float32 once; padding as pad_tensor_value if set.
  const data = new Float32Array(3 * h * w), order = (pre.color || 'rgb') === 'rgb' ? [0, 1, 2] : [2, 1, 0];
  const fill = pre.pad_tensor_value, nchw = (pre.layout || 'nchw') === 'nchw';
  for (let i = 0; i < h * w; i++) {
    for (let c = 0; c < 3; c++) {
      const v = fill != null && !inside[i] ? fill : (pixels[i * 4 + order[c]] * pre.scale - pre.mean[c]) / pre.std[c];
      data[nchw ? c * h * w + i : i * 3 + c] = v;
    }
  }
  return { data, dims: nchw ? [1, 3, h, w] : [1, h, w, 3] };
}

export function preprocess(src, iw, ih, size, pre) {
  // RGBA pixels of an (ih, iw) image -> { data (Float32Array), dims, pixels (the canvas), ratio, pad }.
  const canvas = fit(src, iw, ih, size, pre);
  return { ...toTensorData(canvas.pixels, canvas.inside, size, pre), pixels: canvas.pixels, ratio: canvas.ratio, pad: canvas.pad };
}
