import { timingSafeEqual } from 'node:crypto';
import { chmodSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { hashToken, newSecretToken } from '../core/ids.js';

/**
 * The one-time setup link. While no school exists the server makes a fresh token at each start,
 * prints the link on the terminal (not in the JSON logs, which may be shipped elsewhere) and
 * writes it to a 0600 file in the data folder. Only the token's hash is kept in memory. After
 * setup the gate closes for good: the database has a school, and setup is refused.
 */
export class SetupGate {
  private tokenHash: Buffer | undefined;
  readonly linkFile: string;

  constructor(dataDir: string) {
    this.linkFile = path.join(dataDir, 'setup-link.txt');
  }

  open(baseUrl: string): string {
    const token = newSecretToken();
    this.tokenHash = Buffer.from(hashToken(token), 'hex');
    // The token travels in the fragment: browsers never send it to a server, so it stays out of
    // access logs and proxies; the console reads it and posts it once.
    const link = `${baseUrl.replace(/\/$/, '')}/setup#token=${token}`;
    // mode applies only when the file is new: a link file left from an earlier start is made private too.
    writeFileSync(this.linkFile, `${link}\n`, { mode: 0o600 });
    chmodSync(this.linkFile, 0o600);
    return link;
  }

  matches(token: string): boolean {
    if (!this.tokenHash) return false;
    return timingSafeEqual(Buffer.from(hashToken(token), 'hex'), this.tokenHash);
  }

  close(): void {
    this.tokenHash = undefined;
    rmSync(this.linkFile, { force: true });
  }
}
