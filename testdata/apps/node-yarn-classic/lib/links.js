'use strict';
const links = new Map();

function shorten(url) {
  const id = (links.size + 1).toString(36);
  links.set(id, url);
  return id;
}

module.exports = { shorten, links };
