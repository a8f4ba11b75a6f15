import { randomBytes } from 'node:crypto';
import { Agent, createServer, request as httpsRequest, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { createOriginFilter, staticTokenSource } from '@podtoken/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { guardAgent } from '../src/internal/agentGuard.js';
import type { Binding } from '../src/internal/binding.js';
import { createCa, issueServerCert } from './support/pki.js';
import { renderingsHolding } from './support/renderings.js';

// The agent guard on its own, with node:https and a real HTTPS server on 127.0.0.1: what
// client-node 1.x and every WebSocket helper go through. A random stand-in token.

const TOKEN = `podtoken-guard-${randomBytes(12).toString('hex')}`;

describe('guardAgent', () => {
  let server: Server;
  let origin: string;
  let ca: string;
  const seen: string[] = [];

  beforeAll(async () => {
    const authority = createCa('podtoken-guard-ca');
    ca = authority.certPem;
    server = createServer(issueServerCert(authority), (request, response) => {
      seen.push(request.headers.authorization === `Bearer ${TOKEN}` ? 'token' : 'none');
      response.end('ok');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    origin = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  function binding(origins: string[]): Binding {
    return { user: { name: 'u' }, source: staticTokenSource(TOKEN), retryUnauthorized: true, allows: createOriginFilter(origins), ca: undefined, dispatcher: undefined };
  }

  function send(agent: Agent, headers: Record<string, string>) {
    const request = httpsRequest(`${origin}/`, { agent, headers: { Authorization: `Bearer ${TOKEN}`, ...headers } });
    const done = new Promise<void>((resolve, reject) => {
      request.on('response', (response) => {
        response.resume();
        response.on('end', resolve);
      });
      request.on('error', reject);
    });
    request.end();
    return { request, done };
  }

  it('an allowed request carries the token; once written, the request and its socket hold no copy of it', async () => {
    const before = seen.length;
    const agent = guardAgent(new Agent({ ca }), binding([origin]), true);
    const { request, done } = send(agent, {});
    await done;
    expect(seen.slice(before)).toEqual(['token']);
    expect(renderingsHolding(request, TOKEN)).toEqual([]);
    expect(renderingsHolding(request.socket, TOKEN)).toEqual([]);
    agent.destroy();
  });

  it('a destination outside origins: the header is removed before anything is written', async () => {
    const before = seen.length;
    const agent = guardAgent(new Agent({ ca }), binding(['https://kubernetes.default.svc']), false);
    await send(agent, {}).done;
    expect(seen.slice(before)).toEqual(['none']);
    agent.destroy();
  });

  it('a header Node stored before the agent saw it (Expect): the request does not leave', () => {
    const before = seen.length;
    const agent = guardAgent(new Agent({ ca }), binding(['https://kubernetes.default.svc']), false);
    expect(() => send(agent, { Expect: '100-continue' })).toThrow(/refused to send the token to https:\/\/127\.0\.0\.1/);
    expect(seen.length).toBe(before);
    agent.destroy();
  });

  it('a chain that left the first origin never gets the token back (per-request agents)', async () => {
    const before = seen.length;
    const agent = guardAgent(new Agent({ ca }), binding([origin, 'https://127.0.0.1:9']), true);
    // The first request of this agent goes elsewhere (a refused connection), the second to the origin.
    const away = httpsRequest('https://127.0.0.1:9/', { agent, headers: { Authorization: `Bearer ${TOKEN}` } });
    away.on('error', () => {});
    away.end();
    await send(agent, {}).done;
    expect(seen.slice(before)).toEqual(['none']);
    agent.destroy();
  });
});
