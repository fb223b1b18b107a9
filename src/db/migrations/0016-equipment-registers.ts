import { sql, type Kysely } from 'kysely';

/**
 * Issue 12 (AS-01..AS-07, AS-10..AS-13): the equipment register with its off-site loans, stock-takes
 * and disposals (and the certificates attached to them), the software titles with their approvals
 * and licences, removable media issued, and what the last inventory export (Intune-style CSV) said
 * of each device: installed titles, anti-virus and patches.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('equipment_item')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('tag', 'text', (c) => c.notNull().unique())
    .addColumn('serial', 'text')
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('description', 'text', (c) => c.notNull())
    .addColumn('location', 'text', (c) => c.notNull())
    .addColumn('holder_account_id', 'text')
    .addColumn('holder_name', 'text')
    /** lower-case colon-separated, to match a filtering device (last seen, AS-13) */
    .addColumn('mac', 'text')
    .addColumn('address', 'text')
    /** in_use | on_loan | disposed */
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('personal_data', 'integer', (c) => c.notNull())
    .addColumn('last_found_at', 'text')
    .addColumn('disposed_at', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('equipment_loan')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('item_id', 'text', (c) => c.notNull())
    .addColumn('account_id', 'text')
    .addColumn('borrower_name', 'text', (c) => c.notNull())
    .addColumn('purpose', 'text', (c) => c.notNull())
    .addColumn('lent_at', 'text', (c) => c.notNull())
    .addColumn('due_back', 'text', (c) => c.notNull())
    .addColumn('returned_at', 'text')
    .addColumn('returned_to', 'text')
    /** loan (off site with a person, AS-02) | repair (with a third party, AS-05) */
    .addColumn('kind', 'text', (c) => c.notNull())
    /** AS-05, repairs: the personal data on the device and how it was protected before it went */
    .addColumn('data_assessment', 'text')
    .execute();
  await db.schema.createIndex('equipment_loan_item').on('equipment_loan').column('item_id').execute();
  // At most one open loan per item, whatever two requests race to do.
  await db.schema.createIndex('equipment_loan_open').on('equipment_loan').column('item_id').unique().where(sql.ref('returned_at'), 'is', null).execute();
  await db.schema
    .createTable('equipment_stocktake')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('started_at', 'text', (c) => c.notNull())
    .addColumn('started_by', 'text', (c) => c.notNull())
    .addColumn('closed_at', 'text')
    /** JSON: the ids of items in use that were not found when it closed */
    .addColumn('missing', 'text')
    .execute();
  await db.schema
    .createTable('equipment_stocktake_found')
    .addColumn('stocktake_id', 'text', (c) => c.notNull())
    .addColumn('item_id', 'text', (c) => c.notNull())
    .addColumn('found_at', 'text', (c) => c.notNull())
    .addColumn('found_by', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('equipment_stocktake_found_pk', ['stocktake_id', 'item_id'])
    .execute();
  await db.schema
    .createTable('equipment_certificate')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('item_id', 'text', (c) => c.notNull())
    /** weee | data_destruction | pat */
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('filename', 'text', (c) => c.notNull())
    .addColumn('content_type', 'text', (c) => c.notNull())
    .addColumn('bytes', 'integer', (c) => c.notNull())
    .addColumn('sha256', 'text', (c) => c.notNull())
    .addColumn('uploaded_at', 'text', (c) => c.notNull())
    .addColumn('uploaded_by', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('equipment_certificate_item').on('equipment_certificate').column('item_id').execute();
  await db.schema
    .createTable('equipment_disposal')
    .addColumn('item_id', 'text', (c) => c.primaryKey())
    .addColumn('disposed_on', 'text', (c) => c.notNull())
    .addColumn('authorised_by', 'text', (c) => c.notNull())
    .addColumn('licences_checked', 'integer', (c) => c.notNull())
    .addColumn('personal_data', 'text', (c) => c.notNull())
    .addColumn('destruction', 'text', (c) => c.notNull())
    /** waste | gift | sale */
    .addColumn('method', 'text', (c) => c.notNull())
    .addColumn('recipient', 'text', (c) => c.notNull())
    .addColumn('recorded_at', 'text', (c) => c.notNull())
    .addColumn('recorded_by', 'text', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('software_title')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    /** lower-case name: what inventory installations are matched on */
    .addColumn('match_key', 'text', (c) => c.notNull().unique())
    .addColumn('publisher', 'text')
    .addColumn('purpose', 'text', (c) => c.notNull())
    .addColumn('requested_by', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    /** approved | refused | null (waiting), by the headteacher (a senior leader) */
    .addColumn('head_decision', 'text')
    .addColumn('head_by', 'text')
    .addColumn('head_at', 'text')
    .addColumn('head_note', 'text')
    /** approved | refused | null (waiting), the DPO's GDPR check */
    .addColumn('dpo_decision', 'text')
    .addColumn('dpo_by', 'text')
    .addColumn('dpo_at', 'text')
    .addColumn('dpo_note', 'text')
    .execute();
  await db.schema
    .createTable('software_licence')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('title_id', 'text', (c) => c.notNull())
    .addColumn('seats', 'integer', (c) => c.notNull())
    .addColumn('bought_on', 'text', (c) => c.notNull())
    .addColumn('expires_on', 'text')
    .addColumn('reference', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('software_licence_title').on('software_licence').column('title_id').execute();
  await db.schema
    .createTable('inventory_device')
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('serial', 'text')
    .addColumn('os', 'text')
    .addColumn('last_check_in', 'text')
    .addColumn('antivirus', 'text')
    .addColumn('av_updated_at', 'text')
    .addColumn('last_patched_at', 'text')
    .addColumn('critical_pending_since', 'text')
    /** JSON array of installed titles as the inventory named them */
    .addColumn('apps', 'text', (c) => c.notNull())
    .addColumn('imported_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('removable_media')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('label', 'text', (c) => c.notNull().unique())
    .addColumn('encrypted', 'integer', (c) => c.notNull())
    .addColumn('holder_name', 'text', (c) => c.notNull())
    .addColumn('issued_on', 'text', (c) => c.notNull())
    .addColumn('returned_on', 'text')
    .execute();
}
