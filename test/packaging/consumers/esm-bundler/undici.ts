import { Agent, interceptors, request, setGlobalDispatcher, type Dispatcher } from 'undici';
import { staticTokenSource } from '@podtoken/core';
import { tokenInterceptor, withTokenSource } from '@podtoken/undici';

const source = staticTokenSource('not-a-real-token');
const dispatcher: Dispatcher = new Agent().compose(tokenInterceptor(source, { origins: ['https://api.example'] }), interceptors.redirect({ maxRedirections: 3 }));
setGlobalDispatcher(withTokenSource(new Agent(), source, { origins: [/^https:\/\/[a-z]+\.example$/] }));
const answer: Promise<Dispatcher.ResponseData> = request('https://api.example/items/1', { dispatcher });
void answer;
