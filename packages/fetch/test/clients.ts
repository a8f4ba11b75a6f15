import { Readable } from 'node:stream';
import nodeFetch3 from 'node-fetch';
import nodeFetch2 from 'node-fetch-v2';
import type { AnyFetch, Client } from './support.js';

const nodeStream = (text: string) => ({ body: Readable.from([Buffer.from(text)]) });

/** The fetch implementations the adapter supports, at the versions installed. */
export const clients: readonly Client[] = [
  {
    name: `global fetch (undici ${process.versions.undici})`,
    fetch: globalThis.fetch as unknown as AnyFetch,
    stream: (text) => ({
      body: new ReadableStream({
        start(controller) {
          controller.enqueue(new TextEncoder().encode(text));
          controller.close();
        },
      }),
      duplex: 'half',
    }),
  },
  { name: 'node-fetch 3', fetch: nodeFetch3 as unknown as AnyFetch, stream: nodeStream },
  { name: 'node-fetch 2', fetch: nodeFetch2 as unknown as AnyFetch, stream: nodeStream },
];
