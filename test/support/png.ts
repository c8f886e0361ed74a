/**
 * A minimal PNG decoder for the screenshots Chromium takes: 8-bit RGB or RGBA (colour types
 * 2 and 6), not interlaced. Chunks are walked and CRC-checked, IDAT is inflated with
 * node:zlib and the five row filters (PNG spec §9) are undone. Anything else throws, so a
 * change in what Chromium writes fails loudly instead of being misread.
 */
import { crc32, inflateSync } from "node:zlib";

export interface Image {
  readonly width: number;
  readonly height: number;
  /** RGBA, 4 bytes a pixel, rows top to bottom; alpha is 255 for an RGB file. */
  readonly rgba: Uint8Array;
}

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

export function decodePng(png: Uint8Array): Image {
  const buf = Buffer.from(png.buffer, png.byteOffset, png.byteLength);
  if (buf.length < 8 || !buf.subarray(0, 8).equals(SIGNATURE)) throw new Error("not a PNG: bad signature");
  let width = 0;
  let height = 0;
  let channels = 0;
  const idat: Buffer[] = [];
  let sawEnd = false;
  for (let pos = 8; pos < buf.length && !sawEnd; ) {
    if (pos + 12 > buf.length) throw new Error(`PNG: truncated chunk at byte ${pos}`);
    const length = buf.readUInt32BE(pos);
    const type = buf.toString("latin1", pos + 4, pos + 8);
    const end = pos + 8 + length;
    if (end + 4 > buf.length) throw new Error(`PNG: chunk ${type} runs past the end`);
    const data = buf.subarray(pos + 8, end);
    if (crc32(buf.subarray(pos + 4, end)) !== buf.readUInt32BE(end)) throw new Error(`PNG: bad CRC in chunk ${type}`);
    switch (type) {
      case "IHDR": {
        width = data.readUInt32BE(0);
        height = data.readUInt32BE(4);
        const [depth, colourType, compression, filter, interlace] = data.subarray(8, 13);
        if (depth !== 8) throw new Error(`PNG: bit depth ${depth} not supported (only 8)`);
        if (colourType === 2) channels = 3;
        else if (colourType === 6) channels = 4;
        else throw new Error(`PNG: colour type ${colourType} not supported (only RGB and RGBA)`);
        if (compression !== 0 || filter !== 0) throw new Error("PNG: unknown compression or filter method");
        if (interlace !== 0) throw new Error("PNG: interlaced images not supported");
        break;
      }
      case "IDAT":
        idat.push(data);
        break;
      case "IEND":
        sawEnd = true;
        break;
      default:
        // A critical chunk we do not know (PLTE cannot occur with colour types 2/6 that matter here).
        if ((type.charCodeAt(0) & 0x20) === 0 && type !== "PLTE")
          throw new Error(`PNG: unknown critical chunk ${type}`);
    }
    pos = end + 4;
  }
  if (channels === 0) throw new Error("PNG: no IHDR");
  if (!sawEnd) throw new Error("PNG: no IEND");
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  if (raw.length !== height * (stride + 1)) {
    throw new Error(`PNG: ${raw.length} bytes of image data, expected ${height * (stride + 1)}`);
  }
  const rgba = new Uint8Array(width * height * 4);
  let prev = new Uint8Array(stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    const row = new Uint8Array(stride);
    for (let i = 0; i < stride; i++) {
      const a = i >= channels ? row[i - channels]! : 0;
      const b = prev[i]!;
      const c = i >= channels ? prev[i - channels]! : 0;
      let predictor: number;
      switch (filter) {
        case 0:
          predictor = 0;
          break;
        case 1:
          predictor = a;
          break;
        case 2:
          predictor = b;
          break;
        case 3:
          predictor = (a + b) >> 1;
          break;
        case 4: {
          const p = a + b - c;
          const pa = Math.abs(p - a);
          const pb = Math.abs(p - b);
          const pc = Math.abs(p - c);
          predictor = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
          break;
        }
        default:
          throw new Error(`PNG: unknown row filter ${filter} in row ${y}`);
      }
      row[i] = (line[i]! + predictor) & 0xff;
    }
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 4;
      rgba[o] = row[x * channels]!;
      rgba[o + 1] = row[x * channels + 1]!;
      rgba[o + 2] = row[x * channels + 2]!;
      rgba[o + 3] = channels === 4 ? row[x * channels + 3]! : 255;
    }
    prev = row;
  }
  return { width, height, rgba };
}

/** How many pixels in the rectangle (clipped to the image) have exactly the colour [r, g, b]. */
export function countColour(
  image: Image,
  box: { x: number; y: number; width: number; height: number },
  [r, g, b]: readonly [number, number, number],
): number {
  const x0 = Math.max(0, Math.floor(box.x));
  const y0 = Math.max(0, Math.floor(box.y));
  const x1 = Math.min(image.width, Math.ceil(box.x + box.width));
  const y1 = Math.min(image.height, Math.ceil(box.y + box.height));
  let n = 0;
  for (let y = y0; y < y1; y++) {
    for (let x = x0; x < x1; x++) {
      const o = (y * image.width + x) * 4;
      if (image.rgba[o] === r && image.rgba[o + 1] === g && image.rgba[o + 2] === b) n++;
    }
  }
  return n;
}
