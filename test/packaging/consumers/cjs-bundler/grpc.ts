import grpc = require('@grpc/grpc-js');
import core = require('@podtoken/core');
import podtokenGrpc = require('@podtoken/grpc');

const source = core.staticTokenSource('not-a-real-token');
const setup: podtokenGrpc.GrpcTokenSetup = podtokenGrpc.withTokenSource(grpc.credentials.createSsl(), source, { retryUnauthorized: true });
const client = new grpc.Client('orders.internal:8443', setup.credentials, { interceptors: setup.interceptors });
const composed = grpc.credentials.combineChannelCredentials(grpc.credentials.createSsl(), podtokenGrpc.tokenCallCredentials(source));
const retry: grpc.Interceptor = podtokenGrpc.unauthenticatedRetry(source);
void client;
void composed;
void retry;
