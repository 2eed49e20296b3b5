'use strict';
const binding = require('./build/Release/native_hash.node');

module.exports = {
  /** 32-bit FNV-1a of a string's UTF-8 bytes, as 8 hex digits. */
  fnv1a(text) {
    return binding.fnv1a(Buffer.from(String(text), 'utf8')).toString(16).padStart(8, '0');
  },
  /** The version of the SQLite library the addon is linked with. */
  sqliteVersion() {
    return binding.sqliteVersion();
  },
};
