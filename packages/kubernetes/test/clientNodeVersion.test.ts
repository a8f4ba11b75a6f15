import { describe, expect, it } from 'vitest';
import { ClientNodeVersionError } from '../src/index.js';
import { loadClientNode } from '../src/internal/loadClientNode.js';
import { NODE_MAJOR } from './support/simulatedPod.js';

// `npm install @kubernetes/client-node` on Node 20 installs 2.x, whose undici 8 throws while it
// loads ("Cannot read properties of undefined (reading 'bind')"). Where podtoken loads
// client-node itself (loadInCluster without a kubeConfig), that must be a typed error that
// names both versions. client-node-v2 is the real 2.0.1 package, installed under an alias.

describe.runIf(NODE_MAJOR < 22)(
  `client-node 2.x on Node ${process.versions.node}${NODE_MAJOR < 22 ? '' : ' (skipped: this Node loads 2.x; the error exists for Node < 22)'}`,
  () => {
    it('loading it throws a ClientNodeVersionError naming both versions and what to install', () => {
      let error: unknown;
      try {
        loadClientNode('client-node-v2');
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(ClientNodeVersionError);
      const typed = error as ClientNodeVersionError;
      expect(typed.code).toBe('CLIENT_NODE_UNSUPPORTED');
      expect(typed.clientNodeVersion).toBe('2.0.1');
      expect(typed.nodeVersion).toBe(process.versions.node);
      expect(typed.requiredNode).toBe('>=22.19.0');
      expect(typed.message).toContain('@kubernetes/client-node 2.0.1');
      expect(typed.message).toContain(`Node ${process.versions.node}`);
      expect(typed.message).toContain('@kubernetes/client-node@1');
      expect((typed.cause as Error).message).toMatch(/bind/); // undici's own error, kept as the cause
    });
  },
);

describe('loadClientNode', () => {
  it('loads the copy this package resolves (1.x here), the same module instance `import` gives', async () => {
    const imported = await import('@kubernetes/client-node');
    expect(loadClientNode().KubeConfig).toBe(imported.KubeConfig);
  });

  it.runIf(NODE_MAJOR >= 22)('loads 2.x where Node is new enough (skipped below Node 22: 2.x cannot load there)', () => {
    expect(typeof loadClientNode('client-node-v2').KubeConfig).toBe('function');
  });

  it('an error that is not about versions is passed on as it is', () => {
    expect(() => loadClientNode('@podtoken/no-such-package')).toThrow(/Cannot find/);
  });
});
