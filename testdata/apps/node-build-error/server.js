'use strict';
const http = require('node:http');
const fs = require('node:fs');
const path = require('node:path');

http
  .createServer((req, res) => {
    const name = req.url === '/' ? 'index.html' : path.basename(req.url);
    fs.readFile(path.join(__dirname, 'public', name), (err, data) => {
      res.writeHead(err ? 404 : 200, { 'content-type': 'text/html' });
      res.end(err ? 'not found\n' : data);
    });
  })
  .listen(Number(process.env.PORT || 8080), '0.0.0.0');
