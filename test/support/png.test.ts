/**
 * The test PNG decoder against PNGs written here with every row filter, RGB and RGBA, IDAT
 * split over several chunks. (The browser test checks it on Chromium's own screenshots.)
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { crc32, deflateSync } from "node:zlib";
import { countColour, decodePng } from "./png.ts";

function chunk(type: string, data: Uint8Array): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, "latin1");
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])));
  return Buffer.concat([head, data, crc]);
}

/** Encodes `rgba` with row y using filter `filterOf(y)`; `channels` 3 drops alpha. */
function encode(width: number, height: number, rgba: Uint8Array, channels: 3 | 4, filterOf: (y: number) => number) {
  const stride = width * channels;
  const rows: number[] = [];
  let prev = new Uint8Array(stride);
  for (let y = 0; y < height; y++) {
    const row = new Uint8Array(stride);
    for (let x = 0; x < width; x++)
      for (let c = 0; c < channels; c++) row[x * channels + c] = rgba[(y * width + x) * 4 + c]!;
    const filter = filterOf(y);
    rows.push(filter);
    for (let i = 0; i < stride; i++) {
      const a = i >= channels ? row[i - channels]! : 0;
      const b = prev[i]!;
      const c = i >= channels ? prev[i - channels]! : 0;
      const p = a + b - c;
      const paeth =
        Math.abs(p - a) <= Math.abs(p - b) && Math.abs(p - a) <= Math.abs(p - c)
          ? a
          : Math.abs(p - b) <= Math.abs(p - c)
            ? b
            : c;
      const predictor = [0, a, b, (a + b) >> 1, paeth][filter]!;
      rows.push((row[i]! - predictor) & 0xff);
    }
    prev = row;
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, channels === 4 ? 6 : 2, 0, 0, 0], 8);
  const z = deflateSync(Buffer.from(rows));
  const third = Math.ceil(z.length / 3);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("tEXt", Buffer.from("Comment\0test", "latin1")),
    chunk("IDAT", z.subarray(0, third)),
    chunk("IDAT", z.subarray(third, 2 * third)),
    chunk("IDAT", z.subarray(2 * third)),
    chunk("IEND", new Uint8Array(0)),
  ]);
}

describe("decodePng", () => {
  const width = 23;
  const height = 17;
  // Pseudo-random pixels, so every filter's neighbours matter.
  const rgba = new Uint8Array(width * height * 4);
  let seed = 12345;
  for (let i = 0; i < rgba.length; i++) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    rgba[i] = seed >>> 24;
  }

  for (const channels of [3, 4] as const) {
    for (const filter of [0, 1, 2, 3, 4, -1]) {
      it(`${channels === 4 ? "RGBA" : "RGB"}, ${filter < 0 ? "mixed filters" : `filter ${filter}`}`, () => {
        const png = encode(width, height, rgba, channels, (y) => (filter < 0 ? y % 5 : filter));
        const image = decodePng(png);
        assert.equal(image.width, width);
        assert.equal(image.height, height);
        const want = Uint8Array.from(rgba, (v, i) => (channels === 3 && i % 4 === 3 ? 255 : v));
        assert.deepEqual(image.rgba, want);
      });
    }
  }

  it("rejects a corrupted chunk, a bad signature and an unsupported format", () => {
    const png = encode(4, 4, new Uint8Array(64), 3, () => 0);
    const bad = Buffer.from(png);
    bad[40] = bad[40]! ^ 1;
    assert.throws(() => decodePng(bad), /bad CRC/);
    assert.throws(() => decodePng(png.subarray(1)), /signature/);
    const grey = Buffer.from(png);
    grey[8 + 8 + 9] = 0; // colour type 0, CRC fixed below
    grey.writeUInt32BE(crc32(grey.subarray(12, 12 + 4 + 13)), 12 + 4 + 13);
    assert.throws(() => decodePng(grey), /colour type 0/);
  });

  it("counts pixels of one colour in a box, clipped to the image", () => {
    const px = new Uint8Array(10 * 10 * 4);
    for (let y = 0; y < 10; y++) for (let x = 0; x < 4; x++) px.set([51, 170, 119, 255], (y * 10 + x) * 4); // a 4-wide green stripe
    const image = decodePng(encode(10, 10, px, 4, (y) => y % 5));
    assert.equal(countColour(image, { x: 0, y: 0, width: 10, height: 10 }, [51, 170, 119]), 40);
    assert.equal(countColour(image, { x: 2, y: 5, width: 100, height: 100 }, [51, 170, 119]), 10);
    assert.equal(countColour(image, { x: 0, y: 0, width: 10, height: 10 }, [204, 51, 51]), 0);
  });
});
