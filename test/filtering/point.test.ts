import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileSnapshot } from '../../src/filtering/engine/snapshot.js';
import { activityRecord, StaticFilterPoint, type ActivityRecord } from '../../src/filtering/point.js';
import { startProxy, type ProxyHandle } from '../../src/filtering/proxy/proxy.js';
import { SquidHelper } from '../../src/filtering/squid/helper.js';

// Monday 7 September 2026, 19:00 in London.
const EVENING = Date.parse('2026-09-07T18:00:00Z');

const snapshot = compileSnapshot({
  timeZone: 'Europe/London',
  policies: [{ id: 'pupils', name: 'Pupils', blockedCategories: ['adult'], schedules: [], allowLists: [], blockLists: [], safeSearch: { search: 'off', youtube: 'off' }, defaultAction: 'allow', downloadsAllowed: false }],
  categories: [{ id: 'adult', name: 'Adult', description: '', kind: 'category', domains: ['adult.example'] }],
});

let point: StaticFilterPoint;
let proxy: ProxyHandle;

beforeAll(async () => {
  point = new StaticFilterPoint(snapshot, { unknownPolicy: 'pupils', clients: { '127.0.0.1': { policyId: 'pupils', deviceName: 'LAB-PC-07' } } });
  // Any proxy sign-in is accepted; the person is not one the filter point knows by name.
  proxy = await startProxy(point, { now: () => EVENING, auth: 'optional', authenticate: () => true });
});

afterAll(async () => {
  await proxy?.close();
});

/** A plain-HTTP request through the proxy, signed in as `user`; resolves with the status. */
function throughProxy(url: string, user: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: proxy.port, path: url, headers: { host: new URL(url).host, 'proxy-authorization': `Basic ${Buffer.from(`${user}:pw`).toString('base64')}` } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('activity records', () => {
  it('MO-01 one builder makes every point’s record: who identification named, else the user the request gave; nulls where not known', () => {
    const identity = point.identify('127.0.0.1');
    const verdict = snapshot.decide('adult.example', identity.policyIndex, EVENING);
    expect(activityRecord('dns', EVENING, '127.0.0.1', identity, verdict, { host: 'adult.example' })).toEqual({
      at: EVENING, point: 'dns', clientIp: '127.0.0.1', deviceId: null, deviceName: 'LAB-PC-07', personId: null, username: null,
      host: 'adult.example', url: null, searchTerm: null, action: 'block', category: 'adult', rule: 'category', policy: 'Pupils',
    });
    expect(activityRecord('squid', EVENING, '127.0.0.1', identity, verdict, { host: 'adult.example', user: 'j.smith' }).username).toBe('j.smith');
    const named = { ...identity, username: 'pupil.one' };
    expect(activityRecord('proxy', EVENING, '127.0.0.1', named, { action: 'block', category: null, rule: 'port', policy: 'Pupils' }, { host: 'x.example', user: 'j.smith' })).toMatchObject({ username: 'pupil.one', rule: 'port', category: null });
  });

  it('MO-01 the proxy and the Squid helper record the same request alike (URL, search term, signed-in user)', async () => {
    const url = 'http://adult.example/search?q=forbidden+words';
    point.recorded.length = 0;
    expect(await throughProxy(url, 'j.smith')).toBe(403);
    const squid = new SquidHelper(point, { now: () => EVENING });
    expect(squid.answer(`1 127.0.0.1 ${url} j.smith GET -`)).toMatch(/^1 ERR /);
    const [byProxy, bySquid] = point.recorded as [ActivityRecord, ActivityRecord];
    expect(point.recorded).toHaveLength(2);
    expect(byProxy).toEqual({
      at: EVENING, point: 'proxy', clientIp: '127.0.0.1', deviceId: null, deviceName: 'LAB-PC-07', personId: null, username: 'j.smith',
      host: 'adult.example', url, searchTerm: 'forbidden words', action: 'block', category: 'adult', rule: 'category', policy: 'Pupils',
    });
    expect(bySquid).toEqual({ ...byProxy, point: 'squid' });
  });
});
