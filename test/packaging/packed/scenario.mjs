// What both outside apps do, given the modules they loaded (by import or by require()).
// Token values are never printed: only statuses and counts.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export async function scenario({ core, testing, axiosAdapter, gotAdapter, fetchAdapter, kubernetes, axios, got, nodeFetch, undiciAdapter, undici, grpcAdapter, grpc, otel }) {
  const dir = await mkdtemp(join(tmpdir(), 'podtoken-outside-'));
  const issuer = await testing.createIssuer();
  const audience = 'https://outside.example';
  const server = await testing.startTokenServer({ issuer, audience });
  const volume = new testing.ProjectedVolume({ dir });
  await volume.write({ token: await issuer.mint({ audience, expirationSeconds: 600 }) });
  const source = new core.FileTokenSource({ path: volume.path('token'), audience, name: 'outside' });
  // Metrics through the global (no-op) meter provider: subscribes, counts, unsubscribes.
  const instrumentation = otel.instrumentPodtoken({ sources: [source] });
  try {
    await source.ready();
    const options = { origins: [server.origin] };
    const viaAxios = axiosAdapter.withTokenSource(axios.create({ baseURL: server.url }), source, options);
    const viaGot = gotAdapter.withTokenSource(got, source, options);
    const viaFetch = fetchAdapter.withTokenSource(globalThis.fetch, source, options);
    const viaNodeFetch = fetchAdapter.withTokenSource(nodeFetch, source, options);
    const statuses = {
      axios: (await viaAxios.get('/a')).status,
      got: (await viaGot(`${server.url}b`)).statusCode,
      fetch: (await viaFetch(`${server.url}c`)).status,
      nodeFetch: (await viaNodeFetch(`${server.url}d`)).status,
      undici: (await undici.request(`${server.url}e`, { dispatcher: undiciAdapter.withTokenSource(new undici.Agent(), source, options) })).statusCode,
    };
    if (Object.values(statuses).some((status) => status !== 200) || server.counts.ok !== 5) {
      throw new Error(`expected five verified requests, got ${JSON.stringify(statuses)} and ${JSON.stringify(server.counts)}`);
    }
    // gRPC: TLS credentials are combined; a channel without TLS is refused with a TypeError.
    const setup = grpcAdapter.withTokenSource(grpc.credentials.createSsl(), source);
    if (!(setup.credentials instanceof grpc.ChannelCredentials) || setup.interceptors.length !== 1) throw new Error('grpc withTokenSource gave no credentials');
    let insecureRefused = false;
    try {
      grpcAdapter.withTokenSource(grpc.credentials.createInsecure(), source);
    } catch (error) {
      insecureRefused = error instanceof TypeError;
    }
    if (!insecureRefused) throw new Error('grpc withTokenSource took an insecure channel');
    // Readiness: the probe's report names the source and says it serves.
    const report = core.readiness(source).check();
    if (!report.ready || report.sources[0].name !== 'outside') throw new Error(`readiness: ${JSON.stringify(report)}`);
    // Outside a pod, loadInCluster says what is missing with its own error type.
    let notInCluster = false;
    try {
      kubernetes.loadInCluster({ root: join(dir, 'no-such-folder') });
    } catch (error) {
      notInCluster = error instanceof kubernetes.NotInClusterError;
    }
    if (!notInCluster) throw new Error('loadInCluster outside a pod did not refuse with its own error');
    return statuses;
  } finally {
    instrumentation.close();
    await source.close();
    await server.close();
    await rm(dir, { recursive: true, force: true });
  }
}
