// Builds the batched-UDP module of the DNS resolver (udp_batch.c) when the build is missing or older
// than its source. Optional: when it cannot be built the resolver uses node:dgram, and this says why.
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = path.dirname(fileURLToPath(import.meta.url));
const built = path.join(dir, 'build', 'Release', 'gatehouse_udp.node');
const sources = ['udp_batch.c', 'binding.gyp'].map((name) => path.join(dir, name));
const warn = (why) => process.stderr.write(`gatehouse: the DNS resolver's batched UDP module was not built (${why}); it will use node:dgram, which answers fewer queries a second.\n`);

if (process.platform !== 'linux') {
  warn('it needs Linux');
  process.exit(0);
}
if (existsSync(built) && sources.every((source) => statSync(source).mtimeMs <= statSync(built).mtimeMs)) process.exit(0);

// npm tells scripts where its node-gyp is; otherwise look beside npm itself.
const nodeGyp = [process.env.npm_config_node_gyp, path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js')].find((file) => file && existsSync(file));
if (!nodeGyp) {
  warn('node-gyp not found');
  process.exit(0);
}
const result = spawnSync(process.execPath, [nodeGyp, 'rebuild', '--loglevel=warn', '--directory', dir], { stdio: ['ignore', 'ignore', 'inherit'] });
if (result.status !== 0) warn(`node-gyp exited with ${result.status ?? result.signal}; a C compiler and Node's headers are needed`);
