import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { PassThrough } from 'node:stream';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { DIAGNOSTICS_CHANNELS, staticTokenSource } from '@podtoken/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withTokenSource } from '../src/index.js';
import { createCa, issueServerCert } from './support/pki.js';
import { startRedirectLab, type RedirectLab } from './support/redirectLab.js';
import { renderingsHolding } from './support/renderings.js';
import { FLAVORS, type ClientNode } from './support/simulatedPod.js';

// Whatever a failed (or open) request hands the app must not hold the token in any rendering
// a log could make of it: util.inspect at its default depth (console.error) and at any depth,
// JSON, a logger's error serializer. The lab's API server (127.0.0.1, HTTPS) answers 401 to
// namespace `unauthorized`, refuses WebSocket upgrades (403) in namespace `refuse` and accepts
// them elsewhere. The token is a random stand-in; the tests print rendering names, never text.

const TOKEN = `podtoken-render-${randomBytes(12).toString('hex')}`;

async function failure(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => new Error('expected a failure, got a success'),
    (error: unknown) => error,
  );
}

for (const flavor of FLAVORS) {
  describe.runIf(flavor.supported)(`error renderings with ${flavor.title}`, () => {
    let k8s: ClientNode;
    let lab: RedirectLab;
    let caData: string;
    let otherCaData: string;
    let exec: (kubeConfig: InstanceType<ClientNode['KubeConfig']>, namespace: string) => Promise<unknown>;

    beforeAll(async () => {
      k8s = await flavor.load();
      const ca = createCa('podtoken-render-ca');
      caData = Buffer.from(ca.certPem).toString('base64');
      otherCaData = Buffer.from(createCa('podtoken-render-other-ca').certPem).toString('base64');
      lab = await startRedirectLab(issueServerCert(ca), `Bearer ${TOKEN}`);
      // Under vitest, Node resolves require('ws') with the "import" condition (ws's ESM
      // wrapper, a namespace object), so isomorphic-ws hands client-node a namespace and Exec
      // fails with "WebSocket is not a constructor"; plain Node gets the class. So the test
      // gives client-node's own WebSocketHandler the factory hook it has for this, which
      // builds the same `ws` WebSocket, from beside that client-node, with client-node's options.
      const resolve = createRequire(import.meta.url).resolve(flavor.specifier);
      const ws = createRequire(resolve)('ws') as { default?: unknown };
      const WebSocket = (ws.default ?? ws) as new (uri: string, protocols: string[], options: object) => unknown;
      const { WebSocketHandler } = (await import(/* @vite-ignore */ `${flavor.specifier}/dist/web-socket-handler.js`)) as {
        WebSocketHandler: new (config: unknown, factory: (uri: string, protocols: string[], options: object) => unknown) => unknown;
      };
      exec = (kubeConfig, namespace) => {
        const handler = new WebSocketHandler(kubeConfig, (uri, protocols, options) => new WebSocket(uri, protocols, options));
        return new k8s.Exec(kubeConfig, handler as never).exec(namespace, 'p', 'c', ['ls'], null, null, null, false);
      };
    });
    afterAll(async () => {
      await lab?.close();
    });

    function config(options: { server?: string; caData?: string } = {}) {
      const kubeConfig = new k8s.KubeConfig();
      kubeConfig.loadFromOptions({
        clusters: [{ name: 'lab', server: options.server ?? lab.origin, caData: options.caData ?? caData, skipTLSVerify: false }],
        users: [{ name: 'u' }],
        contexts: [{ name: 'lab', cluster: 'lab', user: 'u' }],
        currentContext: 'lab',
      });
      return withTokenSource(kubeConfig, staticTokenSource(TOKEN));
    }

    function watchFailure(kubeConfig: InstanceType<ClientNode['KubeConfig']>, namespace: string): Promise<unknown> {
      return new Promise((resolve) => {
        new k8s.Watch(kubeConfig)
          .watch(`/api/v1/namespaces/${namespace}/pods`, {}, () => {}, (error: unknown) => resolve(error ?? new Error('done without an error')))
          .catch(resolve);
      });
    }

    it.each([
      ['an API client 401 (ApiException)', (c: InstanceType<ClientNode['KubeConfig']>) => failure(c.makeApiClient(k8s.CoreV1Api).listNamespacedPod({ namespace: 'unauthorized' }))],
      ['a Watch 401 (done(err))', (c: InstanceType<ClientNode['KubeConfig']>) => watchFailure(c, 'unauthorized')],
      ['a Log 401', (c: InstanceType<ClientNode['KubeConfig']>) => failure(new k8s.Log(c).log('unauthorized', 'p', 'c', new PassThrough()))],
    ])('%s holds no token', async (_name, make) => {
      const error = await make(config());
      expect(lab.hops('unauthorized').some((hop) => hop.authorization === 'token')).toBe(true); // it was sent
      expect(renderingsHolding(error, TOKEN)).toEqual([]);
    });

    it('publishes the 401 on podtoken:request:unauthorized as the kubernetes adapter, without the token', async () => {
      const seen: unknown[] = [];
      const listener = (message: unknown) => seen.push(message);
      subscribe(DIAGNOSTICS_CHANNELS.requestUnauthorized, listener);
      try {
        await failure(config().makeApiClient(k8s.CoreV1Api).listNamespacedPod({ namespace: 'unauthorized' }));
      } finally {
        unsubscribe(DIAGNOSTICS_CHANNELS.requestUnauthorized, listener);
      }
      // A static source holds nothing newer: the 401 stands.
      expect(seen).toMatchObject([{ adapter: 'kubernetes', retried: false, reason: 'token-unchanged', source: { name: 'static' } }]);
      expect(JSON.stringify(seen).includes(TOKEN)).toBe(false);
    });

    it('a refused TLS handshake (the server’s certificate is not from the CA) holds no token', async () => {
      const errors = [
        await failure(config({ caData: otherCaData }).makeApiClient(k8s.CoreV1Api).listNamespacedPod({ namespace: 'tls' })),
        await watchFailure(config({ caData: otherCaData }), 'tls'),
      ];
      for (const error of errors) expect(renderingsHolding(error, TOKEN)).toEqual([]);
    });

    it('a refused connection holds no token', async () => {
      const closed = `https://127.0.0.1:9`; // discard port: nothing listens
      const kubeConfig = config({ server: closed });
      const errors = [
        await failure(kubeConfig.makeApiClient(k8s.CoreV1Api).listNamespacedPod({ namespace: 'x' })),
        await watchFailure(kubeConfig, 'x'),
      ];
      for (const error of errors) expect(renderingsHolding(error, TOKEN)).toEqual([]);
    });

    it('Exec refused by the server (403): the ErrorEvent it rejects with holds no token', async () => {
      const error = await failure(exec(config(), 'refuse'));
      expect(lab.hops('refuse').some((hop) => hop.authorization === 'token')).toBe(true);
      expect(renderingsHolding(error, TOKEN)).toEqual([]);
    });

    it('an open Exec WebSocket holds no token', async () => {
      const socket = (await exec(config(), 'open')) as { close(): void };
      try {
        expect(lab.hops('open').some((hop) => hop.authorization === 'token')).toBe(true);
        expect(renderingsHolding(socket, TOKEN)).toEqual([]);
      } finally {
        socket.close();
      }
    });

    it('the KubeConfig itself (inspect, exportConfig) holds no token, after requests', async () => {
      const kubeConfig = config();
      await failure(kubeConfig.makeApiClient(k8s.CoreV1Api).listNamespacedPod({ namespace: 'unauthorized' }));
      expect(renderingsHolding(kubeConfig, TOKEN)).toEqual([]);
      expect(kubeConfig.exportConfig().includes(TOKEN)).toBe(false);
    });
  });
}
