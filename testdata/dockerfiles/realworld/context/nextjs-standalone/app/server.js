const os = require("node:os");
const greet = require("tiny-greet");
const { uid, gid } = os.userInfo();
const user = os.userInfo().username;
console.log(
  `${greet(user)}: next-like server on ${process.env.HOSTNAME}:${process.env.PORT} as ${user} (${uid}:${gid}) ` +
    `NODE_ENV=${process.env.NODE_ENV} telemetry=${process.env.NEXT_TELEMETRY_DISABLED}`
);
