// Not part of the image: test/ is left out of the app layer.
'use strict';
const { execFileSync } = require('child_process');
const path = require('path');

const out = execFileSync(process.execPath, [path.join(__dirname, '..', 'server.js')]).toString();
if (!out.includes('hello from node')) {
  throw new Error(`unexpected output: ${out}`);
}
console.log('1 passed, 0 failed');
