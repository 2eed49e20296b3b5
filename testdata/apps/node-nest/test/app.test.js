const test = require('node:test');
const assert = require('node:assert');

test('the compiled service greets', () => {
  const { GreetingService } = require('../dist/greeting.service');
  assert.match(new GreetingService().greet('a'), /^hello a/);
});
