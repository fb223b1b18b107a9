import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
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

  observeRequest(method: string, route: string, status: number, seconds: number): void {
    this.requests.observe({ method, route, status: String(status) }, seconds);
  }
}
