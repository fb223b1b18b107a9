#!/usr/bin/env node
// The `gatehouse` command. Runs the compiled code in dist/ (built by `npm run build`).
import { existsSync } from 'node:fs';

const entry = new URL('../dist/main.js', import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write('gatehouse: not built yet; run `npm run build` first (npm start and npm test build it for you).\n');
  process.exit(1);
}
const { main } = await import(entry.href);
await main(process.argv);
