import PDFDocument from 'pdfkit';

/**
 * One way to print a report for governors, the local authority or the police: a title, who made it
 * and when, then sections of paragraphs, facts and tables. Every PDF Gatehouse makes goes through
 * here, so they look alike and none needs a browser on the server. Text only: no images, no page
 * contents from filtering (MO-03 keeps the minimum).
 */
export interface PdfTable {
  columns: string[];
  rows: Array<Array<string | number | null | undefined>>;
  /** relative column widths, e.g. [1, 3, 1]; equal when omitted */
  widths?: number[];
  /** shown instead of an empty table */
  empty?: string;
}

export interface PdfSection {
  heading: string;
  paragraphs?: string[];
  /** label: value lines, e.g. ["Status", "Approved"] */
  facts?: Array<[string, string]>;
  table?: PdfTable;
}

export interface PdfReport {
  title: string;
  /** e.g. the school's name and the period covered */
  subtitle?: string;
  /** who asked for it and when, printed under the title and in the footer */
  generatedBy: string;
  generatedAt: Date;
  sections: PdfSection[];
  /** e.g. "OFFICIAL-SENSITIVE: safeguarding" on every page */
  marking?: string;
}

const MARGIN = 50;

const cell = (v: string | number | null | undefined): string => (v === null || v === undefined || v === '' ? '—' : String(v));

export function renderPdf(report: PdfReport): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const doc = new PDFDocument({ size: 'A4', margin: MARGIN, bufferPages: true, info: { Title: report.title, Author: 'Gatehouse', Subject: report.subtitle ?? report.title, CreationDate: report.generatedAt } });
    const chunks: Buffer[] = [];
    doc.on('data', (c: Buffer) => chunks.push(c));
    doc.on('end', () => resolve(Buffer.concat(chunks)));
    doc.on('error', reject);
    try {
      const width = doc.page.width - 2 * MARGIN;
      doc.font('Helvetica-Bold').fontSize(18).text(report.title, { width });
      if (report.subtitle) doc.moveDown(0.2).font('Helvetica').fontSize(12).fillColor('#333').text(report.subtitle, { width });
      doc.moveDown(0.2).font('Helvetica').fontSize(9).fillColor('#555').text(`Produced by ${report.generatedBy} on ${report.generatedAt.toISOString().replace('T', ' ').slice(0, 16)} UTC`, { width });
      doc.fillColor('black');
      for (const section of report.sections) {
        doc.moveDown(1).font('Helvetica-Bold').fontSize(13).text(section.heading, MARGIN, doc.y, { width });
        doc.moveDown(0.3).font('Helvetica').fontSize(10);
        for (const p of section.paragraphs ?? []) doc.text(p, MARGIN, doc.y, { width }).moveDown(0.4);
        for (const [label, value] of section.facts ?? []) {
          doc.font('Helvetica-Bold').text(`${label}: `, MARGIN, doc.y, { continued: true, width }).font('Helvetica').text(value || '—');
        }
        if (section.table) {
          const t = section.table;
          if (t.rows.length === 0) {
            doc.font('Helvetica-Oblique').text(t.empty ?? 'None.', MARGIN, doc.y, { width }).font('Helvetica');
          } else {
            const weights = t.widths ?? t.columns.map(() => 1);
            const total = weights.reduce((a, b) => a + b, 0);
            doc.moveDown(0.2).fontSize(8.5);
            doc.table({
              position: { x: MARGIN, y: doc.y },
              maxWidth: width,
              columnStyles: weights.map((w) => ({ width: (width * w) / total })),
              rowStyles: (row) => (row === 0 ? { backgroundColor: '#e8e8e8' } : undefined),
              data: [t.columns.map((c) => ({ text: c, font: { src: 'Helvetica-Bold' }, type: 'TH' as const })), ...t.rows.map((r) => r.map(cell))],
            });
            doc.fontSize(10);
          }
        }
      }
      // Footer on every page: the marking and "page n of m", so a printed page is never out of context.
      const range = doc.bufferedPageRange();
      for (let i = range.start; i < range.start + range.count; i++) {
        doc.switchToPage(i);
        const bottom = doc.page.height - MARGIN + 15;
        const saved = doc.page.margins.bottom;
        doc.page.margins.bottom = 0;
        doc.font('Helvetica').fontSize(8).fillColor('#555');
        doc.text(`${report.marking ? `${report.marking} · ` : ''}${report.title} · page ${i - range.start + 1} of ${range.count}`, MARGIN, bottom, { width, align: 'center', lineBreak: false });
        doc.page.margins.bottom = saved;
      }
      doc.end();
    } catch (error) {
      reject(error as Error);
    }
  });
}

/** A filename-safe stem: "change-control-2026-12-04". */
export function pdfFilename(stem: string, at: Date): string {
  return `${stem.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '')}-${at.toISOString().slice(0, 10)}.pdf`;
}
