import { defineConfig } from 'vitest/config';

// Tests run against each package's src/ through the "@podtoken/source" export condition,
// so no build is needed to test (the CommonJS require() test builds and checks dist/).
const conditions = ['@podtoken/source', 'node', 'import', 'default'];

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: ['@podtoken/source'] } },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'test/**/*.test.ts', 'examples/*/test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // 2 cores: keep real-time tests (rotation latency) from fighting each other.
    maxWorkers: 2,
    reporters: process.env.CI ? ['default'] : ['default'],
  },
});
