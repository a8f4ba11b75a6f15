import { describe, expect, it } from 'vitest';
import { runDemo, runDemoScenario } from '../src/demo.js';
import { capture, summaryRow } from './helpers.js';

describe('podtoken-demo', () => {
  it('rotates short-lived tokens under load to a zero-failure summary whose counts equal the server', async () => {
    const io = capture();
    // A rotation every 0.8 s, as with 1 s tokens, but each token outlives its rotation by
    // 3.2 s rather than 0.2 s: a busy CI machine may delay the fake kubelet's timer by a
    // second or more, and that must not fail this test (the demo reports it, though).
    const code = await runDemo(['--duration', '3', '--token-ttl', '4', '--rotate-after', '0.2', '--concurrency', '1'], io);
    const out = io.out();
    if (code !== 0) console.log('demo output (holds no token):', out, io.err());
    expect(io.err()).toBe('');
    expect(code).toBe(0);

    // Plain progress lines (stdout is not a terminal), then the table.
    expect(out).toMatch(/^\[ +\d+\.\ds\] rotations \d+ \| requests \d+: ok \d+, 401 0, without token 0, errors 0 \| last pickup /m);
    const [requests, ok, unauthorized, withoutToken, errors] = summaryRow(out, 'total')!;
    expect(requests).toBeGreaterThan(0);
    expect([ok, unauthorized, withoutToken, errors]).toEqual([requests, 0, 0, 0]);
    // The verifying server's own counts, printed beside ours.
    expect(summaryRow(out, 'server')).toEqual([requests, ok, unauthorized, withoutToken]);
    for (const client of ['axios', 'got', 'fetch']) expect(summaryRow(out, client)![0]).toBeGreaterThan(0);

    // Rotations every 0.8 s for 3 s (fewer when a busy machine delays the fake kubelet).
    const rotations = /rotations +(\d+), (\d+) seen at the server/.exec(out);
    expect(Number(rotations?.[1])).toBeGreaterThanOrEqual(1);
    expect(Number(rotations?.[2])).toBeGreaterThanOrEqual(1);
    expect(out).toMatch(/pickup latency +p50 [\d.]+m?s {2}p99 [\d.]+m?s {2}max [\d.]+m?s/);
    expect(out).toContain("client totals equal the server's own counts ✓");
    expect(out).toContain('✓ every request was authenticated');
  });

  it('stops early on the signal and reports it as interrupted, counts still matching', async () => {
    const controller = new AbortController();
    let progressed = 0;
    const result = await runDemoScenario({
      duration: 60,
      tokenTtl: 4,
      rotateAfter: 0.2,
      concurrency: 1,
      signal: controller.signal,
      progressInterval: 100,
      onProgress: (p) => {
        // Stop once requests have flowed: no timing assumption beyond "it made progress".
        if (p.server.ok > 0 && ++progressed === 3) controller.abort();
      },
    });
    expect(result.interrupted).toBe(true);
    expect(result.elapsedMs).toBeLessThan(60_000);
    expect(result.countsMatch).toBe(true);
    expect(result.total.requests).toBe(result.server.ok + result.server.unauthorized + result.server.missing);
    expect(result.passed).toBe(true);
  });

  it('exits 2 on a bad option', async () => {
    const io = capture();
    expect(await runDemo(['--duration', 'soon'], io)).toBe(2);
    expect(io.err()).toContain('--duration must be a number of seconds');
    expect(await runDemo(['--concurrency', '0'], capture())).toBe(2);
    expect(await runDemo(['--rotate-after', '1.5'], capture())).toBe(2);
    expect(await runDemo(['extra'], capture())).toBe(2);
    // What was typed is echoed with its control characters escaped.
    for (const args of [['--duration', '5\x1b]0;pwned\x07'], ['--pwned\x9b2J']]) {
      const hostile = capture();
      expect(await runDemo(args, hostile)).toBe(2);
      expect(hostile.err()).toContain('pwned');
      expect(/\p{Cc}/u.test(hostile.err().replaceAll('\n', ''))).toBe(false);
    }
  });
});
