//! What a statement may leave behind in the session, judged from its text, so that a pool
//! resets only what its connection's statements may have changed.
//!
//! The judgement errs towards resetting: a word that might start a session-changing command
//! (anywhere a `;` could begin one, string literals included) counts, and a statement that
//! does not start with a known keyword is [`UNKNOWN`], which asks for the full reset. What it
//! cannot see is a function that changes the session from inside (a user function calling
//! `set_config(..., false)` or taking a session advisory lock): the built-in functions that do
//! so are recognised by name only where the query calls them directly.

/// `SET`, `RESET`, `set_config()`: settings (`RESET ALL`).
pub const SETTINGS: u8 = 1;
/// `LISTEN` (`UNLISTEN *`).
pub const LISTEN: u8 = 2;
/// Session-level advisory locks (`pg_advisory_unlock_all()`).
pub const ADVISORY: u8 = 4;
/// Temporary tables, views, functions (`DISCARD TEMP`).
pub const TEMP: u8 = 8;
/// Cursors (`CLOSE ALL`).
pub const CURSORS: u8 = 16;
/// Anything else that may change the session (`DO`, `CALL`, `PREPARE`, `DISCARD`, ...): the
/// full reset.
pub const UNKNOWN: u8 = 32;

/// First keywords of statements that change nothing that outlives their transaction, apart
/// from what the word scan of [`session_effects`] finds (temporary objects, locking functions).
const CLEAN_STARTS: &[&str] = &[
    "abort",
    "alter",
    "analyse",
    "analyze",
    "begin",
    "checkpoint",
    "close",
    "cluster",
    "comment",
    "commit",
    "copy",
    "create",
    "deallocate",
    "delete",
    "drop",
    "end",
    "execute",
    "explain",
    "fetch",
    "grant",
    "insert",
    "lock",
    "merge",
    "move",
    "notify",
    "refresh",
    "reindex",
    "release",
    "revoke",
    "rollback",
    "savepoint",
    "select",
    "show",
    "start",
    "table",
    "truncate",
    "unlisten",
    "update",
    "vacuum",
    "values",
    "with",
];

/// The effects `sql` (one or more statements) may have on the session: a union of the flags
/// above, 0 when it changes nothing a pool must reset.
pub fn session_effects(sql: &str) -> u8 {
    let mut effects = 0;
    for statement in sql.split(';') {
        effects |= statement_effects(statement);
    }
    effects
}

fn statement_effects(statement: &str) -> u8 {
    let mut words = Words::new(statement);
    let mut effects = match words.next() {
        None => 0,
        Some(first) => match first.as_str() {
            "set" => match words.next().as_deref() {
                // Until the end of the transaction only, which a release ends.
                Some("local" | "transaction" | "constraints") => 0,
                _ => SETTINGS,
            },
            "reset" => SETTINGS,
            "listen" => LISTEN,
            "declare" => CURSORS,
            w if CLEAN_STARTS.contains(&w) => 0,
            _ => UNKNOWN,
        },
    };
    for word in words {
        effects |= match word.as_str() {
            "temp" | "temporary" | "pg_temp" => TEMP,
            "set_config" => SETTINGS,
            "pg_advisory_lock"
            | "pg_advisory_lock_shared"
            | "pg_try_advisory_lock"
            | "pg_try_advisory_lock_shared" => ADVISORY,
            "listen" => LISTEN,
            "dblink_connect" | "dblink_connect_u" => UNKNOWN,
            _ => 0,
        };
    }
    effects
}

/// The words of SQL text, lowercased (letters, digits, `_` and `$`); comments are skipped.
struct Words<'a> {
    rest: &'a [u8],
}

impl<'a> Words<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            rest: text.as_bytes(),
        }
    }
}

impl Iterator for Words<'_> {
    type Item = String;

    fn next(&mut self) -> Option<String> {
        loop {
            let rest = self.rest;
            let start = rest
                .iter()
                .position(|&b| is_word_byte(b) || b == b'-' || b == b'/')?;
            let rest = &rest[start..];
            if rest.starts_with(b"--") {
                let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
                self.rest = &rest[end..];
                continue;
            }
            if rest.starts_with(b"/*") {
                let end = rest
                    .windows(2)
                    .position(|w| w == b"*/")
                    .map_or(rest.len(), |i| i + 2);
                self.rest = &rest[end..];
                continue;
            }
            if !is_word_byte(rest[0]) {
                self.rest = &rest[1..];
                continue;
            }
            let len = rest
                .iter()
                .position(|&b| !is_word_byte(b))
                .unwrap_or(rest.len());
            self.rest = &rest[len..];
            return Some(String::from_utf8_lossy(&rest[..len]).to_ascii_lowercase());
        }
    }
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_queries_change_nothing() {
        for sql in [
            "SELECT $1::int + 1",
            "select * from t where name = 'set'",
            "UPDATE t SET x = 1 WHERE id = $1",
            "INSERT INTO t VALUES (1) ON CONFLICT (id) DO UPDATE SET x = 2",
            "WITH a AS (SELECT 1) SELECT * FROM a",
            "BEGIN; SELECT 1; COMMIT",
            "SET LOCAL statement_timeout = 5",
            "  -- a comment\n SELECT 1",
            "/* SET x */ SELECT 1",
            "CREATE TABLE t (id int)",
            "SELECT pg_advisory_xact_lock(1)",
            "",
        ] {
            assert_eq!(session_effects(sql), 0, "{sql}");
        }
    }

    #[test]
    fn session_changes_are_found() {
        for (sql, want) in [
            ("SET search_path = x", SETTINGS),
            ("set session timezone to 'UTC'", SETTINGS),
            ("RESET ALL", SETTINGS),
            ("SELECT set_config('a.b', 'c', false)", SETTINGS),
            ("LISTEN chan", LISTEN),
            ("SELECT pg_advisory_lock(1)", ADVISORY),
            ("select PG_TRY_ADVISORY_LOCK_SHARED($1)", ADVISORY),
            ("CREATE TEMP TABLE t (i int)", TEMP),
            ("create temporary view v as select 1", TEMP),
            (
                "CREATE FUNCTION pg_temp.f() RETURNS int AS 'select 1' LANGUAGE sql",
                TEMP,
            ),
            ("SELECT 1 INTO TEMP t", TEMP),
            ("DECLARE c CURSOR WITH HOLD FOR SELECT 1", CURSORS),
            ("DO $$ BEGIN PERFORM 1; END $$", UNKNOWN),
            ("CALL p()", UNKNOWN),
            ("PREPARE p AS SELECT 1", UNKNOWN),
            ("DISCARD ALL", UNKNOWN),
            ("SELECT 1; SET x = 1", SETTINGS),
            ("EXECUTE 'x'; LISTEN y", LISTEN),
            ("-- comment\nset x = 1", SETTINGS),
            ("/* c */ LISTEN a", LISTEN),
        ] {
            assert_eq!(session_effects(sql) & want, want, "{sql}");
        }
        assert_eq!(
            session_effects("SET a = 1; LISTEN b; SELECT pg_advisory_lock(1)"),
            SETTINGS | LISTEN | ADVISORY
        );
    }
}
