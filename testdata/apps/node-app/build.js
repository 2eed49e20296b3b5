// Writes dist/banner.txt deterministically (no timestamps, no randomness).
'use strict';
const fs = require('fs');
const path = require('path');

const pkg = require('./package.json');
fs.mkdirSync(path.join(__dirname, 'dist'), { recursive: true });
fs.writeFileSync(path.join(__dirname, 'dist', 'banner.txt'), `${pkg.name} ${pkg.version}\n`);
