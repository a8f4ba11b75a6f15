// A loopback HTTP server for bench 2, run in its own process so that the client process's
// CPU is what the benchmark measures. Answers 200 to a request with a Bearer token and 401
// to one without (cheap: no signature check), and sends its port to the parent.
import { createServer } from 'node:http';

const body = JSON.stringify({ ok: true });
const server = createServer((request, response) => {
  const ok = /^Bearer \S+$/.test(request.headers.authorization ?? '');
  response.writeHead(ok ? 200 : 401, { 'content-type': 'application/json', 'content-length': String(body.length) });
  response.end(body);
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));
process.on('disconnect', () => process.exit(0));
