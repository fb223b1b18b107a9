import { closeSync, mkdirSync, openSync, symlinkSync, writeSync } from 'node:fs';
import path from 'node:path';

/**
 * A small streaming reader for tar archives (ustar, GNU long names, pax paths), enough for the
 * UT1 `blacklists.tar.gz` layout: regular files, folders and relative symbolic links. Every name is
 * checked to stay inside the destination (no absolute paths, no `..`); anything else (devices,
 * hard links) is skipped. The caller gunzips first (node:zlib). Limits on the unpacked size, the
 * number of entries and one entry's size stop an archive bomb before it fills the disk or the
 * memory; each error names the limit.
 */
/** What is wrong with an archive; the message never quotes its content. */
export class TarError extends Error {}

export interface TarLimits {
  /** the whole unpacked stream (headers, every entry, kept or not): a gzip bomb stops here */
  maxBytes: number;
  /** entries of any kind (files, folders, links, long names) */
  maxEntries?: number;
  /** one entry's size, as its header declares it (checked before its data is read) */
  maxEntryBytes?: number;
}

/** "12 MB", or "800 KB" for the small limits tests use. */
const describe = (bytes: number) => (bytes >= 1_048_576 ? `${Math.round(bytes / 1_048_576).toLocaleString('en-GB')} MB` : `${Math.max(1, Math.round(bytes / 1024))} KB`);

export async function extractTar(input: AsyncIterable<Buffer>, dest: string, options: TarLimits & { want?: (name: string) => boolean }): Promise<{ files: number; bytes: number; entries: number }> {
  mkdirSync(dest, { recursive: true });
  const maxEntries = options.maxEntries ?? Number.POSITIVE_INFINITY;
  const maxEntryBytes = options.maxEntryBytes ?? Number.POSITIVE_INFINITY;
  let pending: Buffer[] = [];
  let pendingLength = 0;
  let files = 0;
  let total = 0;
  let unpacked = 0;
  let entries = 0;
  // state: reading a header, or the body of an entry (remaining bytes, then padding)
  let body: { remaining: number; padding: number; fd: number | null; kind: 'file' | 'longname' | 'pax' | 'skip'; collected: Buffer[] } | null = null;
  let longName: string | null = null;
  let paxPath: string | null = null;

  const take = (n: number): Buffer => {
    const all = pending.length === 1 ? pending[0]! : Buffer.concat(pending, pendingLength);
    const out = all.subarray(0, n);
    const rest = all.subarray(n);
    pending = rest.length > 0 ? [rest] : [];
    pendingLength = rest.length;
    return out;
  };

  const safe = (name: string): string | null => {
    const clean = name.replace(/^\.\//, '').replace(/\/+$/, '');
    if (!clean || clean.startsWith('/') || clean.split('/').some((part) => part === '..' || part === '')) return null;
    return clean;
  };

  const finishBody = () => {
    if (!body) return;
    if (body.fd !== null) closeSync(body.fd);
    if (body.kind === 'longname') longName = Buffer.concat(body.collected).toString('utf8').replace(/\0.*$/s, '');
    if (body.kind === 'pax') {
      const text = Buffer.concat(body.collected).toString('utf8');
      const m = /\d+ path=([^\n]*)\n/.exec(text);
      if (m) paxPath = m[1]!;
    }
    body = null;
  };

  let ended = false;
  for await (const chunk of input) {
    if (ended) continue;
    unpacked += chunk.length;
    if (unpacked > options.maxBytes) throw new TarError(`the archive unpacks to more than ${describe(options.maxBytes)}, the limit`);
    pending.push(chunk);
    pendingLength += chunk.length;
    for (;;) {
      if (body) {
        if (body.remaining > 0) {
          if (pendingLength === 0) break;
          const n = Math.min(body.remaining, pendingLength);
          const part = take(n);
          body.remaining -= n;
          if (body.fd !== null) writeSync(body.fd, part);
          else if (body.kind === 'longname' || body.kind === 'pax') body.collected.push(Buffer.from(part));
          continue;
        }
        if (body.padding > 0) {
          if (pendingLength < body.padding) break;
          take(body.padding);
          body.padding = 0;
        }
        finishBody();
        continue;
      }
      if (pendingLength < 512) break;
      const header = take(512);
      if (header.every((b) => b === 0)) {
        ended = true;
        break;
      }
      const field = (start: number, length: number) => header.subarray(start, start + length).toString('utf8').replace(/\0.*$/s, '');
      const size = parseInt(field(124, 12).trim() || '0', 8);
      if (!Number.isFinite(size) || size < 0) throw new TarError('the archive is damaged (a header has no size)');
      entries++;
      if (entries > maxEntries) throw new TarError(`the archive has more than ${maxEntries.toLocaleString('en-GB')} entries, the limit`);
      if (size > maxEntryBytes) throw new TarError(`an entry of the archive is ${describe(size)}, above the limit of ${describe(maxEntryBytes)} for one file`);
      const type = String.fromCharCode(header[156]!) || '0';
      const prefix = field(345, 155);
      let name = longName ?? paxPath ?? (prefix ? `${prefix}/${field(0, 100)}` : field(0, 100));
      if (type !== 'L' && type !== 'x') {
        longName = null;
        paxPath = null;
      }
      const padding = (512 - (size % 512)) % 512;
      const entry = { remaining: size, padding, fd: null as number | null, kind: 'skip' as 'file' | 'longname' | 'pax' | 'skip', collected: [] as Buffer[] };
      if (type === 'L') entry.kind = 'longname';
      else if (type === 'x') entry.kind = 'pax';
      else {
        const clean = safe(name);
        name = clean ?? name;
        if (clean && (type === '0' || type === '\0' || type === '7') && (!options.want || options.want(clean))) {
          total += size;
          if (total > options.maxBytes) throw new TarError(`the archive unpacks to more than ${describe(options.maxBytes)}, the limit`);
          const file = path.join(dest, clean);
          mkdirSync(path.dirname(file), { recursive: true });
          entry.fd = openSync(file, 'w');
          entry.kind = 'file';
          files++;
        } else if (clean && type === '5') {
          mkdirSync(path.join(dest, clean), { recursive: true });
        } else if (clean && type === '2') {
          const target = field(157, 100);
          // Only a sibling in the same folder (UT1: drugs -> drogue).
          if (/^[A-Za-z0-9_.-]+$/.test(target) && target !== '..' && target !== '.') {
            const link = path.join(dest, clean);
            mkdirSync(path.dirname(link), { recursive: true });
            try {
              symlinkSync(target, link);
            } catch {
              // already there: keep the first
            }
          }
        }
      }
      body = entry;
    }
  }
  if (body) {
    if ((body as { fd: number | null }).fd !== null) closeSync((body as { fd: number }).fd);
    if ((body as { remaining: number }).remaining > 0) throw new TarError('the archive ends in the middle of a file');
  }
  return { files, bytes: total, entries };
}
