export default function Home() {
  return <main>hello</main>;
}
