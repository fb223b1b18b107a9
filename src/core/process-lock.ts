import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const LOCK_FILE = 'gatehouse.pid';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * One server per data folder, and a way for `restore` to see that one is running. A pid file,
 * taken over when the process that wrote it is gone (after a crash or SIGKILL).
 */
export class ProcessLock {
  private constructor(private readonly file: string) {}

  static holder(dataDir: string): number | undefined {
    try {
      const pid = Number(readFileSync(path.join(dataDir, LOCK_FILE), 'utf8').trim());
      return Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid) ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  static acquire(dataDir: string): ProcessLock {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    const file = path.join(dataDir, LOCK_FILE);
    const holder = ProcessLock.holder(dataDir);
    if (holder) {
      throw new Error(`Another Gatehouse server (process ${holder}) is already running with the data folder ${dataDir}.`);
    }
    writeFileSync(file, `${process.pid}\n`, { mode: 0o644 });
    return new ProcessLock(file);
  }

  release(): void {
    try {
      if (readFileSync(this.file, 'utf8').trim() === String(process.pid)) rmSync(this.file, { force: true });
    } catch {
      // already gone
    }
  }
}
