import { withTokenSource } from '@podtoken/fetch';
import { staticTokenSource } from '@podtoken/core';
import nodeFetch3, { type Response as Response3 } from 'node-fetch';
import nodeFetch2, { type Response as Response2 } from 'node-fetch-v2';

const source = staticTokenSource('not-a-real-token');
// The global fetch: the wrapper has its type.
const apiFetch: typeof fetch = withTokenSource(fetch, source, { origins: ['https://api.example'] });
const response: Promise<Response> = apiFetch('https://api.example/items/1', { headers: { accept: 'application/json' } });
// node-fetch 3 and node-fetch 2 (@types/node-fetch).
const response3: Promise<Response3> = withTokenSource(nodeFetch3, source)('https://api.example/items/1');
const response2: Promise<Response2> = withTokenSource(nodeFetch2, source)('https://api.example/items/1');
void response;
void response3;
void response2;
