#!/usr/bin/env node
// The compiled CLI; `npm ci` builds it (the `prepare` script), `npm run build` rebuilds it.
try {
  require('../dist/src/cli/main.js');
} catch (err) {
  if (err && err.code === 'MODULE_NOT_FOUND' && /dist[\\/]src[\\/]cli/.test(err.message)) {
    console.error('montage is not built yet: run `npm run build` (npm ci does it for you)');
    process.exit(1);
  }
  throw err;
}
