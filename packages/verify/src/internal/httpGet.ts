import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';

/** What {@link httpGet} takes. */
export interface HttpGetOptions {
  /** PEM bundle to verify an https server with; default: Node's root certificates. */
  readonly ca?: string | Buffer | undefined;
  /** The `Authorization` header value, when one is sent. */
  readonly authorization?: string | undefined;
  /** Cancels the request. */
  readonly signal: AbortSignal;
  /** A larger body fails the request (it is not read further). */
  readonly maxBytes: number;
  readonly accept: string;
}

/** A response, read in full. */
export interface HttpGetResponse {
  readonly status: number;
  readonly body: Buffer;
}

/**
 * One GET with node:http(s), read in full up to `maxBytes`. Redirects are not followed (the
 * answer is returned as it is): a redirect must not carry the `Authorization` header
 * elsewhere, and jose wants the key set from the URL it was given.
 */
export function httpGet(url: URL, options: HttpGetOptions): Promise<HttpGetResponse> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { accept: options.accept, 'user-agent': 'podtoken-verify' };
    if (options.authorization !== undefined) headers['authorization'] = options.authorization;
    const settings = { method: 'GET', headers, signal: options.signal };
    const request =
      url.protocol === 'https:'
        ? httpsRequest(url, options.ca === undefined ? settings : { ...settings, ca: options.ca })
        : httpRequest(url, settings);
    request.on('error', reject);
    request.on('response', (response) => {
      const chunks: Buffer[] = [];
      let size = 0;
      response.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > options.maxBytes) {
          response.destroy();
          request.destroy();
          reject(new Error(`the response from ${url.origin} is larger than ${options.maxBytes} bytes`));
          return;
        }
        chunks.push(chunk);
      });
      response.on('error', reject);
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks) }));
    });
    request.end();
  });
}
