'use strict';
/**
 * Renders a Lottie animation's frames with Skia's Skottie (canvaskit-wasm, on the CPU) and
 * writes them to stdout as raw RGBA, straight alpha, one frame after the other.
 *
 * A process of its own (started by lottie.repository.ts), not code in the API's process:
 * WebAssembly runs synchronously, so a slow or hostile animation would otherwise block the
 * event loop, and only a process can be killed when it runs too long or crashes.
 *
 * Job on stdin (JSON): { src, assets, width, height, frames } where assets maps the names
 * Skottie asks for (images, fonts) to files, and frames[i] is the animation frame (relative
 * to its in point) of output frame i. Exit 3 with one line on stderr: the
 * animation cannot be used; any other failure is a crash.
 */
const fs = require('node:fs');
const path = require('node:path');

// stdout carries frames only: whatever the WebAssembly module prints goes to stderr.
console.log = console.error;

const CANVASKIT = path.dirname(require.resolve('canvaskit-wasm/bin/full/canvaskit.js'));

/** The animation cannot be used: one marked line for lottie.repository.ts (WebAssembly may have printed its own before). */
function refuse(message) {
  process.stderr.write(`\nREFUSED: ${message}\n`);
  process.exit(3);
}

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

function write(buffer) {
  if (process.stdout.write(buffer)) return Promise.resolve();
  return new Promise((resolve) => process.stdout.once('drain', resolve));
}

async function main() {
  const job = await readStdin();
  const { width, height, frames } = job;
  const CanvasKitInit = require('canvaskit-wasm/bin/full/canvaskit.js');
  const toStderr = (text) => process.stderr.write(`${text}\n`);
  const CK = await CanvasKitInit({ locateFile: (file) => path.join(CANVASKIT, file), print: toStderr, printErr: toStderr });
  const json = fs.readFileSync(job.src, 'utf8');
  const assets = {};
  for (const [name, file] of Object.entries(job.assets || {})) {
    const bytes = fs.readFileSync(file);
    assets[name] = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  }
  let animation;
  try {
    animation = CK.MakeManagedAnimation(json, assets);
  } catch {
    // Skottie builds nested groups recursively: what fails here (a stack overflow, an abort) is the file's doing.
    refuse('Skottie failed to build this animation (groups nested too deeply, or damaged data)');
  }
  if (!animation) refuse('Skottie cannot read this animation (not a Lottie file, or one it does not support)');
  const surface = CK.MakeSurface(width, height);
  if (!surface) refuse(`no ${width}×${height} surface could be made`);
  const canvas = surface.getCanvas();
  const dest = CK.LTRBRect(0, 0, width, height);
  const info = { width, height, colorType: CK.ColorType.RGBA_8888, alphaType: CK.AlphaType.Unpremul, colorSpace: CK.ColorSpace.SRGB };
  let previous;
  let pixels;
  for (const frame of frames) {
    // A held last frame (or a repeated one) is written again, not drawn again.
    if (frame !== previous) {
      try {
        canvas.clear(CK.TRANSPARENT);
        animation.seekFrame(frame);
        animation.render(canvas, dest);
      } catch {
        refuse(`Skottie failed to draw frame ${frame} of this animation`);
      }
      const read = canvas.readPixels(0, 0, info);
      if (!read) throw new Error('readPixels failed');
      // Without a destination, readPixels returns a fresh copy out of the WebAssembly heap.
      pixels = Buffer.from(read.buffer, read.byteOffset, read.byteLength);
      previous = frame;
    }
    await write(pixels);
  }
  animation.delete();
  surface.delete();
}

process.stdout.on('error', () => process.exit(1)); // the encoder went away: its exit says why
main().catch((err) => {
  process.stderr.write(`${err && err.stack ? err.stack : String(err)}\n`);
  process.exit(1);
});
