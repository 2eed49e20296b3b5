import polka from 'polka';

const port = Number(process.env.PORT || 3000);
const checks = { db: 'ok', queue: 'ok' };

polka()
  .get('/', (req, res) => {
    res.end(`hello from node-yarn-berry: ${Object.entries(checks).map(([k, v]) => `${k} ${v}`).join(', ')}\n`);
  })
  .listen(port, '0.0.0.0', () => console.log(`listening on ${port}`));
