import { fetch } from 'undici';
const err = Object.assign(new Error('boom'), { code: 'TOKEN_EXPIRED' });
try { await fetch('https://127.0.0.1:1/x?watch=true', { dispatcher: { dispatch() { throw err; } } }); console.log('resolved?'); }
catch (e) { console.log('rejected', e.name, e.message, e.cause === err, e === err); }
