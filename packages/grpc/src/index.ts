export { tokenCallCredentials } from './tokenCallCredentials.js';
export { unauthenticatedRetry } from './unauthenticatedRetry.js';
export type { UnauthenticatedRetryOptions } from './unauthenticatedRetry.js';
export { withTokenSource } from './withTokenSource.js';
export type { GrpcTokenOptions, GrpcTokenSetup } from './withTokenSource.js';
export type { TokenSource } from '@podtoken/core';
