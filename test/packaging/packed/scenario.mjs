// What both outside apps do, given the modules they loaded (by import or by require()).
// Token values are never printed: only statuses and counts.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export async function scenario({ core, testing, axiosAdapter, gotAdapter, fetchAdapter, kubernetes, axios, got, nodeFetch }) {
  const dir = await mkdtemp(join(tmpdir(), 'podtoken-outside-'));
  const issuer = await testing.createIssuer();
  const audience = 'https://outside.example';
  const server = await testing.startTokenServer({ issuer, audience });
  const volume = new testing.ProjectedVolume({ dir });
  await volume.write({ token: await issuer.mint({ audience, expirationSeconds: 600 }) });
  const source = new core.FileTokenSource({ path: volume.path('token'), audience });
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
    };
    if (Object.values(statuses).some((status) => status !== 200) || server.counts.ok !== 4) {
      throw new Error(`expected four verified requests, got ${JSON.stringify(statuses)} and ${JSON.stringify(server.counts)}`);
    }
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
    await source.close();
    await server.close();
    await rm(dir, { recursive: true, force: true });
  }
}
