// follow-redirects ships no types; the tests use one call of it.
declare module 'follow-redirects' {
  import type { ClientRequest, IncomingMessage, RequestOptions } from 'node:http';
  interface Wrapped {
    request(url: string, options: RequestOptions, callback: (response: IncomingMessage) => void): ClientRequest;
  }
  const followRedirects: { http: Wrapped; https: Wrapped };
  export default followRedirects;
}
