export { createIssuer, DEFAULT_ISSUER } from './issuer.js';
export type { Issuer, IssuerOptions, MintOptions, MintLegacyOptions } from './issuer.js';
export { ProjectedVolume } from './projectedVolume.js';
export type { ProjectedVolumeOptions, VolumeFileSystem, VolumeWrite } from './projectedVolume.js';
export { FakeKubelet } from './fakeKubelet.js';
export type { FakeKubeletOptions, Rotation } from './fakeKubelet.js';
export { startTokenServer, tokenId } from './tokenServer.js';
export type {
  TokenServer,
  TokenServerOptions,
  TokenServerHandler,
  TokenServerContext,
  TokenServerOutcome,
  TokenServerCounts,
  TokenServerLogEntry,
} from './tokenServer.js';
export { startSimulatedPod } from './simulatedPod.js';
export type { SimulatedPod, SimulatedPodOptions } from './simulatedPod.js';
