import undici = require('undici');
import core = require('@podtoken/core');
import podtokenUndici = require('@podtoken/undici');

const source = core.staticTokenSource('not-a-real-token');
const dispatcher: undici.Dispatcher = new undici.Agent().compose(
  podtokenUndici.tokenInterceptor(source, { origins: ['https://api.example'] }),
  undici.interceptors.redirect({ maxRedirections: 3 }),
);
undici.setGlobalDispatcher(podtokenUndici.withTokenSource(new undici.Agent(), source, { origins: [/^https:\/\/[a-z]+\.example$/] }));
const answer: Promise<undici.Dispatcher.ResponseData> = undici.request('https://api.example/items/1', { dispatcher });
void answer;
