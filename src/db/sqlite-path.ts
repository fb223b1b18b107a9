import path from 'node:path';

/** The file behind a sqlite: URL. Kept apart from database.ts so light processes need not load Kysely. */
export function sqlitePathOf(databaseUrl: string): string {
  return path.resolve(databaseUrl.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, ''));
}
