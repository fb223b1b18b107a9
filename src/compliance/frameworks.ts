import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { z } from 'zod';
import { isRole, type Role } from '../core/authz.js';
import { probe } from './probes.js';

/**
 * The frameworks a school is checked against (GV-08), as data files in `frameworks/` beside
 * `profiles/` — the shape CISO Assistant's libraries use: a framework, its clauses (numbers and
 * paraphrases only, never the publisher's text), and for each clause the evidence that meets it:
 * automatic probes over Gatehouse's data (src/compliance/probes.ts) and/or a manual sign-off by a
 * named role with what was seen. A file that names an unknown probe or role does not load.
 */
export const FRAMEWORKS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'frameworks');

const requirementId = z.string().regex(/^(AC|PW|FI|MO|IN|AU|AS|BK|GV|DP)-\d{2}$/, 'must be a requirement ID such as AC-07');

const evidenceSchema = z.union([
  z.object({ probe: z.string().min(1) }).strict(),
  z
    .object({
      /** what the person attests, e.g. "The governing body has approved the filtering review" */
      signoff: z.string().min(10).max(500),
      /** how long a sign-off holds */
      validMonths: z.number().int().min(1).max(60).default(12),
      /** who may sign it off (default: senior leaders) */
      by: z.array(z.string()).min(1).default(['senior_leader']),
    })
    .strict(),
]);

const clauseSchema = z
  .object({
    id: z.string().min(1).max(40),
    title: z.string().min(5).max(400),
    requirements: z.array(requirementId).default([]),
    evidence: z.array(evidenceSchema).min(1, 'a clause needs at least one kind of evidence'),
  })
  .strict();

const frameworkSchema = z
  .object({
    id: z.string().regex(/^[a-z0-9-]{2,60}$/, 'must be lower-case letters, digits and dashes'),
    name: z.string().min(3).max(200),
    publisher: z.string().min(2).max(200),
    version: z.string().min(1).max(40),
    url: z.url().optional(),
    /** shown under the name: what the file is, and that clauses are paraphrased */
    note: z.string().max(1000).optional(),
    clauses: z.array(clauseSchema).min(1),
  })
  .strict();

export type EvidenceSpec = { kind: 'probe'; probe: string } | { kind: 'signoff'; statement: string; validMonths: number; by: Role[] };

export interface Clause {
  id: string;
  title: string;
  requirements: string[];
  evidence: EvidenceSpec[];
}

export interface Framework {
  id: string;
  name: string;
  publisher: string;
  version: string;
  url: string | null;
  note: string | null;
  clauses: Clause[];
  file: string;
}

export class FrameworkError extends Error {}

/** Parses and checks one framework file's text. */
export function parseFramework(text: string, file: string): Framework {
  let raw: unknown;
  try {
    raw = parse(text, { maxAliasCount: 0 });
  } catch (error) {
    throw new FrameworkError(`${file}: not valid YAML (${(error as Error).message.split('\n')[0]})`);
  }
  const parsed = frameworkSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new FrameworkError(`${file}: ${issue.path.join('.') || '(top)'} ${issue.message}`);
  }
  const fw = parsed.data;
  const seen = new Set<string>();
  const clauses: Clause[] = fw.clauses.map((c) => {
    if (seen.has(c.id)) throw new FrameworkError(`${file}: clause ${c.id} appears twice`);
    seen.add(c.id);
    return {
      id: c.id,
      title: c.title,
      requirements: c.requirements,
      evidence: c.evidence.map((e): EvidenceSpec => {
        if ('probe' in e) {
          if (!probe(e.probe)) throw new FrameworkError(`${file}: clause ${c.id} names the probe "${e.probe}", which does not exist`);
          return { kind: 'probe', probe: e.probe };
        }
        const unknown = e.by.filter((r) => !isRole(r));
        if (unknown.length > 0) throw new FrameworkError(`${file}: clause ${c.id} names unknown roles: ${unknown.join(', ')}`);
        return { kind: 'signoff', statement: e.signoff, validMonths: e.validMonths, by: e.by as Role[] };
      }),
    };
  });
  return { id: fw.id, name: fw.name, publisher: fw.publisher, version: fw.version, url: fw.url ?? null, note: fw.note ?? null, clauses, file };
}

let cached: { dir: string; frameworks: Framework[] } | undefined;

/** Every framework in the folder, in file-name order; loaded once per process. */
export function loadFrameworks(dir = FRAMEWORKS_DIR): Framework[] {
  if (cached?.dir === dir) return cached.frameworks;
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .sort();
  const frameworks = files.map((f) => parseFramework(readFileSync(path.join(dir, f), 'utf8'), f));
  const ids = new Set<string>();
  for (const fw of frameworks) {
    if (ids.has(fw.id)) throw new FrameworkError(`${fw.file}: the framework id ${fw.id} is used by another file`);
    ids.add(fw.id);
  }
  cached = { dir, frameworks };
  return frameworks;
}
