// verify-service: an HTTP service that answers only callers holding a ServiceAccount token
// for its own audience, checked with @podtoken/verify. Everything else gets a 401 with an
// RFC 6750 challenge and no detail; the reason goes to the log, never the token.
//
// In a pod (see README.md for the manifests):
//   node app.mjs                  AUDIENCE, VERIFY_METHOD (tokenreview | oidc | oidc+tokenreview), PORT
// Here, against a simulated cluster, called by examples/axios-in-pod:
//   pnpm --filter verify-service simulate

import { pathToFileURL } from 'node:url';
import { createTokenVerifier } from '@podtoken/verify';
import { DEFAULT_AUDIENCE, startVerifyService } from './service.mjs';

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  if (process.argv.includes('--simulate')) {
    const { simulate } = await import('./simulate.mjs');
    const summary = await simulate();
    process.exitCode = summary.healthy ? 0 : 1;
  } else {
    // In a pod: the audience this service is, and how tokens are checked.
    const audiences = (process.env.AUDIENCE ?? DEFAULT_AUDIENCE).split(',');
    const method = process.env.VERIFY_METHOD ?? 'tokenreview';
    const verifier = createTokenVerifier({ audiences, method });
    try {
      await verifier.ready(); // not in a pod, client-node missing, issuer unreachable: say so now
    } catch (error) {
      console.error(`verify-service cannot start: ${error.code}: ${error.message}`);
      await verifier.close();
      process.exit(1);
    }
    const service = await startVerifyService({ verifier, port: Number(process.env.PORT ?? 8080), host: '0.0.0.0' });
    console.log(`verify-service on :${service.port}, accepting tokens for ${audiences.join(', ')} (${method})`);
    const stop = async () => {
      await service.close();
      await verifier.close();
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  }
}
