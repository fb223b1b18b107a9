import { readFileSync } from 'node:fs';
import { isBlockCategory, parseList, parseUrlList, readUt1Folder, type Ut1Category } from './lists.js';
import type { CategoryInput } from './snapshot.js';

/**
 * Every category of a UT1 folder that a policy may block, as engine input (domains, URL prefixes,
 * expressions). UT1's whitelists and exception lists are left out (`isBlockCategory`).
 */
export function ut1Categories(folder: string): { categories: CategoryInput[]; meta: Ut1Category[] } {
  const meta = readUt1Folder(folder).filter(isBlockCategory);
  const categories = meta.map((c) => ({
    id: c.id,
    name: c.name,
    description: c.description,
    kind: 'category' as const,
    domains: c.domainsFile ? parseList(readFileSync(c.domainsFile, 'utf8'), 'domains').domains : [],
    urls: c.urlsFile ? parseUrlList(readFileSync(c.urlsFile, 'utf8')).urls : [],
    expressions: c.expressionsFile
      ? readFileSync(c.expressionsFile, 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'))
      : [],
  }));
  return { categories, meta };
}
