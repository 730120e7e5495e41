import { sql, type Kysely } from "kysely";

/** A row refusal to inject: Postgres raises `errcode` for each `on` of `table` whose NEW row matches `when`. */
export interface Refusal {
  name: string;
  on: "INSERT" | "UPDATE";
  table: string;
  /** A SQL condition on NEW, e.g. `NEW.status = 'completed'`. */
  when: string;
  errcode: string;
  message: string;
}

/**
 * Fault injection with a real trigger: Postgres itself refuses the matching rows with the given
 * SQLSTATE, as it refuses text it cannot store or a broken constraint, while every other row passes.
 */
export async function refuseRows(db: Kysely<any>, r: Refusal): Promise<void> {
  await sql`
    CREATE FUNCTION ${sql.id(r.name)}() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF ${sql.raw(r.when)} THEN
        RAISE EXCEPTION ${sql.lit(r.message)} USING ERRCODE = ${sql.lit(r.errcode)};
      END IF;
      RETURN NEW;
    END $$;
    CREATE TRIGGER ${sql.id(r.name)} BEFORE ${sql.raw(r.on)} ON ${sql.id(r.table)} FOR EACH ROW EXECUTE FUNCTION ${sql.id(r.name)}();
  `.execute(db);
}
