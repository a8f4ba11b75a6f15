import { isTokenSourceError, staticTokenSource, TokenSourceError, type TokenSource } from '@podtoken/core';
import { describe, expect, it } from 'vitest';
import { withTokenSource } from '../src/index.js';
import { FLAVORS, type ClientNode } from './support/simulatedPod.js';

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

    it('validates its arguments with TypeErrors that say what is wrong', async () => {
      k8s ??= await flavor.load();
      const empty = new k8s.KubeConfig();
      expect(() => withTokenSource(empty, sourceOf(OURS))).toThrow(/no current context/);
      const config = await configWith({});
      expect(() => withTokenSource({} as never, sourceOf(OURS))).toThrow(TypeError);
      expect(() => withTokenSource(config, {} as never)).toThrow(/source must be a TokenSource/);
      expect(() => withTokenSource(config, sourceOf(OURS), { retryUnauthorized: 'yes' as never })).toThrow(/retryUnauthorized/);
      expect(() => withTokenSource(config, sourceOf(OURS), { origins: ['not an origin'] })).toThrow(/origins/);
      // Nothing was changed by the failed calls.
      expect(config.getCurrentUser()?.authProvider).toBeUndefined();
    });
  });
}
