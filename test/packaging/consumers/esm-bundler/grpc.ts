import { credentials, Client, type Interceptor } from '@grpc/grpc-js';
import { staticTokenSource } from '@podtoken/core';
import { tokenCallCredentials, unauthenticatedRetry, withTokenSource, type GrpcTokenSetup } from '@podtoken/grpc';

const source = staticTokenSource('not-a-real-token');
const setup: GrpcTokenSetup = withTokenSource(credentials.createSsl(), source, { retryUnauthorized: true });
const client = new Client('orders.internal:8443', setup.credentials, { interceptors: setup.interceptors });
const composed = credentials.combineChannelCredentials(credentials.createSsl(), tokenCallCredentials(source));
const retry: Interceptor = unauthenticatedRetry(source);
void client;
void composed;
void retry;
