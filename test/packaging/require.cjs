// A CommonJS app: on Node >= 20.19, require() loads our ESM-only packages.
'use strict';
const names = process.argv.slice(2);
const result = {};
for (const name of names) {
  const mod = require(name);
  result[name] = { exports: Object.keys(mod).sort(), resolved: require.resolve(name) };
}
const { FileTokenSource, isTokenSourceError, TokenSourceError } = require('@podtoken/core');
result.instanceOk = typeof FileTokenSource === 'function' && isTokenSourceError(new TokenSourceError('TOKEN_MALFORMED', 'x'));
process.stdout.write(JSON.stringify(result));
