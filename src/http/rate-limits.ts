import fastifyRateLimit from '@fastify/rate-limit';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Clock } from '../core/clock.js';
import type { Config } from '../core/config.js';
import { GatehouseError } from '../core/errors.js';
import { clientKey } from '../core/networks.js';
import type { App } from './app.js';

/**
 * Per-address request limits on the routes anyone can reach (issue 10, finding 12): a backstop
 * against floods, not the fine-grained defence. The account lockout and the address throttle
 * (identity/throttle.ts) decide about password guesses; these stop one address from hammering the
 * sign-in, reset, setup, block-page, captive, SCIM and identity-API routes at all.
 *
 * @fastify/rate-limit counts; this module says which routes belong to which class, with what limit
 * (from the configuration), keyed by the client's address after the trusted-proxy rule (request.ip)
 * and by the /64 for IPv6. A class is one budget across its routes, so the steps of a sign-in share
 * it. The check runs in the first onRequest hook, before a session, SCIM or identity token is looked
 * up and before any password is hashed. Counts are per node and kept in memory, on the runtime's
 * clock.
 */

export type RateClass = 'signIn' | 'reset' | 'blockPage' | 'report' | 'api';

const WINDOW_MS = 60_000;

/** Which class a route belongs to (method and route pattern); null: not limited here. */
export function rateClassOf(method: string, route: string | undefined): RateClass | null {
  if (!route) return null;
  if (route === '/api/session' && method === 'POST') return 'signIn';
  if (route === '/api/sign-in' || route.startsWith('/api/sign-in/')) return 'signIn';
  if (route === '/api/account/reauthenticate') return 'signIn';
  if (route.startsWith('/api/password-reset/') || route === '/api/setup') return 'reset';
  if (route === '/api/filtering/blocked' || route === '/api/filtering/connect') return 'blockPage';
  if (route === '/api/filtering/requests' && method === 'POST') return 'report';
  // incidents and breaches (issue 11): the public concern form shares the block page's report budget
  if (route === '/api/concerns' && method === 'POST') return 'report';
  if (route === '/api/filtering/identity' || route === '/scim/v2' || route.startsWith('/scim/v2/')) return 'api';
  // backup check-ins (issue 12): public URLs holding a token
  if (route.startsWith('/api/backups/checkin/')) return 'api';
  return null;
}

export function rateLimitsFrom(config: Config): Record<RateClass, number> {
  return {
    signIn: config.rateLimitSignInPerMinute,
    reset: config.rateLimitResetPerMinute,
    blockPage: config.rateLimitBlockPagePerMinute,
    report: config.rateLimitReportPerMinute,
    api: config.rateLimitApiPerMinute,
  };
}

interface Count {
  current: number;
  ttl: number;
  started: number;
}

/**
 * @fastify/rate-limit's store interface over the runtime's clock (the plugin's own store reads
 * Date.now). Fixed windows, like the plugin's; at most `maxKeys` addresses per class, expired ones
 * swept first, then the oldest.
 */
function clockStore(clock: Clock, maxKeys = 100_000) {
  return class ClockStore {
    private readonly counts = new Map<string, Count>();

    incr(key: string, callback: (error: Error | null, result: { current: number; ttl: number }) => void, timeWindow: number): void {
      const now = clock.now().getTime();
      let entry = this.counts.get(key);
      if (!entry || entry.started + timeWindow <= now) {
        if (entry) this.counts.delete(key);
        else if (this.counts.size >= maxKeys) this.sweep(now, timeWindow);
        entry = { current: 0, ttl: timeWindow, started: now };
        this.counts.set(key, entry);
      }
      entry.current++;
      entry.ttl = entry.started + timeWindow - now;
      callback(null, { current: entry.current, ttl: entry.ttl });
    }

    child(): ClockStore {
      return new ClockStore();
    }

    private sweep(now: number, timeWindow: number): void {
      for (const [key, entry] of this.counts) if (entry.started + timeWindow <= now) this.counts.delete(key);
      // Map order is insertion order: drop the oldest when every window is still open.
      for (const key of this.counts.keys()) {
        if (this.counts.size < maxKeys) break;
        this.counts.delete(key);
      }
    }
  };
}

type Limiter = (request: FastifyRequest, reply: FastifyReply) => Promise<void>;

/** Registers the plugin and the hook; call before the authentication hook so floods are cut first. */
export async function registerRateLimits(app: App, config: Config, clock: Clock): Promise<void> {
  await app.register(fastifyRateLimit, {
    global: false,
    store: clockStore(clock) as never,
    keyGenerator: (request) => clientKey(request.ip),
    errorResponseBuilder: (_request, context) => {
      const seconds = Math.max(1, Math.ceil(context.ttl / 1000));
      return new GatehouseError('rate_limited', 429, `Too many requests from this address. Wait ${seconds} second${seconds === 1 ? '' : 's'} and try again.`, { retryAfterSeconds: seconds });
    },
  });
  const limits = rateLimitsFrom(config);
  const limiters = Object.fromEntries(
    (Object.keys(limits) as RateClass[]).map((cls) => [cls, (app as unknown as { rateLimit(options: object): Limiter }).rateLimit({ max: limits[cls], timeWindow: WINDOW_MS })]),
  ) as Record<RateClass, Limiter>;
  app.addHook('onRequest', async (request, reply) => {
    const cls = rateClassOf(request.method, request.routeOptions.url);
    if (cls) await limiters[cls](request, reply);
  });
}
