import polka from "polka";
import { greeting, uptime } from "@acme/shared";

const port = Number(process.env.PORT ?? 3000);

polka()
  .get("/", (req, res) => {
    const who = new URL(req.url ?? "/", "http://localhost").searchParams.get("name") ?? "world";
    res.end(`${greeting(who, "@acme/api")} on node ${process.version}, up ${uptime()}\n`);
  })
  .get("/healthz", (_req, res) => {
    res.end("ok\n");
  })
  .listen(port, () => {
    console.log(`@acme/api listening on :${port}`);
  });
