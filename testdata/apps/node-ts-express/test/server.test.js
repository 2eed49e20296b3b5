const test = require("node:test");
test("placeholder: tests never reach the image", () => {});
