import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { DnsStats } from '../filtering/dns/server.js';
import type { ProxyStats } from '../filtering/proxy/proxy.js';
import type { Runtime } from '../runtime.js';

/** Prometheus metrics: process defaults, HTTP traffic by route, and the audit trail's head. */
export class Metrics {
  readonly registry = new Registry();
  readonly signIns: Counter<'result'>;
  private readonly requests: Histogram<'method' | 'route' | 'status'>;

  constructor(runtime: Runtime) {
    collectDefaultMetrics({ register: this.registry, prefix: 'gatehouse_' });
    this.requests = new Histogram({
      name: 'gatehouse_http_request_duration_seconds',
      help: 'HTTP requests by method, route pattern and status, with their duration.',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
      registers: [this.registry],
    });
    new Gauge({
      name: 'gatehouse_audit_events',
      help: 'Sequence number of the newest audit event.',
      registers: [this.registry],
      async collect() {
        const head = await runtime.db.kysely.selectFrom('audit_event').select('seq').orderBy('seq', 'desc').limit(1).executeTakeFirst();
        this.set(head ? Number(head.seq) : 0);
      },
    });
    new Gauge({
      name: 'gatehouse_audit_unsigned_events',
      help: 'Audit events not yet covered by a signed checkpoint.',
      registers: [this.registry],
      async collect() {
        const head = await runtime.db.kysely.selectFrom('audit_event').select('seq').orderBy('seq', 'desc').limit(1).executeTakeFirst();
        const cp = await runtime.db.kysely.selectFrom('audit_checkpoint').select('seq').orderBy('seq', 'desc').limit(1).executeTakeFirst();
        this.set((head ? Number(head.seq) : 0) - (cp ? Number(cp.seq) : 0));
      },
    });
    this.signIns = new Counter({
      name: 'gatehouse_sign_ins_total',
      help: 'Sign-in attempts by result.',
      labelNames: ['result'],
      registers: [this.registry],
    });
  }

  /**
   * The filtering proxy's counters (when `serve` runs it): what it turned away by reason (outside
   * the client networks, a refused destination, a connection cap, a head too large or too slow, a
   * malformed request) and the connections open now.
   */
  watchProxy(stats: ProxyStats): void {
    new Counter({
      name: 'gatehouse_proxy_refused_total',
      help: 'Connections and requests the filtering proxy turned away, by reason.',
      labelNames: ['reason'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const [reason, n] of Object.entries(stats.refused)) this.inc({ reason }, n);
      },
    });
    new Counter({
      name: 'gatehouse_proxy_requests_total',
      help: 'Requests (plain HTTP) and tunnels (CONNECT) the filtering proxy decided on.',
      labelNames: ['kind'],
      registers: [this.registry],
      collect() {
        this.reset();
        this.inc({ kind: 'http' }, stats.requests);
        this.inc({ kind: 'tunnel' }, stats.tunnels);
      },
    });
    new Gauge({
      name: 'gatehouse_proxy_connections',
      help: 'Client connections open on the filtering proxy now.',
      registers: [this.registry],
      collect() {
        this.set(stats.connections);
      },
    });
  }

  /**
   * The DNS resolver's counters (when `serve` runs it): queries and TCP connections turned away
   * before any decision (outside the client networks, past a client's rate, one TCP connection too
   * many from a device), and the queries answered.
   */
  watchDns(stats: () => DnsStats): void {
    new Counter({
      name: 'gatehouse_dns_refused_total',
      help: 'Queries and TCP connections the DNS resolver turned away before reading them, by reason.',
      labelNames: ['reason'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const [reason, n] of Object.entries(stats().refused)) this.inc({ reason }, n);
      },
    });
    new Counter({
      name: 'gatehouse_dns_queries_total',
      help: 'Queries the DNS resolver read and decided on (blocked ones included).',
      registers: [this.registry],
      collect() {
        this.reset();
        this.inc(stats().queries);
      },
    });
  }

  observeRequest(method: string, route: string, status: number, seconds: number): void {
    this.requests.observe({ method, route, status: String(status) }, seconds);
  }
}
