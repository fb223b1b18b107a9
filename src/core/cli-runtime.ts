import os from 'node:os';
import { openRuntime, type Runtime } from '../runtime.js';
import { loadConfig } from './config.js';
import { systemActor, type Actor } from './context.js';
import { createLogger } from './logger.js';

/** Who a command run on the server acts as, in the audit trail: the operating-system user. */
export const cliActor = (): Actor => systemActor(`cli:${os.userInfo().username}`);
export const cliMeta = { ip: null, requestId: null };

/** Opens the runtime from the environment for one command (no signing key: the server signs checkpoints). */
export async function withCliRuntime<T>(work: (rt: Runtime) => Promise<T>): Promise<T> {
  const { config } = loadConfig(process.env);
  const rt = await openRuntime(config, { logger: createLogger(process.env.GATEHOUSE_LOG_LEVEL ?? 'warn', 2), signing: 'none' });
  try {
    return await work(rt);
  } finally {
    await rt.close();
  }
}
