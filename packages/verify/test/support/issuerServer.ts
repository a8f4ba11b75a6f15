import { createIssuer, startTokenServer, type Issuer, type TokenServer } from '@podtoken/testing';

/** An OIDC issuer on 127.0.0.1, served by the test kit's startTokenServer. */
export interface IssuerServer {
  /** `http://127.0.0.1:<port>`: the `iss` of its tokens, and where discovery starts. */
  readonly url: string;
  /** The signer whose key is published now. */
  readonly issuer: Issuer;
  /** The verifying server under it (its log counts the discovery and key-set requests). */
  readonly server: TokenServer;
  /** Key-set requests answered so far. */
  readonly jwksFetches: number;
  /** Discovery-document requests answered so far. */
  readonly discoveryFetches: number;
  /** A new signer with the same `iss` and a new key (not published until {@link IssuerServer.publish}). */
  rotate(): Promise<Issuer>;
  /** Publishes these signers' keys (replacing the published set). */
  publish(...issuers: Issuer[]): void;
  /** Makes the discovery document name this issuer instead (a misconfigured issuer). */
  claimIssuer(iss: string): void;
  close(): Promise<void>;
}

/**
 * Starts the test kit's token server with two routes of an OIDC issuer added through its
 * `handler`: `/.well-known/openid-configuration` and `/openid/v1/jwks` (paths the API server
 * uses). Its tokens' `iss` is the server's own origin, so discovery starts from it.
 */
export async function startIssuerServer(): Promise<IssuerServer> {
  let published: Issuer[] = [];
  let claimed: string | undefined;
  let jwksFetches = 0;
  let discoveryFetches = 0;
  let origin = '';
  // startTokenServer needs an issuer to judge bearer tokens by; these routes need none.
  const placeholder = await createIssuer();
  const server = await startTokenServer({
    issuer: placeholder,
    audience: placeholder.issuer,
    handler: (request, response, context) => {
      const json = (body: unknown) => {
        const text = JSON.stringify(body);
        response.writeHead(200, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)) });
        response.end(text);
        return true;
      };
      if (request.method === 'GET' && context.url.pathname === '/.well-known/openid-configuration') {
        discoveryFetches += 1;
        return json({
          issuer: claimed ?? origin,
          jwks_uri: `${origin}/openid/v1/jwks`,
          response_types_supported: ['id_token'],
          subject_types_supported: ['public'],
          id_token_signing_alg_values_supported: ['RS256'],
        });
      }
      if (request.method === 'GET' && context.url.pathname === '/openid/v1/jwks') {
        jwksFetches += 1;
        return json({ keys: published.flatMap((issuer) => issuer.jwks.keys) });
      }
      return false;
    },
  });
  origin = server.origin;
  const issuer = await createIssuer({ issuer: origin });
  published = [issuer];
  return {
    url: origin,
    issuer,
    server,
    get jwksFetches() {
      return jwksFetches;
    },
    get discoveryFetches() {
      return discoveryFetches;
    },
    rotate: () => createIssuer({ issuer: origin }),
    publish: (...issuers) => {
      published = issuers;
    },
    claimIssuer: (iss) => {
      claimed = iss;
    },
    close: () => server.close(),
  };
}
