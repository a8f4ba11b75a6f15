import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'vitest';
import { defer, until } from '../../helpers.js';
import { fileToken, tokenId, type Kubelet } from './kube.js';

// Clients calling a receiving service (HTTP or gRPC) that verifies each token with the real
// API server, in both of its modes, while the kubelet's writer rotates the token underneath.

/** How the receiving services verify: a TokenReview, or the API server's OIDC discovery and JWKS. */
export const VERIFY_MODES = ['tokenreview', 'oidc'] as const;
export type VerifyMode = (typeof VERIFY_MODES)[number];

/** A receiving service as the rotation loops see it. */
export interface Receiver {
  /** Every verdict so far. */
  readonly counts: { ok: number; refused: number };
  /** The ids of the tokens each mode accepted. */
  readonly accepted: Record<VerifyMode, Set<string>>;
  /** The ids of the tokens accepted from each loop, by the tag the loop sent along (`<client> <mode>`). */
  readonly acceptedFrom: Map<string, Set<string>>;
}

/** What one client × mode loop of {@link callAcrossRotations} counted. */
export interface Tally {
  ok: number;
  refused: number;
  errors: string[];
}

/**
 * Runs every client against both modes, each in a loop of back-to-back calls, while
 * `kubelet` rotates the token `rotations` times; each rotation waits until the receiver has
 * accepted the new token from every loop (an older token stays valid until its `exp`, so a
 * client stuck on one would pass for a while). A client is called with the mode and the
 * loop's tag (`<client> <mode>`), which it sends along for the receiver's `acceptedFrom`; it
 * resolves `true` when accepted, `false` when refused (401, UNAUTHENTICATED), and throws on
 * anything else.
 *
 * Returns each loop's tally (by `<client> <mode>`) and the tokens written, the first one
 * included, in order: their ids, and their text for checks that must not find it anywhere.
 */
export async function callAcrossRotations(
  kubelet: Kubelet,
  receiver: Receiver,
  clients: Record<string, (mode: VerifyMode, tag: string) => Promise<boolean>>,
  rotations: number,
): Promise<{ tally: Map<string, Tally>; ids: string[]; tokens: string[] }> {
  const tally = new Map<string, Tally>();
  let running = true;
  defer(() => void (running = false));
  const loops = Object.entries(clients).flatMap(([name, call]) =>
    VERIFY_MODES.map(async (mode) => {
      const tag = `${name} ${mode}`;
      const counts: Tally = { ok: 0, refused: 0, errors: [] };
      tally.set(tag, counts);
      while (running) {
        try {
          if (await call(mode, tag)) counts.ok += 1;
          else counts.refused += 1;
        } catch (error) {
          counts.errors.push(error instanceof Error ? error.message : String(error));
        }
      }
    }),
  );

  const tokens = [await fileToken(kubelet.path)];
  try {
    for (let i = 1; i <= rotations; i++) {
      await sleep(500);
      expect((await kubelet.rotate()).swapped).toBe(true);
      const token = await fileToken(kubelet.path);
      tokens.push(token);
      const id = tokenId(token);
      await until(`rotation ${i}'s token accepted from every loop`, () => [...tally.keys()].every((tag) => receiver.acceptedFrom.get(tag)?.has(id) === true));
    }
    await sleep(300);
  } finally {
    running = false;
    await Promise.all(loops);
  }
  return { tally, ids: tokens.map(tokenId), tokens };
}

/** Every loop made calls, none was refused or failed, and every rotation's token was accepted from it; the receiver refused nothing. */
export function expectNoneRefused(receiver: Receiver, tally: Map<string, Tally>, ids: readonly string[]): void {
  for (const [name, counts] of tally) {
    expect(counts.errors, name).toEqual([]);
    expect(counts.refused, `${name}: refused`).toBe(0);
    expect(counts.ok, `${name}: calls made`).toBeGreaterThan(0);
    expect([...(receiver.acceptedFrom.get(name) ?? [])].sort(), `${name}: tokens accepted`).toEqual([...ids].sort());
  }
  expect(receiver.counts.refused).toBe(0);
  for (const mode of VERIFY_MODES) expect([...receiver.accepted[mode]].sort()).toEqual([...ids].sort());
}

/** `axios tokenreview 233, axios oidc 263, …`: the accepted calls of each loop. */
export function acceptedCalls(tally: Map<string, Tally>): string {
  return [...tally].map(([name, counts]) => `${name} ${counts.ok}`).join(', ');
}
