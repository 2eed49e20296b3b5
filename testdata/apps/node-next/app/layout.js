export const metadata = { title: 'Tide tables', description: 'Tomorrow\'s tides at a glance' };

export default function RootLayout({ children }) {
  return (
    <html lang="en">
      <body>{children}</body>
    </html>
  );
}
