"use strict";
const http = require("node:http");
const isNumber = require("is-number");
const { greeting, uptime } = require("@acme/shared");

const port = isNumber(process.env.PORT) ? Number(process.env.PORT) : 8080;

http
  .createServer((req, res) => {
    res.setHeader("content-type", "text/html");
    res.end(`<p>${greeting("visitor", "@acme/web")}, up ${uptime()}</p>\n`);
  })
  .listen(port, () => console.log(`@acme/web listening on :${port}`));
