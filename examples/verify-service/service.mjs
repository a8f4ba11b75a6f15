// verify-service's HTTP server: every request needs a token the verifier accepts.
import { createServer } from 'node:http';
import { createRequestGuard } from '@podtoken/verify';

export const DEFAULT_AUDIENCE = 'https://verify-service.example';

/**
 * Starts the service with `verifier` (see service.d.mts). `GET /whoami` (and any other path)
 * answers who called: `{ ok, caller, namespace, pod, audiences, method }`.
 *
 * @param {{ verifier: import('@podtoken/verify').TokenVerifier, port?: number, host?: string, log?: (line: string) => void }} options
 */
export async function startVerifyService({ verifier, port = 0, host = '127.0.0.1', log = console.log }) {
  let accepted = 0;
  const refused = {};
  const guard = createRequestGuard(verifier, {
    realm: 'verify-service',
    onRefused: ({ status, code, message, method, path }) => {
      refused[code] = (refused[code] ?? 0) + 1;
      log(`refused ${method} ${path}: ${status} ${code}: ${message}`);
    },
  });
  const server = createServer(async (request, response) => {
    const identity = await guard(request, response);
    if (identity === undefined) return; // answered 401 (or 503)
    accepted += 1;
    const body = JSON.stringify({
      ok: true,
      caller: identity.username,
      namespace: identity.namespace,
      pod: identity.pod?.name ?? null,
      audiences: identity.audiences,
      method: identity.method,
    });
    response.writeHead(200, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) });
    response.end(body);
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  const address = server.address();
  const origin = `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${address.port}`;
  return {
    url: `${origin}/`,
    origin,
    port: address.port,
    get stats() {
      return { accepted, refused: { ...refused } };
    },
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
