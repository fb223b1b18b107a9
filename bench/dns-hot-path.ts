/**
 * The resolver's hot path alone, without sockets: a query message in, an answer out (a no-op
 * "send"), for half blocked UT1 names and half cached allowed names. Shows what the JavaScript costs
 * (CPU time) per query, apart from the kernel's UDP work that dominates the dnsperf figures.
 *   node --import tsx bench/dns-hot-path.ts [--queries 2000000] [--rounds 5] [--ut1 DIR]
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import dnsPacket from 'dns-packet';
import { compileSnapshot } from '../src/filtering/engine/snapshot.js';
import { ut1Categories } from '../src/filtering/engine/ut1.js';
import { StaticFilterPoint } from '../src/filtering/point.js';
import { createResolver } from '../src/filtering/dns/server.js';
import { startStubUpstream } from '../test/helpers/dns-upstream.js';

const { values } = parseArgs({ options: { queries: { type: 'string', default: '2000000' }, rounds: { type: 'string', default: '5' }, ut1: { type: 'string' }, names: { type: 'string', default: '10000' } } });
const here = path.dirname(fileURLToPath(import.meta.url));
const folder = values.ut1 ?? path.resolve(here, '..', '..', 'shared', 'data', 'ut1');
const WHITE = ['liste_blanche', 'liste_bu', 'exceptions_liste_bu'];
const categories = ut1Categories(folder).categories.filter((c) => !WHITE.includes(c.id));
const listed = [...new Set(categories.flatMap((c) => c.domains as string[]))].filter((n) => !/\d$/.test(n));
const snapshot = compileSnapshot({
  categories,
  timeZone: 'Europe/London',
  policies: [{ id: 'bench', name: 'Benchmark', blockedCategories: categories.map((c) => c.id), schedules: [], allowLists: [], blockLists: [], safeSearch: { search: 'off', youtube: 'off' }, defaultAction: 'allow', downloadsAllowed: false }],
});
const point = new StaticFilterPoint(snapshot, { unknownPolicy: 'bench', keep: false });

let seed = 7;
const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
const letters = 'abcdefghijklmnopqrstuvwxyz';
const label = (n: number) => Array.from({ length: n }, () => letters[Math.floor(rnd() * 26)]).join('');
const perHalf = Number(values.names);
const messages: Buffer[] = [];
for (let i = 0; i < perHalf; i++) {
  const opt = [{ name: '.', type: 'OPT', udpPayloadSize: 1232, extendedRcode: 0, ednsVersion: 0, flags: 0, options: [] } as unknown as dnsPacket.Answer];
  messages.push(dnsPacket.encode({ id: i, type: 'query', flags: dnsPacket.RECURSION_DESIRED, questions: [{ name: `${rnd() < 0.3 ? 'www.' : ''}${listed[Math.floor(rnd() * listed.length)]}`, type: 'A' }], additionals: opt }));
  messages.push(dnsPacket.encode({ id: i, type: 'query', flags: dnsPacket.RECURSION_DESIRED, questions: [{ name: `${label(6)}${i}.${label(8)}.net`, type: 'A' }], additionals: opt }));
}

const upstream = await startStubUpstream({ synthesize: true, ttl: 86_400 });
let sent = 0;
let bytes = 0;
// 192.0.2.10 (TEST-NET-1) is not in the default client networks: named, as a school names its own.
const resolver = createResolver(point, { upstreams: [upstream.spec], clientNetworks: ['192.0.2.0/24'] }, (answer) => {
  sent++;
  bytes += answer.length;
});
// Fill the cache through the upstream (a few hundred at a time: more would overflow its socket
// buffer), then measure hits and blocks only.
for (let i = 0; i < messages.length; i += 200) {
  for (const m of messages.slice(i, i + 200)) resolver.handle(m, '192.0.2.10', 5353, null);
  while (sent < Math.min(messages.length, i + 200)) await new Promise((r) => setTimeout(r, 5));
}
if (resolver.cache.size < perHalf * 0.99) throw new Error(`only ${resolver.cache.size} answers cached`);
const total = Number(values.queries);
const results: number[] = [];
for (let round = 0; round < Number(values.rounds); round++) {
  // CPU time, not wall time: other work on a shared machine then shows less.
  const started = process.cpuUsage();
  for (let i = 0; i < total; i++) resolver.handle(messages[i % messages.length]!, '192.0.2.10', 5353, null);
  const used = process.cpuUsage(started);
  const ns = ((used.user + used.system) * 1000) / total;
  results.push(ns);
}
results.sort((a, b) => a - b);
const median = results[Math.floor(results.length / 2)]!;
const out = { benchmark: 'dns-hot-path', queries: total, rounds: results.length, nsPerQueryMedian: +median.toFixed(0), queriesPerSecondOneCore: Math.round(1e9 / median), answers: sent, stats: resolver.stats };
process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
resolver.forwarder.close();
await upstream.close();
void bytes;
