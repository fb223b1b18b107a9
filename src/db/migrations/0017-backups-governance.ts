import type { Kysely } from 'kysely';

/**
 * Issue 12 (BK-01..05, DP-03, GV-01, GV-02, GV-05..07, GV-09, GV-10, risk register): the backups
 * register with authenticated check-ins (only the token's SHA-256 is kept), test restores, the
 * business continuity and disaster recovery plan, and the governance registers: reviews and audits
 * (incl. the annual filtering and monitoring review, data-protection walks and physical-security
 * checklists) with their recommendations, training records, policy reviews, resource shortfalls
 * reported to governors and the risk register.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('backup_job')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull().unique())
    /** what is backed up (BK-04: labelled) */
    .addColumn('what', 'text', (c) => c.notNull())
    /** on_site | off_site | offline | cloud */
    .addColumn('location', 'text', (c) => c.notNull())
    .addColumn('encrypted', 'integer', (c) => c.notNull())
    .addColumn('interval_minutes', 'integer', (c) => c.notNull())
    .addColumn('grace_minutes', 'integer', (c) => c.notNull())
    /** SHA-256 (hex) of the check-in token; the token itself is shown once */
    .addColumn('token_hash', 'text', (c) => c.notNull())
    .addColumn('token_issued_at', 'text', (c) => c.notNull())
    .addColumn('last_checkin_at', 'text')
    /** ok | fail, of the last check-in */
    .addColumn('last_status', 'text')
    .addColumn('last_success_at', 'text')
    /** set when a missed run or failure was alerted; cleared by the next success */
    .addColumn('alerted_at', 'text')
    /** "gatehouse" for Gatehouse's own backup; null for the school's other jobs */
    .addColumn('system', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addColumn('retired_at', 'text')
    .execute();
  await db.schema
    .createTable('backup_checkin')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('job_id', 'text', (c) => c.notNull().references('backup_job.id'))
    .addColumn('at', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('ip', 'text')
    .execute();
  await db.schema.createIndex('backup_checkin_job_at').on('backup_checkin').columns(['job_id', 'at']).execute();
  await db.schema
    .createTable('backup_restore_test')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('job_id', 'text', (c) => c.references('backup_job.id'))
    .addColumn('tested_at', 'text', (c) => c.notNull())
    /** pass | partial | fail */
    .addColumn('result', 'text', (c) => c.notNull())
    .addColumn('tested_by', 'text', (c) => c.notNull())
    .addColumn('tested_by_name', 'text', (c) => c.notNull())
    .addColumn('notes', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('backup_restore_test_at').on('backup_restore_test').column('tested_at').execute();
  await db.schema
    .createTable('continuity_plan')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('title', 'text', (c) => c.notNull())
    .addColumn('document_link', 'text', (c) => c.notNull())
    .addColumn('ransomware_response', 'text', (c) => c.notNull())
    .addColumn('reviewed_at', 'text', (c) => c.notNull())
    .addColumn('next_review_at', 'text', (c) => c.notNull())
    .addColumn('recorded_by_name', 'text', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('governance_review')
    .addColumn('id', 'text', (c) => c.primaryKey())
    /** audit | review | filtering_monitoring | dp_walk | physical_security */
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('title', 'text', (c) => c.notNull())
    .addColumn('reviewed_at', 'text', (c) => c.notNull())
    .addColumn('reviewed_by', 'text', (c) => c.notNull())
    .addColumn('reviewed_by_name', 'text', (c) => c.notNull())
    /** JSON: [{ point, done, note }] (P4 9.15 points, walk or physical-security items) */
    .addColumn('checklist', 'text', (c) => c.notNull())
    .addColumn('findings', 'text', (c) => c.notNull())
    .addColumn('reported_to', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('governance_review_kind_at').on('governance_review').columns(['kind', 'reviewed_at']).execute();
  await db.schema
    .createTable('governance_recommendation')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('review_id', 'text', (c) => c.notNull().references('governance_review.id'))
    .addColumn('text', 'text', (c) => c.notNull())
    .addColumn('owner', 'text', (c) => c.notNull())
    .addColumn('due_at', 'text', (c) => c.notNull())
    .addColumn('done_at', 'text')
    .execute();
  await db.schema
    .createTable('training_record')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('account_id', 'text', (c) => c.notNull().references('account.id'))
    .addColumn('course', 'text', (c) => c.notNull())
    .addColumn('completed_at', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'text')
    .addColumn('certificate_name', 'text')
    .addColumn('certificate_type', 'text')
    .addColumn('certificate_sha256', 'text')
    /** base64 of the certificate (PDF, PNG or JPEG, size-limited) */
    .addColumn('certificate', 'text')
    .addColumn('recorded_by_name', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('training_record_account').on('training_record').columns(['account_id', 'completed_at']).execute();
  await db.schema
    .createTable('policy_review')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('policy', 'text', (c) => c.notNull())
    .addColumn('reviewed_at', 'text', (c) => c.notNull())
    .addColumn('next_review_at', 'text', (c) => c.notNull())
    .addColumn('reviewed_by_name', 'text', (c) => c.notNull())
    .addColumn('notes', 'text', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('resource_shortfall')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('title', 'text', (c) => c.notNull())
    .addColumn('risk', 'text', (c) => c.notNull())
    .addColumn('recorded_at', 'text', (c) => c.notNull())
    .addColumn('reported_to_governors_at', 'text')
    .addColumn('resolved_at', 'text')
    .execute();
  await db.schema
    .createTable('risk')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('title', 'text', (c) => c.notNull())
    .addColumn('owner', 'text', (c) => c.notNull())
    .addColumn('likelihood', 'integer', (c) => c.notNull())
    .addColumn('impact', 'integer', (c) => c.notNull())
    .addColumn('treatment', 'text', (c) => c.notNull())
    .addColumn('review_at', 'text', (c) => c.notNull())
    .addColumn('reviewed_at', 'text', (c) => c.notNull())
    .addColumn('closed_at', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();
}
