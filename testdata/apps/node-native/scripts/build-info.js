'use strict';
// Records what was built (version, the addon's self-check) in build-info.json, served at
// /version: run by `npm run build`, after the install compiled the addon.
const fs = require('node:fs');
const path = require('node:path');
const { fnv1a } = require('native-hash');

const root = path.join(__dirname, '..');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const info = { name: pkg.name, version: pkg.version, check: fnv1a(pkg.version) };
fs.writeFileSync(path.join(root, 'build-info.json'), JSON.stringify(info) + '\n');
console.log(`build-info.json: ${JSON.stringify(info)}`);
