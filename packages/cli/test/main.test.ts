import { describe, expect, it } from 'vitest';
import { main } from '../src/main.js';
import { capture } from './helpers.js';

describe('podtoken', () => {
  it('says how to run the demo, now its own package, and exits 2', async () => {
    for (const args of [['demo'], ['demo', '--duration', '5']]) {
      const io = capture();
      expect(await main(args, io)).toBe(2);
      expect(io.out()).toBe('');
      expect(io.err()).toContain('npx @podtoken/demo [options]');
      expect(io.err()).toContain('pnpm demo [options]');
    }
    const help = capture();
    expect(await main(['--help'], help)).toBe(0);
    expect(help.out()).toMatch(/^ {2}demo +how to run the demo \(its own package: npx @podtoken\/demo\)$/m);
  });

  it('prints the version, and exits 2 on no command or an unknown one', async () => {
    const version = capture();
    expect(await main(['--version'], version)).toBe(0);
    expect(version.out()).toMatch(/^\d+\.\d+\.\d+\n$/);
    expect(await main([], capture())).toBe(2);
    const unknown = capture();
    expect(await main(['frobnicate'], unknown)).toBe(2);
    expect(unknown.err()).toContain('podtoken: unknown command "frobnicate"');
  });
});
