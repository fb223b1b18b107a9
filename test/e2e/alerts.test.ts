import dgram from 'node:dgram';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import dnsPacket from 'dns-packet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { browserSuite } from '../helpers/e2e.js';
import { call, changeOverHttp, createPersonOverHttp, reauthOverHttp, setupAndSignIn, type HttpSessionWithSecret } from '../helpers/server-process.js';
import { startSmtpSink } from '../helpers/smtp-sink.js';
import { portBelowEphemeral } from '../helpers/ports.js';

const sink = await startSmtpSink();

function listFolder(): string {
  const root = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-e2e-alerts-'));
  const lists: Record<string, string[]> = { agressif: ['hate-site.example'], vpn: ['hide-me.example'], games: ['fun-games.example'] };
  let usage = '# test\n';
  for (const [id, domains] of Object.entries(lists)) {
    mkdirSync(path.join(root, 'ut1', id), { recursive: true });
    writeFileSync(path.join(root, 'ut1', id, 'domains'), `${domains.join('\n')}\n`);
    usage += `NAME:\t${id}\nDEFAULT_TYPE: black\nDESC EN: ${id} sites.\nNAME EN: ${id[0]!.toUpperCase()}${id.slice(1)}\n\n`;
  }
  writeFileSync(path.join(root, 'ut1', 'global_usage'), usage);
  return root;
}

function query(port: number, name: string): Promise<void> {
  return new Promise((resolve) => {
    const socket = dgram.createSocket('udp4');
    let closed = false;
    const done = () => {
      if (closed) return;
      closed = true;
      socket.close();
      resolve();
    };
    socket.once('message', done);
    setTimeout(done, 2000).unref();
    socket.send(dnsPacket.encode({ type: 'query', id: Math.floor(Math.random() * 65535), flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name }] }), port, '127.0.0.1');
  });
}

/**
 * Alerts in Chromium (FI-11, MO-02, MO-07): a device asks the running DNS resolver for a site in a
 * category of concern; the alert reaches the DSL's mail server (a real SMTP sink); the DSL follows
 * the link, acknowledges it, is refused closing without an outcome, and closes it with the action
 * and outcome. Screenshots: test-results/screenshots/alerts-*.png.
 */
describe('alerts in Chromium', () => {
  const folder = listFolder();
  const dnsPort = portBelowEphemeral();
  const e2e = browserSuite({ prefix: 'alerts-', allow: /status of (400|401|409)/, env: { GATEHOUSE_LIST_FOLDER: folder, GATEHOUSE_DNS_PORT: String(dnsPort), GATEHOUSE_DNS_UPSTREAMS: '127.0.0.1:9', GATEHOUSE_SMTP_URL: sink.url } });
  let dsl: HttpSessionWithSecret;

  beforeAll(async () => {
    const url = e2e.server.url;
    const admin = await setupAndSignIn(e2e.server);
    await reauthOverHttp(url, admin);
    // Each list is a change request a senior leader approves (FI-06).
    expect((await changeOverHttp(url, admin, 'POST', '/api/filtering/lists', { name: 'UT1', format: 'ut1', location: path.join(folder, 'ut1'), kind: 'category', scheduleHours: 24 })).state).toBe('applied');
    dsl = (await createPersonOverHttp(url, admin, { username: 'dsafe', displayName: 'Dana Safeguard', role: 'dsl', email: 'dsl@school.example' })).session;
  }, 120_000);
  afterAll(async () => {
    await sink.close();
  });

  it('FI-11 MO-02 MO-07 an alert from the running resolver arrives at the SMTP sink, and the DSL acknowledges it and closes it with an outcome', async () => {
    const page = await e2e.page({ width: 1366, height: 900 });
    await e2e.signIn(page, 'dsafe', { totpSecret: dsl.totpSecret });
    await page.getByRole('link', { name: 'Alerts' }).click();
    await page.getByRole('heading', { name: 'Alerts' }).waitFor();
    await page.getByTestId('no-alerts').waitFor();
    await e2e.shot(page, '01-empty');

    // A device on the network asks for a hateful site: blocked, and alerted within seconds.
    const asked = Date.now();
    let mail: (typeof sink.messages)[number] | undefined;
    for (let i = 0; i < 40 && !mail; i++) {
      await query(dnsPort, 'hate-site.example');
      await new Promise((r) => setTimeout(r, 500));
      mail = sink.messages.find((m) => m.to.includes('dsl@school.example'));
    }
    expect(mail, 'no alert mail reached the sink').toBeDefined();
    expect(Date.now() - asked).toBeLessThan(60_000);
    expect(mail!.raw).toContain('hate-site.example');
    const id = /alerts\?id=(?:3D)?([0-9a-f-]{36})/.exec(mail!.raw)![1]!;

    // The link in the mail opens the alert in the console.
    await page.goto(`${e2e.server.url}/alerts?id=${id}`);
    const detail = page.getByTestId('alert-detail');
    await detail.waitFor();
    expect(await detail.innerText()).toContain('hate-site.example');
    expect(await detail.innerText()).toContain('agressif is a category of concern');
    await e2e.shot(page, '02-alert');
    await detail.getByRole('button', { name: 'Acknowledge' }).click();
    const form = page.getByRole('form', { name: 'Close the alert' });
    await form.waitFor();
    // Closing without saying what was done and the outcome: told beside each field.
    await form.getByRole('button', { name: 'Close the alert' }).click();
    await form.getByText('say what was done').first().waitFor();
    await form.getByText('choose the outcome').first().waitFor();
    await e2e.shot(page, '03-close-errors');
    await form.getByLabel('What was done').fill('Found the device (library PC 3); spoke to the pupil with their form tutor.');
    await form.getByLabel('Outcome').selectOption({ label: 'Spoken to the person' });
    await form.getByRole('button', { name: 'Close the alert' }).click();
    await detail.getByText(/closed by Dana Safeguard/).waitFor();
    expect(await detail.getByRole('link', { name: 'Record an incident' }).getAttribute('href')).toBe(`/incidents/new?alert=${id}`);
    await e2e.shot(page, '04-closed');
    await page.getByLabel('Status').selectOption('closed');
    await page.locator(`tr[data-alert="${id}"]`).waitFor();
    await e2e.shot(page, '05-closed-list');
    e2e.expectNoProblems();
  }, 120_000);
});
