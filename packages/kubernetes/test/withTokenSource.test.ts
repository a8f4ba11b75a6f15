import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { isTokenSourceError, staticTokenSource, TokenSourceError, type TokenSource } from '@podtoken/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withTokenSource } from '../src/index.js';
import { createCa, issueServerCert } from './support/pki.js';
import { startRedirectLab, type RedirectLab } from './support/redirectLab.js';
import { FLAVORS, type ClientNode } from './support/simulatedPod.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

// Stand-in token values: not secrets, never sent anywhere.
const OURS = 'podtoken-test-value-ours';
const OTHER = 'podtoken-test-value-other';

function sourceOf(value: string): TokenSource {
  return staticTokenSource(value);
}

for (const flavor of FLAVORS) {
  describe.runIf(flavor.supported)(`withTokenSource with ${flavor.title}`, () => {
    let k8s: ClientNode;

    async function configWith(user: Record<string, unknown>, server = 'https://127.0.0.1:6443') {
      k8s ??= await flavor.load();
      const config = new k8s.KubeConfig();
      config.loadFromOptions({
        clusters: [{ name: 'c', server, skipTLSVerify: false }],
        users: [{ name: 'u', ...user }],
        contexts: [{ name: 'ctx', cluster: 'c', user: 'u' }],
        currentContext: 'ctx',
      });
      return config;
    }

    // The two paths every helper takes: applySecurityAuthentication (API clients, and in
    // 2.x Watch/Log/Metrics/Health) and applyToHTTPSOptions (WebSocket helpers, and in 1.x
    // Watch/Log/Metrics/Health through applyToFetchOptions).
    async function authorizationHeaders(config: InstanceType<ClientNode['KubeConfig']>) {
      const context = new k8s.RequestContext('https://127.0.0.1:6443/api/v1/pods', 'GET' as never);
      await config.applySecurityAuthentication(context);
      const options: { headers?: Record<string, unknown> } = {};
      await config.applyToHTTPSOptions(options);
      return { api: context.getHeaders()['Authorization'], https: options.headers?.['Authorization'] };
    }

    it.each([
      ['a token-file user (the built-in FileAuth would readFileSync a missing file)', { authProvider: { name: 'tokenFile', config: { tokenFile: '/nonexistent/podtoken/token' } } }],
      ['a static-token user', { token: OTHER }],
      ['an exec user (the built-in ExecAuth would spawn a command)', { exec: { command: '/nonexistent/podtoken/credential-helper', apiVersion: 'client.authentication.k8s.io/v1' } }],
      ['a basic-auth user', { username: 'someone', password: OTHER }],
      ['a user with no credentials', {}],
    ])('takes over %s: every path sends the source’s token', async (_, user) => {
      const config = await configWith(user);
      expect(withTokenSource(config, sourceOf(OURS))).toBe(config);
      const headers = await authorizationHeaders(config);
      expect(headers.api === `Bearer ${OURS}`).toBe(true);
      expect(headers.https === `Bearer ${OURS}`).toBe(true);
      // The user entry holds no token (exportConfig, logs): only a reference to the binding.
      expect(config.exportConfig().includes(OURS)).toBe(false);
      expect(config.exportConfig().includes(OTHER)).toBe(false);
    });

    it('keeps client certificates and impersonation', async () => {
      const config = await configWith({ certData: 'Y2VydA==', keyData: 'a2V5', impersonateUser: 'someone', token: OTHER });
      withTokenSource(config, sourceOf(OURS));
      const user = config.getCurrentUser();
      expect(user).toMatchObject({ name: 'u', certData: 'Y2VydA==', keyData: 'a2V5', impersonateUser: 'someone' });
      expect(user?.token).toBeUndefined();
    });

    it('a second call for the same user replaces the source', async () => {
      const config = await configWith({});
      withTokenSource(config, sourceOf(OTHER));
      withTokenSource(config, sourceOf(OURS));
      expect((await authorizationHeaders(config)).api === `Bearer ${OURS}`).toBe(true);
    });

    it('origins: the token goes only to a listed server', async () => {
      const listed = await configWith({}, 'https://127.0.0.1:6443');
      withTokenSource(listed, sourceOf(OURS), { origins: ['https://127.0.0.1:6443'] });
      expect((await authorizationHeaders(listed)).api === `Bearer ${OURS}`).toBe(true);

      const unlisted = await configWith({}, 'https://127.0.0.1:6443');
      withTokenSource(unlisted, sourceOf(OURS), { origins: [/^https:\/\/kubernetes\.default\.svc$/] });
      const headers = await authorizationHeaders(unlisted);
      expect(headers.api).toBeUndefined();
      expect(headers.https).toBeUndefined();
    });

    it('binds the user entry object: an entry merged in later that names podtoken (any id) gets no token', async () => {
      const config = await configWith({});
      withTokenSource(config, sourceOf(OURS));
      expect(config.exportConfig().includes('"id"')).toBe(false);
      // Another kubeconfig's entry, crafted to look like ours, with its own cluster.
      config.addCluster({ name: 'elsewhere', server: 'https://127.0.0.1:7443', skipTLSVerify: false });
      for (const id of ['1', '2', '3', '0', '']) {
        const name = `merged-${id}`;
        config.addUser({ name, authProvider: { name: 'podtoken', config: { id } } } as never);
        config.addContext({ name, cluster: 'elsewhere', user: name });
        config.setCurrentContext(name);
        const headers = await authorizationHeaders(config);
        expect([headers.api, headers.https]).toEqual([undefined, undefined]);
      }
      // A round trip through exportConfig() binds nothing either.
      const reloaded = new k8s.KubeConfig();
      reloaded.loadFromString(config.exportConfig());
      reloaded.setCurrentContext('ctx');
      const headers = await authorizationHeaders(reloaded);
      expect([headers.api, headers.https]).toEqual([undefined, undefined]);
    });

    it('without origins the token goes only to the server of the context current at bind time (contexts that share a user)', async () => {
      k8s ??= await flavor.load();
      const config = new k8s.KubeConfig();
      config.loadFromOptions({
        clusters: [
          { name: 'home', server: 'https://127.0.0.1:6443', skipTLSVerify: false },
          { name: 'other', server: 'https://127.0.0.2:6443', skipTLSVerify: false },
        ],
        users: [{ name: 'shared' }],
        contexts: [
          { name: 'home', cluster: 'home', user: 'shared' },
          { name: 'other', cluster: 'other', user: 'shared' },
        ],
        currentContext: 'home',
      });
      withTokenSource(config, sourceOf(OURS));
      const home = await authorizationHeaders(config);
      expect(home.api === `Bearer ${OURS}` && home.https === `Bearer ${OURS}`).toBe(true);
      config.setCurrentContext('other');
      const other = await authorizationHeaders(config);
      expect([other.api, other.https]).toEqual([undefined, undefined]);

      // Listing both servers sends it to both.
      config.setCurrentContext('home');
      withTokenSource(config, sourceOf(OURS), { origins: ['https://127.0.0.1:6443', 'https://127.0.0.2:6443'] });
      config.setCurrentContext('other');
      expect((await authorizationHeaders(config)).api === `Bearer ${OURS}`).toBe(true);
    });

    it('a reload (loadFromOptions, then withTokenSource again) releases the previous source', async () => {
      const config = await configWith({});
      let first: TokenSource | undefined = sourceOf(OTHER);
      const collected = new WeakRef(first);
      withTokenSource(config, first);
      await authorizationHeaders(config); // the binding has handed out a token
      first = undefined;
      config.loadFromOptions({
        clusters: [{ name: 'c', server: 'https://127.0.0.1:6443', skipTLSVerify: false }],
        users: [{ name: 'u' }],
        contexts: [{ name: 'ctx', cluster: 'c', user: 'u' }],
        currentContext: 'ctx',
      });
      withTokenSource(config, sourceOf(OURS));
      expect((await authorizationHeaders(config)).api === `Bearer ${OURS}`).toBe(true);
      for (let i = 0; i < 5 && collected.deref() !== undefined; i++) {
        await new Promise((resolve) => setTimeout(resolve, 10));
        gc();
      }
      expect(collected.deref()).toBeUndefined();
    });

    it('a source error fails the request with that TokenSourceError', async () => {
      const config = await configWith({});
      const expired: TokenSource = {
        getToken: () => Promise.reject(new TokenSourceError('TOKEN_EXPIRED', 'The token expired.')),
      };
      withTokenSource(config, expired);
      const error = await authorizationHeaders(config).then(
        () => undefined,
        (caught: unknown) => caught,
      );
      expect(isTokenSourceError(error) && error.code).toBe('TOKEN_EXPIRED');
    });

    describe('each request’s own destination', () => {
      let home: RedirectLab;
      let away: RedirectLab;
      let caData: string;
      beforeAll(async () => {
        const ca = createCa('podtoken-destination-ca');
        caData = Buffer.from(ca.certPem).toString('base64');
        const tls = issueServerCert(ca);
        home = await startRedirectLab(tls, `Bearer ${OURS}`);
        away = await startRedirectLab(tls, `Bearer ${OURS}`);
      });
      afterAll(async () => {
        await home?.close();
        await away?.close();
      });

      it('an API client made for another cluster sends no token after the context switched to an allowed one', async () => {
        k8s ??= await flavor.load();
        const config = new k8s.KubeConfig();
        config.loadFromOptions({
          clusters: [
            { name: 'home', server: home.origin, caData, skipTLSVerify: false },
            { name: 'away', server: away.origin, caData, skipTLSVerify: false },
          ],
          users: [{ name: 'shared' }],
          contexts: [
            { name: 'home', cluster: 'home', user: 'shared' },
            { name: 'away', cluster: 'away', user: 'shared' },
          ],
          currentContext: 'home',
        });
        withTokenSource(config, sourceOf(OURS), { origins: [home.origin] });
        config.setCurrentContext('away');
        const awayApi = config.makeApiClient(k8s.CoreV1Api); // its server: away
        config.setCurrentContext('home'); // the authenticator sees an allowed cluster now
        await awayApi.listNamespacedPod({ namespace: 'destination' }).catch(() => undefined);
        await config.makeApiClient(k8s.CoreV1Api).listNamespacedPod({ namespace: 'destination' }).catch(() => undefined);
        expect(away.hops('destination').map((hop) => hop.authorization)).toEqual(['none']);
        expect(home.hops('destination').map((hop) => hop.authorization)).toEqual(['token']);
      });
    });

    it('validates its arguments with TypeErrors that say what is wrong', async () => {
      k8s ??= await flavor.load();
      const empty = new k8s.KubeConfig();
      expect(() => withTokenSource(empty, sourceOf(OURS))).toThrow(/no current context/);
      const config = await configWith({});
      expect(() => withTokenSource({} as never, sourceOf(OURS))).toThrow(TypeError);
      expect(() => withTokenSource(config, {} as never)).toThrow(/source must be a TokenSource/);
      expect(() => withTokenSource(config, sourceOf(OURS), { retryUnauthorized: 'yes' as never })).toThrow(/retryUnauthorized/);
      expect(() => withTokenSource(config, sourceOf(OURS), { origins: ['not an origin'] })).toThrow(/origins/);
      const serverless = new k8s.KubeConfig();
      serverless.loadFromOptions({ clusters: [], users: [{ name: 'u' }], contexts: [{ name: 'ctx', cluster: 'gone', user: 'u' }], currentContext: 'ctx' });
      expect(() => withTokenSource(serverless, sourceOf(OURS))).toThrow(/no cluster with a valid server URL/);
      // Nothing was changed by the failed calls.
      expect(config.getCurrentUser()?.authProvider).toBeUndefined();
    });
  });
}
