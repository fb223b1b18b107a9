import { registerProbe, withinPeriod, type Probe } from '../compliance/probes.js';
import { deviceHealth, listTitles } from './software.js';

/**
 * Issue 12: the compliance clauses the equipment registers make automatically checkable — the
 * yearly stock-take (AS-01), licences reconciled with the last inventory (AS-06), titles approved and
 * GDPR-checked before use (AS-07), anti-virus current (AS-11) and critical patches within the
 * profile's limit, 14 days by default as Cyber Essentials asks (AS-12). Registered once, when the
 * compliance service loads.
 */
const probes: Probe[] = [
  {
    id: 'equipment-stocktake',
    title: 'Every item of equipment was accounted for in a stock-take within the period the policy sets',
    kind: 'record',
    requirements: ['AS-01'],
    async evaluate(f) {
      const last = await f.get('equipment-stocktake', () => f.rt.db.kysely.selectFrom('equipment_stocktake').select((eb) => eb.fn.max('closed_at').as('at')).executeTakeFirst());
      return withinPeriod(f.now, last?.at ? String(last.at) : null, f.rt.profile.registers.stockTakeEveryMonths, 'stock-take of the equipment', [{ label: 'Equipment', href: '/equipment' }]);
    },
  },
  {
    id: 'licences-reconciled',
    title: 'Licences bought cover the installations counted in the last inventory',
    kind: 'automatic',
    requirements: ['AS-06'],
    async evaluate(f) {
      const evidence = [{ label: 'Software & licences', href: '/software' }];
      const devices = await f.get('inventory-devices', () => deviceHealth(f.rt));
      if (devices.length === 0) return { status: 'not_met', summary: 'No inventory has been imported, so installations have not been counted.', evidence };
      const { titles, unlicensed } = await f.get('software-titles', () => listTitles(f.rt));
      const over = titles.filter((t) => t.overUsed);
      if (over.length) return { status: 'not_met', summary: `Installed beyond the licences bought: ${over.map((t) => `${t.name} (${t.installations} of ${t.seats})`).join(', ')}.`, evidence };
      if (unlicensed.length) return { status: 'not_met', summary: `Installed but not in the register: ${unlicensed.slice(0, 5).map((u) => u.name).join(', ')}${unlicensed.length > 5 ? '…' : ''}.`, evidence };
      return { status: 'met', summary: `${titles.length} title${titles.length === 1 ? '' : 's'} reconciled against ${devices.length} device${devices.length === 1 ? '' : 's'} from the last inventory.`, evidence };
    },
  },
  {
    id: 'software-approved',
    title: 'Every software title was approved by the headteacher and checked by the DPO before use',
    kind: 'automatic',
    requirements: ['AS-07'],
    async evaluate(f) {
      const evidence = [{ label: 'Software & licences', href: '/software' }];
      const { titles } = await f.get('software-titles', () => listTitles(f.rt));
      if (titles.length === 0) return { status: 'not_met', summary: 'No software titles are recorded.', evidence };
      const inUseNotApproved = titles.filter((t) => t.installations > 0 && t.status !== 'approved');
      if (inUseNotApproved.length) return { status: 'not_met', summary: `Installed without both decisions: ${inUseNotApproved.map((t) => t.name).join(', ')}.`, evidence };
      const waiting = titles.filter((t) => t.status === 'pending');
      return { status: waiting.length ? 'due_soon' : 'met', summary: waiting.length ? `${waiting.length} title${waiting.length === 1 ? ' waits' : 's wait'} for a decision (none installed yet).` : 'Every title in use was approved and GDPR-checked.', evidence };
    },
  },
  {
    id: 'antivirus-current',
    title: 'Anti-virus is installed and up to date on every device in the last inventory',
    kind: 'automatic',
    requirements: ['AS-11'],
    async evaluate(f) {
      const evidence = [{ label: 'Device health', href: '/devices-health' }];
      const devices = await f.get('inventory-devices', () => deviceHealth(f.rt));
      if (devices.length === 0) return { status: 'not_met', summary: 'No inventory has been imported.', evidence };
      const stale = devices.filter((d) => d.avStale);
      return stale.length ? { status: 'not_met', summary: `${stale.length} of ${devices.length} devices have no anti-virus or stale signatures: ${stale.slice(0, 5).map((d) => d.name).join(', ')}.`, evidence } : { status: 'met', summary: `All ${devices.length} devices have current anti-virus.`, evidence };
    },
  },
  {
    id: 'patches-14-days',
    title: 'Critical security updates are installed within the limit (Cyber Essentials: 14 days)',
    kind: 'automatic',
    requirements: ['AS-12'],
    async evaluate(f) {
      const evidence = [{ label: 'Device health', href: '/devices-health' }];
      const devices = await f.get('inventory-devices', () => deviceHealth(f.rt));
      if (devices.length === 0) return { status: 'not_met', summary: 'No inventory has been imported.', evidence };
      const overdue = devices.filter((d) => d.patchOverdue);
      const days = f.rt.profile.registers.criticalPatchDays;
      return overdue.length ? { status: 'not_met', summary: `${overdue.length} of ${devices.length} devices have critical updates pending for more than ${days} days: ${overdue.slice(0, 5).map((d) => d.name).join(', ')}.`, evidence } : { status: 'met', summary: `No device has a critical update pending for more than ${days} days.`, evidence };
    },
  },
];

for (const p of probes) registerProbe(p);
