import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Config } from '../core/config.js';
import type { Logger } from '../core/logger.js';
import { openRuntime, type Runtime } from '../runtime.js';
import { getSchool } from '../school/service.js';
import { SetupGate } from '../school/setup-gate.js';
import { buildApp, type App } from './app.js';
import { ProcessLock } from '../core/process-lock.js';
import { scheduleGuestSweep } from '../guests/service.js';
import { scheduleComplianceSnapshots } from '../compliance/service.js';
// Issue 11: change control
import { scheduleChangeEscalation } from '../governance/changes.js';
import { scheduleExpiryReminders } from '../identity/reminders.js';
// incidents and breaches (issue 11)
import { scheduleBreachReminders } from '../incidents/service.js';
import { scheduleFingerprintEmails } from '../audit/fingerprint.js';
import { scheduleBackupMonitor } from '../registers/backups.js';
import { checkOwnBackupKey, scheduleOwnBackups } from '../registers/own-backup.js';
import { startFiltering } from '../filtering/serve.js';
// issue 11: safeguarding alerts
import { startAlerts } from '../monitoring/alerts.js';

export interface RunningServer {
  app: App;
  runtime: Runtime;
  url: string;
  /** Stops taking requests, lets in-flight ones finish, flushes and signs, closes the database. */
  stop(reason?: string): Promise<void>;
}

export interface ServeOptions {
  logger: Logger;
  /** Where the built console is; defaults to web/dist beside the package. */
  webRoot?: string;
  /** Print the setup link here (the terminal), never into the JSON log stream. */
  announce?: (text: string) => void;
}

const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export async function startServer(config: Config, options: ServeOptions): Promise<RunningServer> {
  const { logger } = options;
  const lock = ProcessLock.acquire(config.dataDir);
  let runtime: Runtime | undefined;
  try {
    runtime = await openRuntime(config, { logger, signing: 'create', checkpointTimer: true, recordProfile: true });
    checkOwnBackupKey(runtime);
    const gate = new SetupGate(config.dataDir);
    const https = config.tlsCertFile && config.tlsKeyFile
      ? { cert: readFileSync(config.tlsCertFile), key: readFileSync(config.tlsKeyFile) }
      : undefined;
    const app = await buildApp({
      runtime,
      setupGate: gate,
      webRoot: options.webRoot ?? path.join(packageRoot, 'web', 'dist'),
      https,
    });
    await app.listen({ host: config.host, port: config.port });
    const address = app.server.address();
    const port = typeof address === 'object' && address ? address.port : config.port;
    const shownHost = config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host.includes(':') ? `[${config.host}]` : config.host;
    const url = config.publicUrl ?? `${https ? 'https' : 'http'}://${shownHost}:${port}`;

    if (!(await getSchool({ db: runtime.db.kysely }))) {
      const link = gate.open(url);
      logger.warn({ linkFile: gate.linkFile }, 'Gatehouse is not set up yet: open the one-time setup link printed on the terminal (also in the link file)');
      (options.announce ?? ((text) => process.stderr.write(text)))(
        `\n  Gatehouse is not set up yet. To create the school and its first administrator, open:\n\n    ${link}\n\n  The link works once. It is also in ${gate.linkFile} (readable only by this user).\n\n`,
      );
    }
    logger.info({ url, database: runtime.db.dialect }, 'Gatehouse is listening');
    // Scheduled work: guest visits end on time and visitor details are wiped (AC-05).
    const guestSweep = scheduleGuestSweep(runtime);
    // PW-06: passwords about to expire are reminded by e-mail (once per expiry), besides at sign-in.
    const reminders = scheduleExpiryReminders(runtime);
    // AU-01: the trail's fingerprint to the headteacher and governor, evidence kept off the server.
    const fingerprints = scheduleFingerprintEmails(runtime);
    // GV-08: each framework's standing recorded daily, for the compliance history.
    const complianceSnapshots = scheduleComplianceSnapshots(runtime);
    // FI-06 (issue 11): emergency filtering changes unapproved too long are escalated to the approvers.
    const changeEscalation = scheduleChangeEscalation(runtime);
    // IN-04 (issue 11): the DPO reminded at 24, 48 and 66 hours of an undecided personal-data breach.
    const breachReminders = scheduleBreachReminders(runtime);
    // BK-02: backup jobs that miss or fail a run alert the IT lead (issue 12).
    const backupMonitor = scheduleBackupMonitor(runtime);
    // DP-01, DP-03: the server's own database backed up on a schedule (GATEHOUSE_BACKUP_DIR), encrypted with the backup key.
    const ownBackups = await scheduleOwnBackups(runtime);
    // Internet filtering: the service, and the DNS resolver and proxy when their ports are set.
    const filtering = await startFiltering(runtime, url);
    if (filtering.proxy) app.metrics.watchProxy(filtering.proxy.stats);
    if (filtering.dns) app.metrics.watchDns(filtering.dns.stats);
    // issue 11: safeguarding alerts: rules over each written batch of activity, security events, escalation
    const alerts = startAlerts(runtime);

    const activeRuntime = runtime;
    let stopping: Promise<void> | undefined;
    const stop = (reason = 'stop requested') => {
      stopping ??= (async () => {
        logger.info({ reason }, 'shutting down: finishing in-flight requests');
        app.state.shuttingDown = true;
        const grace = setTimeout(() => {
          logger.error({ seconds: config.shutdownGraceSeconds }, 'requests did not finish in time; stopping anyway');
          app.server.closeAllConnections();
        }, config.shutdownGraceSeconds * 1000);
        grace.unref();
        try {
          await filtering.stop();
          await alerts.stop();
          await app.close();
          await guestSweep.stop();
          await reminders.stop();
          await fingerprints.stop();
          await complianceSnapshots.stop();
          await changeEscalation.stop();
          await breachReminders.stop();
          await backupMonitor.stop();
          await ownBackups?.stop();
          await activeRuntime.close();
        } finally {
          clearTimeout(grace);
          gate.close();
          lock.release();
          logger.info('stopped');
        }
      })();
      return stopping;
    };
    return { app, runtime, url, stop };
  } catch (error) {
    await runtime?.close().catch(() => undefined);
    lock.release();
    throw error;
  }
}
