import { describe, expect, it } from 'vitest';
import { simulate } from '../simulate.mjs';

describe('examples/verify-service', () => {
  it('accepts axios-in-pod across token rotations and refuses every other caller with a bare 401', { timeout: 120_000 }, async () => {
    const printed: string[] = [];
    const summary = await simulate({ requests: 60, interval: 50, log: (line) => printed.push(line) });
    console.log(printed.join('\n'));

    expect(summary.calls.statuses).toEqual({ '200': 60 });
    expect(summary.calls.callers).toEqual(['system:serviceaccount:default:default']);
    expect(summary.rotations).toBeGreaterThanOrEqual(1);
    expect(summary.refused).toEqual({
      otherAudience: { status: 401, challenge: 'Bearer realm="verify-service", error="invalid_token"', body: { error: 'invalid_token' } },
      otherCluster: { status: 401, challenge: 'Bearer realm="verify-service", error="invalid_token"', body: { error: 'invalid_token' } },
      noToken: { status: 401, challenge: 'Bearer realm="verify-service"', body: { error: 'unauthorized' } },
    });
    expect(summary.stats).toEqual({ accepted: 60, refused: { TOKEN_AUDIENCE_MISMATCH: 1, TOKEN_KEY_NOT_FOUND: 1, TOKEN_MISSING: 1 } });
    expect(summary.lines).toEqual([
      expect.stringMatching(/^refused GET \/whoami: 401 TOKEN_AUDIENCE_MISMATCH: The token has the audiences "https:\/\/inventory.internal.example", none of which this service accepts/),
      expect.stringMatching(/^refused GET \/whoami: 401 TOKEN_KEY_NOT_FOUND: /),
      'refused GET /whoami: 401 TOKEN_MISSING: The request has no Authorization header.',
    ]);
    expect(summary.healthy).toBe(true);
  });
});
