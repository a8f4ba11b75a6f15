import podtokenFetch = require('@podtoken/fetch');
import core = require('@podtoken/core');
import nodeFetch3 = require('node-fetch');
import nodeFetch2 = require('node-fetch-v2');

const source = core.staticTokenSource('not-a-real-token');
// The global fetch: the wrapper has its type.
const apiFetch: typeof fetch = podtokenFetch.withTokenSource(fetch, source, { origins: ['https://api.example'] });
const response: Promise<Response> = apiFetch('https://api.example/items/1', { headers: { accept: 'application/json' } });
// node-fetch 3 (ESM only, require()d) and node-fetch 2 (CommonJS, @types/node-fetch).
const fetch3 = podtokenFetch.withTokenSource(nodeFetch3.default, source);
const response3: Promise<nodeFetch3.Response> = fetch3('https://api.example/items/1');
const fetch2 = podtokenFetch.withTokenSource(nodeFetch2, source);
const response2: Promise<nodeFetch2.Response> = fetch2('https://api.example/items/1');
void response;
void response3;
void response2;
