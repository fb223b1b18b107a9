import { z } from 'zod';
import { can } from '../core/authz.js';
import type { App } from '../http/app.js';
import type { Runtime } from '../runtime.js';
import type { DueItem } from './due.js';
import { dueProviders } from './providers.js';

const itemSchema = z.object({
  kind: z.string(),
  title: z.string(),
  detail: z.string().optional(),
  dueAt: z.string().nullable(),
  overdue: z.boolean(),
  href: z.string(),
  requirement: z.string(),
  permission: z.string(),
});

export function registerDashboardRoutes(app: App, rt: Runtime): void {
  app.get(
    '/api/dashboard/due',
    { config: { access: 'authenticated' }, schema: { summary: 'What needs attention, for the signed-in person’s role: overdue first, then by due date', tags: ['dashboard'], response: { 200: z.object({ items: z.array(itemSchema) }) } } },
    async (request) => {
      const role = request.auth!.role;
      const all: DueItem[] = (await Promise.all(dueProviders.map((p) => p(rt)))).flat();
      const items = all
        .filter((i) => can(role, i.permission))
        .sort((a, b) => Number(b.overdue) - Number(a.overdue) || (a.dueAt ?? '').localeCompare(b.dueAt ?? ''));
      return { items };
    },
  );
}
