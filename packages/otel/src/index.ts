export { instrumentPodtoken } from './instrumentPodtoken.js';
export type { InstrumentPodtokenOptions, PodtokenInstrumentation, SourceCollection } from './instrumentPodtoken.js';
export { PODTOKEN_METRICS, PODTOKEN_ATTRIBUTES, READ_DURATION_BUCKETS } from './names.js';
