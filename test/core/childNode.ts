// Child Node processes that load @podtoken/core as an app would, built from the current
// sources: no prior build needed (a fresh clone runs these tests right after install).
// core has no dependencies, so its sources transpiled file by file into a temporary
// folder (with `"type": "module"`) are a complete package that ESM `import` and CommonJS
// `require()` both load.
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { afterAll } from 'vitest';

const coreSrc = fileURLToPath(new URL('../../packages/core/src/', import.meta.url));
let built: Promise<string> | undefined;
let builtDir: string | undefined;

afterAll(async () => {
  if (builtDir !== undefined) await rm(builtDir, { recursive: true, force: true });
  builtDir = undefined;
  built = undefined;
});

/** The entry file (`index.js`) of @podtoken/core built from `packages/core/src` now; built once per test file. */
export function coreEntry(): Promise<string> {
  built ??= (async () => {
    const out = await mkdtemp(join(tmpdir(), 'podtoken-core-src-'));
    builtDir = out;
    const files = (await readdir(coreSrc, { recursive: true })).filter((file) => file.endsWith('.ts'));
    for (const file of files) {
      const source = await readFile(join(coreSrc, file), 'utf8');
      const { outputText, diagnostics } = ts.transpileModule(source, {
        fileName: file,
        reportDiagnostics: true,
        compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: true },
      });
      if (diagnostics !== undefined && diagnostics.length > 0) {
        throw new Error(`transpiling ${file}: ${ts.flattenDiagnosticMessageText(diagnostics[0]!.messageText, '\n')}`);
      }
      const target = join(out, file.replace(/\.ts$/, '.js'));
      await mkdir(dirname(target), { recursive: true });
      await writeFile(target, outputText);
    }
    await writeFile(join(out, 'package.json'), JSON.stringify({ type: 'module', sideEffects: false }));
    return join(out, 'index.js');
  })();
  return built;
}

/** How a child process ended, and what it printed. */
export interface ChildResult {
  /** Exit code, or null when a signal ended it (killed by the test, say). */
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** A running child: its output so far, and how it ends. */
export interface Child {
  readonly process: ReturnType<typeof spawn>;
  /** Everything printed on stdout so far. */
  stdout(): string;
  /** Resolves when the child has exited. */
  readonly exited: Promise<ChildResult>;
  /** Whether it is still running. */
  running(): boolean;
}

/**
 * Starts `node` running `script`, as an ES module (`.mjs`) or a CommonJS one (`.cjs`),
 * written to a temporary file. Killed after `timeoutMs` at the latest, so a process that
 * never exits fails its test instead of hanging it.
 */
export async function startNode(script: string, options: { type: 'esm' | 'cjs'; timeoutMs?: number }): Promise<Child> {
  const dir = await mkdtemp(join(tmpdir(), 'podtoken-child-'));
  const file = join(dir, options.type === 'esm' ? 'main.mjs' : 'main.cjs');
  await writeFile(file, script);
  const child = spawn(process.execPath, [file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let running = true;
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => void (stdout += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => void (stderr += chunk));
  const killer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 20_000);
  const exited = new Promise<ChildResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      running = false;
      clearTimeout(killer);
      void rm(dir, { recursive: true, force: true });
      resolve({ code, signal, stdout, stderr });
    });
  });
  return { process: child, stdout: () => stdout, exited, running: () => running };
}

/** Runs `script` to its end (see {@link startNode}). */
export async function runNode(script: string, options: { type: 'esm' | 'cjs'; timeoutMs?: number }): Promise<ChildResult> {
  return (await startNode(script, options)).exited;
}

/**
 * A child's exit and output for an assertion message, so a failure shows what the child
 * said, stderr included. Every string in `secrets` (the tokens the test wrote) is blanked
 * out first, so even a child that printed one cannot put it into the test's output.
 */
export function describeChild(result: ChildResult, secrets: readonly string[] = []): string {
  const redact = (text: string) => secrets.reduce((out, secret) => (secret.length >= 8 ? out.split(secret).join('[token]') : out), text);
  // Node 20 prints one ExperimentalWarning when CommonJS require()s an ES module: noise here.
  const stderr = result.stderr.replace(/^.*(ExperimentalWarning|--trace-warnings).*\n/gm, '');
  return `child exited with ${result.code ?? result.signal}\n--- stdout ---\n${redact(result.stdout)}\n--- stderr ---\n${redact(stderr)}`;
}
