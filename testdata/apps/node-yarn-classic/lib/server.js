'use strict';
const polka = require('polka');
const ms = require('ms');
const { shorten } = require('./links');

const port = Number(process.env.PORT || 3000);
const started = Date.now();

polka()
  .get('/', (req, res) => {
    res.end(`hello from node-yarn-classic, up ${ms(Date.now() - started + 1000)}\n`);
  })
  .get('/s/:url', (req, res) => {
    res.end(shorten(decodeURIComponent(req.params.url)) + '\n');
  })
  .listen(port, '0.0.0.0', () => console.log(`listening on ${port}`));
