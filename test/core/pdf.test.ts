import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { pdfFilename, renderPdf } from '../../src/core/pdf.js';

describe('PDF reports', () => {
  it('MO-06 a report prints its title, facts and a table that runs over several pages, with page numbers and the marking on every page (read back with pdftotext)', async () => {
    const rows = Array.from({ length: 120 }, (_, i) => [`2026-12-0${(i % 9) + 1}`, `change ${i}`, i % 2 ? 'approved' : null]);
    const pdf = await renderPdf({
      title: 'Change-control log',
      subtitle: 'Hillside Primary · autumn term 2026',
      generatedBy: 'Ada Head (senior leader)',
      generatedAt: new Date('2026-12-04T10:00:00Z'),
      marking: 'OFFICIAL',
      sections: [
        { heading: 'Summary', paragraphs: ['Every change to filtering this term.'], facts: [['Changes', '120'], ['Awaiting approval', '']] },
        { heading: 'Changes', table: { columns: ['When', 'What', 'Outcome'], rows, widths: [1, 3, 1] } },
        { heading: 'Escalations', table: { columns: ['When', 'What'], rows: [], empty: 'No escalations this term.' } },
      ],
    });
    expect(pdf.subarray(0, 5).toString()).toBe('%PDF-');
    const dir = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-pdf-'));
    writeFileSync(path.join(dir, 'r.pdf'), pdf);
    const text = execFileSync('pdftotext', ['-layout', path.join(dir, 'r.pdf'), '-'], { encoding: 'utf8' });
    expect(text).toContain('Change-control log');
    expect(text).toContain('Hillside Primary');
    expect(text).toContain('change 119');
    expect(text).toContain('No escalations this term.');
    const pages = Number(/Pages:\s+(\d+)/.exec(execFileSync('pdfinfo', [path.join(dir, 'r.pdf')], { encoding: 'utf8' }))![1]);
    expect(pages).toBeGreaterThan(1);
    expect(text).toContain(`OFFICIAL · Change-control log · page ${pages} of ${pages}`);
    expect(pdfFilename('Change-control log', new Date('2026-12-04T10:00:00Z'))).toBe('change-control-log-2026-12-04.pdf');
  });
});
