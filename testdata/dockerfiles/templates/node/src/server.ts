import express, { Request, Response } from "express";

const app = express();
const port = Number(process.env.PORT ?? 3000);

app.get("/", (_req: Request, res: Response) => {
  res.type("text/plain").send(`hello from the node template on node ${process.version}\n`);
});

app.get("/healthz", (_req: Request, res: Response) => {
  res.json({ ok: true });
});

app.listen(port, "0.0.0.0", () => {
  console.log(`listening on ${port}`);
});
