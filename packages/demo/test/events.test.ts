import { channel } from 'node:diagnostics_channel';
import { createIssuer } from '@podtoken/testing';
import { describe, expect, it } from 'vitest';
import { leaksToken, matchKubelet, recordEvents } from '../src/internal/events.js';

describe("the demo's event checks", () => {
  it('counts only the messages that belong to the demo, by channel, until closed', () => {
    const recorder = recordEvents((message) => (message as { source?: { name?: string } }).source?.name === 'mine');
    try {
      channel('podtoken:token:refreshed').publish({ source: { name: 'mine' } });
      channel('podtoken:token:refreshed').publish({ source: { name: 'another app' } });
      channel('podtoken:read:failed').publish({ source: { name: 'mine' } });
    } finally {
      recorder.close();
    }
    channel('podtoken:token:refreshed').publish({ source: { name: 'mine' } });
    const counts = recorder.counts();
    expect(counts['podtoken:token:refreshed']).toBe(1);
    expect(counts['podtoken:read:failed']).toBe(1);
    expect(counts['podtoken:token:loaded']).toBe(0);
    expect(recorder.messages.map((m) => m.channel)).toEqual(['podtoken:token:refreshed', 'podtoken:read:failed']);
  });

  it('finds a token, or its signature alone, in a message however deep, and in a body', async () => {
    const token = await (await createIssuer()).mint({ expirationSeconds: 60 });
    const signature = token.split('.')[2]!;
    expect(leaksToken([{ source: { name: 'a' }, token: { kind: 'bound' } }, '{"ready":true}'], [token])).toBe(false);
    expect(leaksToken([{ a: { b: { c: { d: { e: `Bearer ${token}` } } } } }], [token])).toBe(true);
    expect(leaksToken([{ message: `bad signature ${signature}` }], [token])).toBe(true);
    expect(leaksToken([`{"token":"${token}"}`], [token])).toBe(true);
  });

  it('matches token:loaded and token:refreshed to the kubelet\'s writes, in order, each once, ending on the last', () => {
    const written = [1000, 2000, 3000, 4000];
    const events = (loaded: number, ...refreshed: number[]) => [{ loaded: true, exp: loaded }, ...refreshed.map((exp) => ({ loaded: false, exp }))];
    expect(matchKubelet(written, events(1000, 2000, 3000, 4000))).toEqual({ matches: true, skipped: 0 });
    // A token replaced before the source read it: honest, and said.
    expect(matchKubelet(written, events(1000, 2000, 4000))).toEqual({ matches: true, skipped: 1 });
    // The same token twice, out of order, one the kubelet never wrote, the last one missing.
    expect(matchKubelet(written, events(1000, 2000, 2000, 3000, 4000)).matches).toBe(false);
    expect(matchKubelet(written, events(1000, 3000, 2000, 4000)).matches).toBe(false);
    expect(matchKubelet(written, events(1000, 2000, 3500, 4000)).matches).toBe(false);
    expect(matchKubelet(written, events(1000, 2000, 3000)).matches).toBe(false);
    // token:loaded must come first and name the first token; no token events at all fails.
    expect(matchKubelet(written, [{ loaded: false, exp: 1000 }, ...events(2000, 3000, 4000).slice(1)]).matches).toBe(false);
    expect(matchKubelet(written, events(2000, 3000, 4000)).matches).toBe(false);
    expect(matchKubelet(written, []).matches).toBe(false);
  });
});
