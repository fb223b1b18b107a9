#!/usr/bin/env node
// The `gatehouse` command. Runs the compiled code in dist/ (built by `npm run build`).
import { existsSync } from 'node:fs';

const entry = new URL('../dist/main.js', import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write('gatehouse: not built yet; run `npm run build` first (npm start and npm test build it for you).\n');
  process.exit(1);
}
// Commands that must start fast (Squid starts several helpers) skip the full CLI and its imports.
const fast = { 'squid-helper': ['../dist/filtering/squid/cli.js', 'squidHelperMain'] };
if (fast[process.argv[2]]) {
  const [file, name] = fast[process.argv[2]];
  process.stdout.on('error', () => process.exit(0));
  const run = (await import(new URL(file, import.meta.url).href))[name];
  process.exitCode = await run(process.argv.slice(3));
} else {
  const { main } = await import(entry.href);
  await main(process.argv);
}
