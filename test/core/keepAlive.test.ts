// Whether a source keeps its process alive, checked on real child processes (an ES module
// and a CommonJS one) running core built from the current sources:
//  - while anyone waits for the first token, the process lives to hear the answer (the
//    token, or TOKEN_NOT_READY at readyTimeout; with readyTimeout 0, for as long as it takes);
//  - an open source that watches its folder (the default) keeps it alive until close(),
//    whether or not the folder exists yet; with `watch: false`, a loaded source does not.
import { createIssuer, ProjectedVolume, type Issuer } from '@podtoken/testing';
import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { sleep, tempDir, until } from '../helpers.js';
import { coreEntry, describeChild, runNode, startNode } from './childNode.js';

let issuer: Issuer;
let entry: string;
beforeAll(async () => {
  issuer = await createIssuer();
  entry = await coreEntry();
}, 60_000);

type ModuleType = 'esm' | 'cjs';

/** `body` as an ES module (top-level await) or a CommonJS script (an async function, as such apps write it). */
function program(type: ModuleType, body: string): string {
  return type === 'esm'
    ? `import { FileTokenSource } from ${JSON.stringify(pathToFileURL(entry).href)};\n${body}\n`
    : `'use strict';\nconst { FileTokenSource } = require(${JSON.stringify(entry)});\n(async () => {\n${body}\n})();\n`;
}

/** Waits with `call` ('ready' or 'getToken') and prints how it ended; exit code 3 on a rejection. */
function awaitFirstToken(call: 'ready' | 'getToken'): string {
  return `
    console.log('waiting');
    try {
      await source.${call}();
      console.log('loaded', source.current.kind);
    } catch (error) {
      console.log('rejected', error.code);
      process.exitCode = 3;
    }
    await source.close();`;
}

describe.each<ModuleType>(['esm', 'cjs'])('a %s process waiting for its first token', (type) => {
  it('with the folder missing (volume not mounted, wrong path), lives until readyTimeout rejects with TOKEN_NOT_READY', async () => {
    const path = join(await tempDir(), 'not-mounted', 'token');
    const child = await runNode(
      program(type, `const source = new FileTokenSource({ path: ${JSON.stringify(path)}, readyTimeout: 300 });${awaitFirstToken('ready')}`),
      { type },
    );
    // Before: ESM exit 13 (unsettled top-level await), CommonJS exit 0, the handler never run.
    expect(child.stdout, describeChild(child)).toContain('rejected TOKEN_NOT_READY');
    expect(child.code, describeChild(child)).toBe(3);
  });

  it('with watch: false and no file yet, lives until readyTimeout rejects getToken() with TOKEN_NOT_READY', async () => {
    const path = join(await tempDir(), 'token');
    const child = await runNode(
      program(type, `const source = new FileTokenSource({ path: ${JSON.stringify(path)}, watch: false, readyTimeout: 300 });${awaitFirstToken('getToken')}`),
      { type },
    );
    expect(child.stdout, describeChild(child)).toContain('rejected TOKEN_NOT_READY');
    expect(child.code, describeChild(child)).toBe(3);
  });

  it.each([
    ['the folder missing', true],
    ['watch: false', false],
  ])('with readyTimeout 0 and %s, waits for as long as it takes and gets the token', async (_name, watch) => {
    const dir = await tempDir();
    const volumeDir = watch ? join(dir, 'later') : dir;
    const path = join(volumeDir, 'token');
    const child = await startNode(
      program(
        type,
        `const source = new FileTokenSource({ path: ${JSON.stringify(path)}, watch: ${watch}, readyTimeout: 0, pollInterval: 50 });${awaitFirstToken('ready')}`,
      ),
      { type },
    );
    await until('the child started waiting', () => child.stdout().includes('waiting') || !child.running(), 15_000);
    await sleep(700);
    expect(child.running(), describeChild({ code: null, signal: null, stdout: child.stdout(), stderr: '' })).toBe(true);
    const token = await issuer.mint();
    await new ProjectedVolume({ dir: volumeDir }).write({ token });
    const result = await child.exited;
    expect(result.stdout, describeChild(result, [token])).toContain('loaded bound');
    expect(result.code, describeChild(result, [token])).toBe(0);
  });
});

describe.each<ModuleType>(['esm', 'cjs'])('a %s process with an idle source', (type) => {
  // An unref()ed timer fires only if something else holds the process open: the source.
  const probe = `setTimeout(() => { console.log('still alive'); void source.close(); }, 300).unref();`;

  it('a loaded source watching its folder keeps the process alive until close()', async () => {
    const volume = new ProjectedVolume({ dir: await tempDir() });
    const token = await issuer.mint();
    await volume.write({ token });
    const child = await runNode(
      program(type, `const source = new FileTokenSource({ path: ${JSON.stringify(volume.path('token'))} }); await source.ready(); console.log('loaded'); ${probe}`),
      { type },
    );
    expect(child.stdout, describeChild(child, [token])).toContain('loaded\nstill alive');
    expect(child.code, describeChild(child, [token])).toBe(0);
  });

  it('a loaded source with watch: false lets the process exit by itself', async () => {
    const volume = new ProjectedVolume({ dir: await tempDir() });
    const token = await issuer.mint();
    await volume.write({ token });
    const child = await runNode(
      program(type, `const source = new FileTokenSource({ path: ${JSON.stringify(volume.path('token'))}, watch: false }); await source.ready(); console.log('loaded'); ${probe}`),
      { type },
    );
    expect(child.stdout, describeChild(child, [token])).toBe('loaded\n');
    expect(child.code, describeChild(child, [token])).toBe(0);
  });

  it('a source watching a folder that is not there yet keeps the process alive until close(), nobody waiting', async () => {
    const path = join(await tempDir(), 'not-mounted', 'token');
    const child = await runNode(program(type, `const source = new FileTokenSource({ path: ${JSON.stringify(path)} }); console.log('created'); ${probe}`), { type });
    expect(child.stdout, describeChild(child)).toBe('created\nstill alive\n');
    expect(child.code, describeChild(child)).toBe(0);
  });

  it('with readyTimeout 0 and the default options, getToken() waits for a file that appears later', async () => {
    const dir = await tempDir();
    const path = join(dir, 'token');
    const child = await startNode(
      program(type, `const source = new FileTokenSource({ path: ${JSON.stringify(path)}, readyTimeout: 0 });${awaitFirstToken('getToken')}`),
      { type },
    );
    await until('the child started waiting', () => child.stdout().includes('waiting') || !child.running(), 15_000);
    const token = await issuer.mint();
    await writeFile(join(dir, '.token.tmp'), token);
    await rename(join(dir, '.token.tmp'), path);
    const result = await child.exited;
    expect(result.stdout, describeChild(result, [token])).toContain('loaded bound');
    expect(result.code, describeChild(result, [token])).toBe(0);
  });
});
