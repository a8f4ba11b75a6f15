import api = require('@opentelemetry/api');
import core = require('@podtoken/core');
import otel = require('@podtoken/otel');

const tokens = core.createTokenSources({ kubernetes: {}, vault: { path: '/var/run/secrets/tokens/vault-token', audience: 'vault' } });
const instrumentation: otel.PodtokenInstrumentation = otel.instrumentPodtoken({ meterProvider: api.metrics.getMeterProvider(), sources: tokens });
const probe: core.ReadinessHandler = core.readiness(tokens.get('kubernetes'), tokens.get('vault'));
const status: core.TokenSourceStatus = tokens.get('vault').status();
const name: string = otel.PODTOKEN_METRICS.expiresIn;
void instrumentation;
void probe;
void status;
void name;
