const n = require('is-number'); console.log('is-number', n(42), n('x'));
