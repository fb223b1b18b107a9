import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig, redactedConfig } from '../../src/core/config.js';
import { ConfigError } from '../../src/core/errors.js';
import { runCli } from '../helpers/cli.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-config-'));

describe('configuration', () => {
  it('has working defaults: SQLite in ./data, port 8080 on loopback', () => {
    const { config, sources } = loadConfig({});
    expect(config.port).toBe(8080);
    expect(config.host).toBe('127.0.0.1');
    expect(config.databaseUrl).toBe(`sqlite:${path.resolve('data', 'gatehouse.db')}`);
    expect(config.argon2MemoryKiB).toBe(19456);
    expect(sources.port).toBe('default');
    expect(sources.databaseUrl).toBe('derived');
  });

  it('reads a YAML file, and environment variables override it', () => {
    const file = path.join(dir, 'gatehouse.yaml');
    writeFileSync(file, 'port: 9000\nlogLevel: debug\ndataDir: /var/lib/gatehouse\n');
    const { config, sources } = loadConfig({ GATEHOUSE_CONFIG: file, GATEHOUSE_PORT: '9100' });
    expect(config.port).toBe(9100);
    expect(config.logLevel).toBe('debug');
    expect(config.dataDir).toBe('/var/lib/gatehouse');
    expect(sources).toMatchObject({ port: 'environment', logLevel: 'file', dataDir: 'file' });
  });

  it('stops with a message naming every bad setting and what is allowed', () => {
    let error: unknown;
    try {
      loadConfig({ GATEHOUSE_PORT: '80a', GATEHOUSE_LOG_LEVEL: 'loud', GATEHOUSE_DATABASE_URL: 'mysql://x', GATEHOUSE_PROT: '1' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as Error).message;
    expect(message).toContain('GATEHOUSE_PORT: must be a whole number between 1 and 65535 (or 0 for any free port) (got "80a")');
    expect(message).toContain('GATEHOUSE_LOG_LEVEL: must be one of fatal, error, warn, info, debug, trace, silent');
    expect(message).toContain('GATEHOUSE_DATABASE_URL: must start with sqlite: (a file path) or postgres://');
    expect(message).toContain('GATEHOUSE_PROT: unknown setting (did you mean GATEHOUSE_PORT?)');
    // A secret's bad value is not echoed back.
    expect(message).not.toContain('mysql://x');
  });

  it('names the file and key for a bad value in the config file', () => {
    const file = path.join(dir, 'bad.yaml');
    writeFileSync(file, 'port: seventy\nlogLevl: info\n');
    expect(() => loadConfig({ GATEHOUSE_CONFIG: file })).toThrow(/bad\.yaml: port: must be a whole number between 1 and 65535 \(or 0 for any free port\) \(got "seventy"\)/);
    expect(() => loadConfig({ GATEHOUSE_CONFIG: file })).toThrow(/bad\.yaml: unknown setting "logLevl" \(did you mean "logLevel"\?\)/);
  });

  it('requires the TLS certificate and key together', () => {
    expect(() => loadConfig({ GATEHOUSE_TLS_CERT_FILE: '/etc/cert.pem' })).toThrow(/GATEHOUSE_TLS_KEY_FILE: required/);
  });

  it('redacts secrets: passwords inside URLs and whole secret values', () => {
    const { config } = loadConfig({
      GATEHOUSE_DATABASE_URL: 'postgres://gatehouse:s3cret-db-pass@db.school.lan:5432/gatehouse',
      GATEHOUSE_SMTP_URL: 'smtp://alerts:s3cret-mail-pass@mail.school.lan:587',
      GATEHOUSE_METRICS_TOKEN: 'a-very-secret-metrics-token',
    });
    const shown = JSON.stringify(redactedConfig(config));
    expect(shown).not.toContain('s3cret');
    expect(shown).not.toContain('a-very-secret-metrics-token');
    expect(shown).toContain('postgres://gatehouse:redacted@db.school.lan:5432/gatehouse');
    expect(shown).toContain('"metricsToken":"(redacted)"');
  });

  it('`gatehouse config` prints the effective configuration without secrets', async () => {
    const result = await runCli(['config'], {
      GATEHOUSE_DATABASE_URL: 'postgres://gatehouse:s3cret-db-pass@db.school.lan/gatehouse',
      GATEHOUSE_PORT: '8443',
    });
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^port\s+8443\s+\(environment; GATEHOUSE_PORT\)$/m);
    expect(result.stdout).toContain('postgres://gatehouse:redacted@db.school.lan/gatehouse');
    expect(result.stdout).not.toContain('s3cret');
  });

  it('`gatehouse serve` with a bad value stops before starting, naming the setting', async () => {
    const result = await runCli(['serve'], { GATEHOUSE_PORT: '70000', GATEHOUSE_DATA_DIR: dir });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('GATEHOUSE_PORT: must be a whole number between 1 and 65535 (or 0 for any free port) (got "70000")');
  });
});
