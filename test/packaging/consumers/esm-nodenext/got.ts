import got, { type Got } from 'got';
import { tokenSourceHooks, withTokenSource } from '@podtoken/got';
import { staticTokenSource } from '@podtoken/core';

const source = staticTokenSource('not-a-real-token');
const client: Got = withTokenSource(got, source, { origins: ['https://api.example'] });
const body: Promise<{ id: number }> = client.get('https://api.example/items/1').json<{ id: number }>();
const hooked = got.extend({ hooks: tokenSourceHooks(source) });
void body;
void hooked;
