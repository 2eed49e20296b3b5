import express from "express";
import { greeting, uptime } from "@acme/shared";

const port = Number(process.env.PORT ?? 3000);
const app = express();

app.get("/", (req, res) => {
  const who = typeof req.query.name === "string" ? req.query.name : "world";
  res.type("text/plain").send(`${greeting(who, "@acme/api")} on node ${process.version}, up ${uptime()}\n`);
});

app.get("/healthz", (_req, res) => {
  res.type("text/plain").send("ok\n");
});

app.listen(port, () => {
  console.log(`@acme/api listening on :${port}`);
});
