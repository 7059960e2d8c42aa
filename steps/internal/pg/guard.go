package pg

import (
	"regexp"
	"strings"
)

// SQL that guards a session's work against the application's: refusing
// while other clients are connected, and DDL that waits for its locks
// without making the application's transactions wait long or fail.

// ClientCheckSQL fails with "migrun-clients N WHO" when a client other
// than this session is connected to the database: what it writes after
// the catch-up would be lost. (pg_stat_activity is read once per
// transaction: each check is its own statement.)
const ClientCheckSQL = `DO $migrun$DECLARE n int; who text; BEGIN
  SELECT count(*), string_agg(w, ', ') INTO n, who FROM (
    SELECT coalesce(nullif(application_name, ''), '-') || ' (pid ' || pid || coalesce(', from ' || client_addr, '') || ')' AS w
    FROM pg_stat_activity WHERE datname = current_database() AND backend_type = 'client backend' AND pid <> pg_backend_pid() ORDER BY pid) c;
  IF n > 0 THEN RAISE EXCEPTION 'migrun-clients % %', n, who; END IF;
END$migrun$;
`

// ClientsRE reads ClientCheckSQL's refusal: the count and who.
var ClientsRE = regexp.MustCompile(`migrun-clients (\d+) (.*)`)

// LockPatientSQL runs statements (ALTER TABLE) one transaction each, so
// that it never holds one table's lock while it waits for another's: no
// deadlock with the application's transactions. A lock not granted within
// a fifth of a second is given up and asked again a moment later, so that
// the application's transactions queue behind it only that long and
// never fail; the deadlock detector (deadlock_timeout, a second) never
// has to choose a victim.
func LockPatientSQL(stmts []string) string {
	if len(stmts) == 0 {
		return ""
	}
	lits := make([]string, len(stmts))
	for i, s := range stmts {
		lits[i] = Literal(s)
	}
	return `SET lock_timeout = '200ms';
DO $migrun$DECLARE s text; tries int; BEGIN
  FOREACH s IN ARRAY ARRAY[` + strings.Join(lits, ",\n    ") + `]::text[] LOOP
    tries := 0;
    LOOP
      BEGIN
        EXECUTE s;
        EXIT;
      EXCEPTION WHEN lock_not_available THEN
        tries := tries + 1;
        IF tries >= 300 THEN RAISE; END IF;
        PERFORM pg_sleep(0.05 + random() * 0.1);
      END;
    END LOOP;
    COMMIT;
  END LOOP;
END$migrun$;
RESET lock_timeout;
`
}
