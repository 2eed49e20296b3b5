const tides = [
  { time: '04:12', kind: 'high', metres: 4.1 },
  { time: '10:31', kind: 'low', metres: 0.9 },
  { time: '16:40', kind: 'high', metres: 4.3 },
  { time: '22:55', kind: 'low', metres: 0.7 },
];

export default function Home() {
  return (
    <main>
      <h1>hello from node-next</h1>
      <ul>
        {tides.map((t) => (
          <li key={t.time}>
            {t.time} {t.kind} water, {t.metres} m
          </li>
        ))}
      </ul>
    </main>
  );
}
