import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// The root `pnpm run docs` task (typedoc.json): the CLI's programmatic API and the demo
// package's are part of the API reference, every export with its TSDoc.
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

interface Reflection {
  name: string;
  comment?: { summary?: Array<{ text: string }> };
  signatures?: Reflection[];
  children?: Reflection[];
}

let dir: string;
let modules: Reflection[];
let output: string;

beforeAll(async () => {
  // typedoc resolves one package's imports of another through their built declarations.
  execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-b', join(root, 'packages/demo')], { stdio: 'inherit' });
  dir = await mkdtemp(join(tmpdir(), 'podtoken-cli-typedoc-'));
  const run = spawnSync(
    process.execPath,
    [join(root, 'node_modules/typedoc/bin/typedoc'), '--out', join(dir, 'html'), '--json', join(dir, 'api.json')],
    { cwd: root, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' }, timeout: 170_000 },
  );
  output = run.stdout + run.stderr;
  if (run.status !== 0) console.log(output);
  expect(run.status).toBe(0);
  modules = (JSON.parse(await readFile(join(dir, 'api.json'), 'utf8')) as Reflection).children ?? [];
}, 180_000);

afterAll(async () => {
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

// The names a package's src/index.ts exports, values and types.
async function exportedNames(name: string): Promise<string[]> {
  const index = await readFile(join(root, 'packages', name, 'src/index.ts'), 'utf8');
  const names: string[] = [];
  for (const [, list] of index.matchAll(/export (?:type )?\{([^}]*)\}/g)) {
    for (const item of list!.split(',')) {
      const exported = item.trim().split(/\s+as\s+/).at(-1);
      if (exported) names.push(exported);
    }
  }
  return names;
}

const summary = (r: Reflection | undefined) => [r?.comment, ...(r?.signatures ?? []).map((s) => s.comment)].flatMap((c) => c?.summary ?? []).map((p) => p.text).join('');

describe('the API reference', () => {
  it.each(['cli', 'demo'])('documents every export of @podtoken/%s, each with its TSDoc', async (name) => {
    const module = modules.find((m) => m.name === `@podtoken/${name}`);
    expect(module).toBeDefined();
    const documented = new Map((module?.children ?? []).map((child) => [child.name, child]));
    const names = await exportedNames(name);
    expect(names.length).toBeGreaterThan(5);
    for (const exported of names) {
      expect(documented.has(exported), `${exported} is in the reference`).toBe(true);
      expect(summary(documented.get(exported)).trim(), `${exported} has a TSDoc summary`).not.toBe('');
    }
    expect(output).not.toMatch(new RegExp(`warning.*packages/${name}\\b`));
  });
});
