export { FileTokenSource, DEFAULT_TOKEN_PATH } from './fileTokenSource.js';
export type { FileTokenSourceOptions } from './fileTokenSource.js';
export { createTokenSources } from './tokenSources.js';
export type { TokenSources } from './tokenSources.js';
export { staticTokenSource } from './tokenSource.js';
export type { TokenSource, GetTokenOptions } from './tokenSource.js';
export { decodeToken } from './token.js';
export { readTokenFile } from './readTokenFile.js';
export type { ReadTokenFileOptions } from './readTokenFile.js';
export type { Token, TokenKind, Ref, KubernetesClaims, DecodeTokenOptions } from './token.js';
export { TokenSourceError, isTokenSourceError, TOKEN_ERROR_CODES } from './errors.js';
export type { TokenErrorCode, TokenSourceErrorOptions } from './errors.js';
export type { TokenFileSystem, TokenFileHandle, TokenFileWatcher } from './fileSystem.js';
export { createOriginFilter, createRedirectGuard, isReplayableBody, bearer, tokenForRetry, tokenAfterUnauthorized } from './adapterSupport.js';
export type { AdapterOptions, RedirectGuard, TokenAfterUnauthorizedOptions } from './adapterSupport.js';
export { redactSecrets, REDACTED } from './redactSecrets.js';
export type { RedactSecretsOptions, RedactSecretsResult } from './redactSecrets.js';
export type { TokenSourceState, TokenSourceStatus } from './tokenSource.js';
export { readiness } from './readiness.js';
export type { ReadinessHandler, ReadinessReport, ReadinessEntry, ReadinessRequest, ReadinessResponse, ReadinessOptions, StatusSource, StatusSourceCollection } from './readiness.js';
export { DIAGNOSTICS_CHANNELS } from './diagnostics.js';
export type {
  DiagnosticsChannelName,
  DiagnosticsMessages,
  SourceRef,
  ReadTrigger,
  TokenFacts,
  TokenLoadedMessage,
  TokenRefreshedMessage,
  TokenExpiredMessage,
  TokenInvalidatedMessage,
  ReadFinishedMessage,
  ReadFailedMessage,
  WatchFailedMessage,
  WatchRearmedMessage,
  UnauthorizedMessage,
  SourceClosedMessage,
} from './diagnostics.js';
