"use strict";
const ms = require("ms");
const { version } = require("./package.json");

const started = Date.now();

function greeting(who, app) {
  return `hello ${who} from ${app} (@acme/shared ${version})`;
}

function uptime() {
  return ms(Math.max(Date.now() - started, 1000));
}

module.exports = { greeting, uptime, version };
