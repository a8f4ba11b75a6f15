import { metrics } from '@opentelemetry/api';
import { createTokenSources, readiness, type ReadinessHandler, type TokenSourceStatus } from '@podtoken/core';
import { instrumentPodtoken, PODTOKEN_METRICS, type PodtokenInstrumentation } from '@podtoken/otel';

const tokens = createTokenSources({ kubernetes: {}, vault: { path: '/var/run/secrets/tokens/vault-token', audience: 'vault' } });
const instrumentation: PodtokenInstrumentation = instrumentPodtoken({ meterProvider: metrics.getMeterProvider(), sources: tokens });
const probe: ReadinessHandler = readiness(tokens.get('kubernetes'), tokens.get('vault'));
const status: TokenSourceStatus = tokens.get('vault').status();
const name: string = PODTOKEN_METRICS.expiresIn;
void instrumentation;
void probe;
void status;
void name;
