import gotModule = require('got');
import podtokenGot = require('@podtoken/got');
import core = require('@podtoken/core');

// got is ESM only: a CommonJS app require()s it (Node >= 20.19; TypeScript >= 5.8 with nodenext).
const got = gotModule.default;
const source = core.staticTokenSource('not-a-real-token');
const client: gotModule.Got = podtokenGot.withTokenSource(got, source, { origins: ['https://api.example'] });
const body: Promise<{ id: number }> = client.get('https://api.example/items/1').json<{ id: number }>();
const hooked = got.extend({ hooks: podtokenGot.tokenSourceHooks(source) });
void body;
void hooked;
