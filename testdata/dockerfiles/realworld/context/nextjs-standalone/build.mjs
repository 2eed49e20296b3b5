// What `next build` leaves for a standalone deployment: .next/standalone (server.js, the
// package.json and the traced node_modules) and .next/static (hashed client assets).
import { mkdirSync, writeFileSync, readFileSync, copyFileSync, cpSync } from "node:fs";

mkdirSync(".next/standalone/.next", { recursive: true });
mkdirSync(".next/static/chunks/pages", { recursive: true });
mkdirSync(".next/static/css", { recursive: true });
copyFileSync("app/server.js", ".next/standalone/server.js");
copyFileSync("package.json", ".next/standalone/package.json");
// the traced dependencies of the server
cpSync("node_modules/tiny-greet", ".next/standalone/node_modules/tiny-greet", { recursive: true });
writeFileSync(".next/standalone/.next/BUILD_ID", "corpus-build\n");
const page = readFileSync("app/page.js", "utf8");
writeFileSync(".next/static/chunks/pages/index-3f2a.js", page.replace(/\s+/g, " "));
writeFileSync(".next/static/css/app-9c1d.css", "body{margin:0}\n");
console.log("built .next/standalone and .next/static");
