import type { DueProvider } from './due.js';

/** Every module's contribution to "needs attention" (add yours here). */
export const dueProviders: DueProvider[] = [];
