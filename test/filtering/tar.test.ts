import { existsSync, lstatSync, mkdtempSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { extractTar } from '../../src/filtering/tar.js';

/** One ustar entry: a 512-byte header, then the data padded to 512. */
function entry(name: string, data: string, type = '0', link = ''): Buffer {
  const header = Buffer.alloc(512);
  header.write(name, 0, 100, 'utf8');
  header.write('0000644\0', 100);
  header.write('0000000\0', 108);
  header.write('0000000\0', 116);
  header.write(`${Buffer.byteLength(data).toString(8).padStart(11, '0')}\0`, 124);
  header.write('00000000000\0', 136);
  header.write(type, 156);
  header.write(link, 157, 100, 'utf8');
  header.write('ustar\0', 257);
  header.write('00', 263);
  header.fill(' ', 148, 156);
  let sum = 0;
  for (const b of header) sum += b;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  const body = Buffer.alloc(Math.ceil(Buffer.byteLength(data) / 512) * 512);
  body.write(data);
  return Buffer.concat([header, body]);
}

async function* chunks(buffer: Buffer, size = 700): AsyncIterable<Buffer> {
  for (let i = 0; i < buffer.length; i += size) yield buffer.subarray(i, i + size);
}

describe('tar reader for list archives', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  const dest = () => {
    const d = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-tar-'));
    dirs.push(d);
    return path.join(d, 'out');
  };

  it('FI-04 unpacks the list files of an archive, in chunks of any size, and never writes outside its folder', async () => {
    const out = dest();
    const archive = Buffer.concat([
      entry('blacklists/', '', '5'),
      entry('blacklists/drogue/domains', 'drugs.example\n'.repeat(100)),
      entry('blacklists/drugs', '', '2', 'drogue'),
      entry('blacklists/escape', '', '2', '../../../etc'),
      entry('../evil/domains', 'pwned\n'),
      entry('/tmp/gatehouse-abs-domains', 'pwned\n'),
      entry('blacklists/drogue/notes.txt', 'not wanted'),
      Buffer.alloc(1024),
    ]);
    const result = await extractTar(chunks(archive), out, { maxBytes: 1_000_000, want: (name) => /(^|\/)domains$/.test(name) });
    expect(result).toEqual({ files: 1, bytes: 1400, entries: 7 });
    expect(readFileSync(path.join(out, 'blacklists', 'drogue', 'domains'), 'utf8')).toBe('drugs.example\n'.repeat(100));
    expect(readlinkSync(path.join(out, 'blacklists', 'drugs'))).toBe('drogue');
    expect(existsSync(path.join(out, 'blacklists', 'escape'))).toBe(false);
    expect(existsSync(path.join(out, '..', 'evil'))).toBe(false);
    expect(existsSync('/tmp/gatehouse-abs-domains')).toBe(false);
    expect(existsSync(path.join(out, 'blacklists', 'drogue', 'notes.txt'))).toBe(false);
    expect(lstatSync(path.join(out, 'blacklists')).isDirectory()).toBe(true);
  });

  it('FI-04 refuses an archive that unpacks beyond the limit, or ends in the middle of a file', async () => {
    const big = Buffer.concat([entry('a/domains', 'x'.repeat(5000)), Buffer.alloc(1024)]);
    await expect(extractTar(chunks(big), dest(), { maxBytes: 4000 })).rejects.toThrow(/unpacks to more than/);
    const cut = entry('a/domains', 'x'.repeat(5000)).subarray(0, 2048);
    await expect(extractTar(chunks(cut), dest(), { maxBytes: 1_000_000 })).rejects.toThrow(/ends in the middle of a file/);
  });
});
