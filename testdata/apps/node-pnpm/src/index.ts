import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { todos } from './todos.js';

const app = new Hono();

app.get('/', (c) => c.text(`hello from node-pnpm on node ${process.version}, ${todos.length} todos\n`));
app.get('/todos', (c) => c.json(todos));

serve({ fetch: app.fetch, port: Number(process.env.PORT ?? 3000), hostname: '0.0.0.0' }, (info) => {
  console.log(`listening on ${info.port}`);
});
