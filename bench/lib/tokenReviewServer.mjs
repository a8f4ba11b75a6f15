// A local HTTPS stand-in of the API server for bench 6, in its own process (so that the
// benchmark process's CPU is the verifier's alone). It answers what @podtoken/verify asks:
//   POST /apis/authentication.k8s.io/v1/tokenreviews — verifies spec.token with the issuer's
//     key set (jose: signature, iss, aud against spec.audiences, exp/nbf with the API
//     server's 60 s leeway), as kube-apiserver's ServiceAccount authenticator does, and
//     answers 201 with the TokenReview (spec.token echoed, as kube-apiserver does);
//   GET /openid/v1/jwks — the key set;
//   GET /stats — TokenReviews answered so far.
// The parent sends { jwks, issuer, cert, key } over IPC and gets { port } back.
import { createServer } from 'node:https';
import { createLocalJWKSet, jwtVerify } from 'jose';

process.once('message', ({ jwks, issuer, cert, key }) => {
  const keys = createLocalJWKSet(jwks);
  let reviews = 0;
  const send = (response, status, body) => {
    const text = JSON.stringify(body);
    response.writeHead(status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)) });
    response.end(text);
  };
  const server = createServer({ cert, key }, async (request, response) => {
    const chunks = [];
    for await (const chunk of request) chunks.push(chunk);
    if (request.method === 'GET' && request.url === '/stats') return send(response, 200, { reviews });
    if (request.method === 'GET' && request.url === '/openid/v1/jwks') return send(response, 200, jwks);
    if (request.method !== 'POST' || !request.url?.startsWith('/apis/authentication.k8s.io/v1/tokenreviews')) return send(response, 404, {});
    if (!request.headers.authorization?.startsWith('Bearer ')) return send(response, 401, { kind: 'Status', code: 401 });
    reviews += 1;
    const review = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    const audiences = review.spec?.audiences ?? [issuer];
    let status;
    try {
      const { payload } = await jwtVerify(review.spec.token, keys, { issuer, audience: audiences, clockTolerance: 60 });
      const k8s = payload['kubernetes.io'];
      const tokenAudiences = [payload.aud].flat();
      status = {
        authenticated: true,
        user: {
          username: payload.sub,
          uid: k8s.serviceaccount.uid,
          groups: ['system:serviceaccounts', `system:serviceaccounts:${k8s.namespace}`, 'system:authenticated'],
          extra: { 'authentication.kubernetes.io/pod-name': [k8s.pod.name], 'authentication.kubernetes.io/pod-uid': [k8s.pod.uid] },
        },
        audiences: audiences.filter((audience) => tokenAudiences.includes(audience)),
      };
    } catch {
      status = { authenticated: false, error: 'invalid bearer token' };
    }
    send(response, 201, { kind: 'TokenReview', apiVersion: 'authentication.k8s.io/v1', metadata: {}, spec: review.spec, status });
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));
});
process.on('disconnect', () => process.exit(0));
