import { Worker } from 'node:worker_threads';

// The kubelet is another process: its writes do not wait for the app's event loop. In the
// rotation storm the app's loop is saturated on purpose (50 clients and the verifying
// server share it), so a writer on that loop would rotate at the loop's pace, not every
// 20 ms. This runs the kubelet's atomic writer (the steps ProjectedVolume replays, with
// the synchronous calls a Go program makes) on its own thread, continuing a volume that
// ProjectedVolume started.

const WRITER = `
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const { join } = require('node:path');
const { dir, file, tokens, every } = workerData;
const pad = (n, w = 2) => String(n).padStart(w, '0');
let sequence = 0;
function folderName() {
  const d = new Date();
  const stamp = d.getUTCFullYear() + '_' + pad(d.getUTCMonth() + 1) + '_' + pad(d.getUTCDate()) + '_' + pad(d.getUTCHours()) + '_' + pad(d.getUTCMinutes()) + '_' + pad(d.getUTCSeconds());
  sequence += 1;
  return '..' + stamp + '.' + pad(sequence, 6) + pad(Math.floor(Math.random() * 1000), 3);
}
function write(token) {
  const folder = folderName();
  fs.mkdirSync(join(dir, folder));
  fs.writeFileSync(join(dir, folder, file), token, { mode: 0o644 });
  let previous;
  try { previous = fs.readlinkSync(join(dir, '..data')); } catch {}
  fs.rmSync(join(dir, '..data_tmp'), { force: true });
  fs.symlinkSync(folder, join(dir, '..data_tmp'));
  fs.renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
  const swappedAt = performance.timeOrigin + performance.now();
  try { fs.symlinkSync('..data/' + file, join(dir, file)); } catch (error) { if (error.code !== 'EEXIST') throw error; }
  if (previous !== undefined && previous !== folder) fs.rmSync(join(dir, previous), { recursive: true, force: true });
  return swappedAt;
}
let index = 0;
const start = performance.now();
function next() {
  if (index >= tokens.length) { parentPort.postMessage({ done: true }); return; }
  const swappedAt = write(tokens[index]);
  parentPort.postMessage({ index, swappedAt });
  index += 1;
  // On schedule from the start, not from the end of the last write: no drift.
  setTimeout(next, Math.max(0, start + index * every - performance.now()));
}
parentPort.on('message', (message) => { if (message === 'stop') process.exit(0); });
next();
`;

export interface ThreadRotation {
  /** Index into the tokens given. */
  readonly index: number;
  /** When `..data` was swapped, on this thread's performance.now() clock. */
  readonly swappedAt: number;
}

/**
 * Writes `tokens` one after another into the projected volume at `dir` (which must already
 * hold the kubelet layout), one every `every` ms, from a worker thread.
 */
export function startKubeletThread(options: {
  dir: string;
  file?: string;
  tokens: readonly string[];
  every: number;
  onRotate: (rotation: ThreadRotation) => void;
}): { done: Promise<void>; stop(): Promise<void> } {
  const worker = new Worker(WRITER, {
    eval: true,
    workerData: { dir: options.dir, file: options.file ?? 'token', tokens: options.tokens, every: options.every },
  });
  const done = new Promise<void>((resolve, reject) => {
    worker.on('message', (message: { done?: boolean; index?: number; swappedAt?: number }) => {
      if (message.done) {
        resolve();
        return;
      }
      // Both clocks as absolute milliseconds, then back onto this thread's performance.now().
      options.onRotate({ index: message.index!, swappedAt: message.swappedAt! - performance.timeOrigin });
    });
    worker.on('error', reject);
    worker.on('exit', () => resolve());
  });
  return {
    done,
    async stop() {
      await worker.terminate();
    },
  };
}
