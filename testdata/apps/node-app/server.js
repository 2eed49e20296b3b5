// Prints a greeting (and the build's banner when present) and exits.
'use strict';
const fs = require('fs');
const path = require('path');

console.log('hello from node');
const banner = path.join(__dirname, 'dist', 'banner.txt');
if (fs.existsSync(banner)) {
  process.stdout.write(fs.readFileSync(banner, 'utf8'));
}
