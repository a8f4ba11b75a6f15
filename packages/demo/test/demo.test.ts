import { describe, expect, it } from 'vitest';
import { DIAGNOSTICS_CHANNELS } from '@podtoken/core';
import { runDemo, runDemoScenario, type DemoResult } from '../src/demo.js';
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

    // What an operator sees: core's events for the source, checked against the kubelet,
    // and the readiness endpoint's answer over HTTP.
    expect(out).toMatch(/\| source ok, expires in [\d.]+s, \d+ token:refreshed$/m);
    const events = /^ {2}events +(\d+) token:refreshed, 1 token:loaded, 0 read:failed, 0 request:unauthorized(, \d+ read:finished)?$/m.exec(out);
    expect(events).not.toBeNull();
    // One token:refreshed per rotation under load, plus the one that started the kubelet's schedule.
    const refreshed = /(\d+) token:refreshed for the (\d+) tokens the fake kubelet wrote after the first, each matched by its exp ✓/.exec(out);
    expect(Number(refreshed?.[1])).toBe(Number(events?.[1]));
    expect(Number(refreshed?.[2])).toBe(Number(rotations?.[1]) + 1);
    expect(out).toContain('no event message holds a token ✓');
    expect(out).toMatch(/^ {2}readiness +GET \/ready answered 200 \(demo-app: ok, expires in [\d.]+s\) ✓$/m);
  });

  it('prints the events and the readiness answer in --json', async () => {
    const io = capture();
    const code = await runDemo(['--duration', '1', '--token-ttl', '4', '--rotate-after', '0.2', '--concurrency', '1', '--json'], io);
    if (code !== 0) console.log('demo output (holds no token):', io.out(), io.err());
    expect(code).toBe(0);
    const result = JSON.parse(io.out()) as DemoResult;
    expect(Object.keys(result.events).sort()).toEqual(Object.values(DIAGNOSTICS_CHANNELS).sort());
    expect(result.events['podtoken:token:loaded']).toBe(1);
    expect(result.events['podtoken:read:failed']).toBe(0);
    expect(result.events['podtoken:request:unauthorized']).toBe(0);
    expect(result.events['podtoken:token:refreshed']).toBe(result.tokensWritten - 1 - result.skippedTokens);
    expect(result.events['podtoken:token:refreshed']).toBeGreaterThanOrEqual(1);
    expect(result).toMatchObject({ eventsMatchKubelet: true, eventsHoldNoToken: true, readiness: { status: 200, ready: true, state: 'ok' } });
    expect(result.readiness.expiresIn).toBeGreaterThan(0);
    expect(result.readiness.expiresIn).toBeLessThanOrEqual(4_000);
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
    expect(result.readiness.status).toBe(200);
    expect(result.eventsMatchKubelet).toBe(true);
    expect(result.eventsHoldNoToken).toBe(true);
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
