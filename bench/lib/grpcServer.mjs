// A loopback gRPC server (TLS) for the grpc benchmark, in its own process so that the client
// process's CPU is what the benchmark measures. One unary method; answers OK to a call with a
// Bearer token in its metadata and UNAUTHENTICATED to one without (cheap: no signature
// check). The parent sends { cert, key } over IPC and gets { port } back.
import { Server, ServerCredentials, status } from '@grpc/grpc-js';
import { ECHO } from './grpcService.mjs';

process.once('message', ({ cert, key }) => {
  const server = new Server();
  server.addService(ECHO, {
    echo(call, callback) {
      const [authorization] = call.metadata.get('authorization');
      if (typeof authorization === 'string' && /^Bearer \S+$/.test(authorization)) callback(null, { ok: true });
      else callback({ code: status.UNAUTHENTICATED, details: 'no token' });
    },
  });
  const credentials = ServerCredentials.createSsl(null, [{ private_key: Buffer.from(key), cert_chain: Buffer.from(cert) }], false);
  server.bindAsync('127.0.0.1:0', credentials, (error, port) => {
    if (error) throw error;
    process.send({ port });
  });
});
process.on('disconnect', () => process.exit(0));
