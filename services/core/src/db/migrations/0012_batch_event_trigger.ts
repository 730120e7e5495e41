import { sql, type Kysely } from "kysely";

// Frozen: never edit a migration that has shipped; add a new one instead.

/**
 * The timeline entries of a batch's status moves (`finalizing`, `final`), written by the database
 * itself. Why a trigger rather than a write beside each statement: a batch reaches finalizing or
 * a final state from many statements (the last chunk's completion, expiry, publication, a failed
 * validation, a changed input, a cancel while validating), and a trigger writes the entry in the
 * very transaction of each move, including any added later. Counts are the chunk checkpoints'
 * sums, the same `request_counts` the Batch object shows; a batch has hundreds of chunks at most.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE FUNCTION batch_status_event() RETURNS trigger
    LANGUAGE plpgsql SET search_path FROM CURRENT AS $fn$
    DECLARE
      n_completed bigint;
      n_failed bigint;
      entry jsonb;
    BEGIN
      SELECT coalesce(sum(c.completed), 0), coalesce(sum(c.failed), 0) INTO n_completed, n_failed
      FROM chunks c WHERE c.batch_id = NEW.id;
      IF NEW.status = 'finalizing' THEN
        entry := jsonb_build_object('completed', n_completed, 'failed', n_failed);
        IF NEW.expired_at IS NOT NULL THEN
          entry := entry || jsonb_build_object('expired', true);
        END IF;
        INSERT INTO batch_events (batch_id, kind, data) VALUES (NEW.id, 'finalizing', entry);
      ELSE
        entry := jsonb_build_object('status', NEW.status, 'total', NEW.total_requests, 'completed', n_completed, 'failed', n_failed);
        IF NEW.cancel_reason IS NOT NULL THEN
          entry := entry || jsonb_build_object('cancel_reason', NEW.cancel_reason);
        END IF;
        INSERT INTO batch_events (batch_id, kind, data) VALUES (NEW.id, 'final', entry);
      END IF;
      RETURN NULL;
    END
    $fn$;

    CREATE TRIGGER batches_status_event
      AFTER UPDATE OF status ON batches
      FOR EACH ROW
      WHEN (OLD.status IS DISTINCT FROM NEW.status AND NEW.status IN ('finalizing', 'completed', 'failed', 'cancelled', 'expired'))
      EXECUTE FUNCTION batch_status_event();
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    DROP TRIGGER batches_status_event ON batches;
    DROP FUNCTION batch_status_event();
  `.execute(db);
}
