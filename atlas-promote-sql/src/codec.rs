//! Values as the tables hold them: times, versions, audit records, key ranges.

use atlas_promote_core::Error;
use atlas_promote_core::audit::AuditHead;
use chrono::{DateTime, SecondsFormat, Utc};

/// Microseconds since the Unix epoch: how times compared in SQL are kept.
pub(crate) fn micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

/// The instant `us` microseconds after the Unix epoch.
pub(crate) fn from_micros(location: &str, us: i64) -> Result<DateTime<Utc>, Error> {
    DateTime::from_timestamp_micros(us)
        .ok_or_else(|| damaged(location, "a stored time", format!("{us} µs is out of range")))
}

/// The time `ttl` after `now`, saturating at the end of time.
pub(crate) fn after(now: DateTime<Utc>, ttl: chrono::TimeDelta) -> DateTime<Utc> {
    now.checked_add_signed(ttl).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// An instant as RFC 3339 text, exactly (as the audit chain hashes it).
pub(crate) fn text(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// The instant written by [`text`].
pub(crate) fn parse_text(location: &str, what: &str, value: &str) -> Result<DateTime<Utc>, Error> {
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| damaged(location, what, format!("{value:?} is not an RFC 3339 time: {e}")))
}

/// A count or version as SQL keeps it (signed 64 bits).
pub(crate) fn signed(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A stored count or version, which is never negative unless damaged.
pub(crate) fn unsigned(location: &str, what: &str, n: i64) -> Result<u64, Error> {
    u64::try_from(n).map_err(|_| damaged(location, what, format!("{n} is negative")))
}

/// The core's error for a stored value that cannot be read back.
pub(crate) fn damaged(location: &str, what: &str, message: String) -> Error {
    Error::Corrupt { path: location.to_owned(), message: format!("{what} is damaged: {message}") }
}

/// The smallest string greater than every string starting with `prefix`
/// (in code point order, which is byte order for UTF-8); `None` when there is
/// none (the prefix is empty or all `char::MAX`).
pub(crate) fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match last {
            '\u{d7ff}' => Some('\u{e000}'),
            c => char::from_u32(u32::from(c) + 1),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// The audit head from the `meta` rows `audit_head_hash` and `audit_head_seq`, in that order.
pub(crate) fn parse_head(location: &str, rows: &[(String, String)]) -> Result<AuditHead, Error> {
    match rows {
        [(h, hash), (s, seq)] if h == "audit_head_hash" && s == "audit_head_seq" => {
            let seq = seq
                .parse::<u64>()
                .map_err(|e| damaged(location, "the audit head", format!("{seq:?} is not a seq: {e}")))?;
            Ok(AuditHead { seq, hash: hash.clone() })
        }
        _ => Err(damaged(location, "the audit head", "the meta table does not hold it".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_ends_before_the_next_string() {
        assert_eq!(prefix_end("promotion/"), Some("promotion0".into()));
        assert_eq!(prefix_end(""), None);
        assert_eq!(prefix_end("a\u{10ffff}"), Some("b".into()));
        assert_eq!(prefix_end("\u{d7ff}"), Some("\u{e000}".into()));
        assert_eq!(prefix_end("\u{10ffff}"), None);
    }
}
