//! Whether a database error can go away by trying again.
//!
//! A consumer retries a transient failure (the server is down, a serialization conflict, a full
//! disk) with backoff, and sets a message aside only when the failure is permanent: the data itself
//! is refused (PostgreSQL SQLSTATE classes 22 *data exception* and 23 *integrity constraint
//! violation*; SQLite's `CONSTRAINT`, `MISMATCH`, `TOOBIG` and `RANGE`). Anything not known to be
//! permanent counts as transient, so that nothing is dropped on a guess.

/// What trying again can do about a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Retrying later can succeed: connection lost, pool exhausted, serialization conflict, lock
    /// timeout, out of resources, server shutting down.
    Transient,
    /// The same input fails the same way every time: invalid data, a violated constraint.
    Permanent,
}

/// Classifies a sqlx error by its SQLSTATE (PostgreSQL) or result code (SQLite).
pub fn classify(error: &sqlx::Error) -> Failure {
    match error {
        sqlx::Error::Database(db) => {
            if !matches!(db.kind(), sqlx::error::ErrorKind::Other) {
                return Failure::Permanent;
            }
            db.code()
                .map_or(Failure::Transient, |code| classify_code(&code))
        }
        _ => Failure::Transient,
    }
}

/// Whether `error` is a database refusal of the data itself.
pub fn is_permanent(error: &sqlx::Error) -> bool {
    classify(error) == Failure::Permanent
}

/// PostgreSQL reports a five-character SQLSTATE; SQLite an integer (extended) result code.
fn classify_code(code: &str) -> Failure {
    if let Ok(result_code) = code.parse::<u32>()
        && code.len() < 5
    {
        // The primary result code is the low byte of an extended one.
        return match result_code & 0xff {
            // SQLITE_TOOBIG, SQLITE_CONSTRAINT, SQLITE_MISMATCH, SQLITE_RANGE
            18 | 19 | 20 | 25 => Failure::Permanent,
            _ => Failure::Transient,
        };
    }
    match code.get(..2) {
        Some("22" | "23") => Failure::Permanent,
        _ => Failure::Transient,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_data_exceptions_and_integrity_violations_are_permanent() {
        // 22021 character_not_in_repertoire (a NUL in text), 22003 numeric_value_out_of_range,
        // 23505 unique_violation, 23503 foreign_key_violation.
        for code in ["22021", "22003", "22P02", "23505", "23503"] {
            assert_eq!(classify_code(code), Failure::Permanent, "{code}");
        }
        // 08006 connection_failure, 40001 serialization_failure, 40P01 deadlock_detected,
        // 53100 disk_full, 57P01 admin_shutdown, 55P03 lock_not_available.
        for code in ["08006", "40001", "40P01", "53100", "57P01", "55P03"] {
            assert_eq!(classify_code(code), Failure::Transient, "{code}");
        }
    }

    #[test]
    fn sqlite_constraint_and_mismatch_are_permanent_busy_is_not() {
        // 2067 SQLITE_CONSTRAINT_UNIQUE, 787 SQLITE_CONSTRAINT_FOREIGNKEY, 20 SQLITE_MISMATCH.
        for code in ["19", "2067", "787", "20", "18"] {
            assert_eq!(classify_code(code), Failure::Permanent, "{code}");
        }
        // 5 SQLITE_BUSY, 6 SQLITE_LOCKED, 13 SQLITE_FULL, 10 SQLITE_IOERR, 3338 SQLITE_IOERR_FSYNC.
        for code in ["5", "6", "13", "10", "3338"] {
            assert_eq!(classify_code(code), Failure::Transient, "{code}");
        }
    }

    #[test]
    fn errors_without_a_code_are_transient() {
        assert_eq!(classify(&sqlx::Error::PoolTimedOut), Failure::Transient);
        assert_eq!(classify(&sqlx::Error::WorkerCrashed), Failure::Transient);
    }
}
