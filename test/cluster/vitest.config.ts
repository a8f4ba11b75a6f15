import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// The cluster tier: tests against a real kube-apiserver and the kubelet's own token manager
// and atomic writer (see test/cluster/README.md). Run it with `pnpm test:cluster`. Its files
// are named *.cluster.ts, so the root `vitest run` (test/**/*.test.ts) never picks them up.
const conditions = ['@podtoken/source', 'node', 'import', 'module', 'default'];

export default defineConfig({
  root: fileURLToPath(new URL('../..', import.meta.url)),
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: ['@podtoken/source'] } },
  test: {
    include: ['test/cluster/**/*.cluster.ts'],
    globalSetup: ['test/cluster/globalSetup.ts'],
    // One file at a time: they share one API server, and several print latencies.
    fileParallelism: false,
    maxWorkers: 1,
    testTimeout: 180_000,
    hookTimeout: 120_000,
  },
});
