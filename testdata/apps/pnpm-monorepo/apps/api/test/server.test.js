"use strict";
const test = require("node:test");
const assert = require("node:assert");
const { greeting } = require("@acme/shared");

test("the api greets through the shared library", () => {
  assert.match(greeting("t", "@acme/api"), /^hello t from @acme\/api/);
});
