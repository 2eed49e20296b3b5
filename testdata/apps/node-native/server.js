'use strict';
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const { fnv1a, sqliteVersion } = require('native-hash');
const bufferutil = require('bufferutil');

const port = Number(process.env.PORT || 8080);

// bufferutil's masking is its own native code (a prebuilt binary shipped in the package)
function roundTrip(text) {
  const data = Buffer.from(text);
  const mask = Buffer.from([1, 2, 3, 4]);
  const masked = Buffer.alloc(data.length);
  bufferutil.mask(data, mask, masked, 0, data.length);
  bufferutil.unmask(masked, mask);
  return masked.toString();
}

http
  .createServer((req, res) => {
    const url = new URL(req.url, 'http://localhost');
    if (url.pathname === '/version') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(fs.readFileSync(path.join(__dirname, 'build-info.json')));
      return;
    }
    if (url.pathname === '/healthz') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"ok":true}\n');
      return;
    }
    const text = url.searchParams.get('text') || 'hello';
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(
      `hello from node-native: fnv1a(${text})=${fnv1a(text)} sqlite ${sqliteVersion()} ` +
        `mask round trip ${roundTrip(text) === text}\n`,
    );
  })
  .listen(port, '0.0.0.0', () => console.log(`listening on ${port}`));
