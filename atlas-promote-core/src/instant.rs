//! Instants serialized as chrono serializes them (RFC 3339, `Z`, the
//! fraction of a second in as few of 3, 6 or 9 digits as it needs), in one
//! piece: chrono formats through `Display`, which a `serde_json::Value` (what
//! every stored document is built as) collects one character at a time into
//! a growing string. The text is the same, so documents read as before.

use chrono::{DateTime, Datelike, Timelike, Utc};
use serde::{Serialize, Serializer};

/// The longest text written here: `9999-12-31T23:59:60.999999999Z`.
const LONGEST: usize = 30;

/// Serialize `at` as chrono does (`#[serde(serialize_with = "crate::instant::serialize")]`).
pub(crate) fn serialize<S: Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    let mut buffer = [0u8; LONGEST];
    match format(at, &mut buffer) {
        Some(text) => serializer.serialize_str(text),
        None => at.serialize(serializer),
    }
}

/// [`serialize`] for an optional instant.
pub(crate) mod option {
    use chrono::{DateTime, Utc};
    use serde::Serializer;

    /// Serialize `at` as chrono does (`#[serde(serialize_with = "crate::instant::option::serialize")]`).
    pub(crate) fn serialize<S: Serializer>(at: &Option<DateTime<Utc>>, serializer: S) -> Result<S::Ok, S::Error> {
        match at {
            Some(at) => serializer.serialize_some(&super::Instant(at)),
            None => serializer.serialize_none(),
        }
    }
}

/// An instant that serializes with [`serialize`].
struct Instant<'a>(&'a DateTime<Utc>);

impl Serialize for Instant<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize(self.0, serializer)
    }
}

/// `at` as chrono's RFC 3339 text (`SecondsFormat::AutoSi`, `Z`), written
/// into `buffer`; `None` for a year outside 0..=9999 (left to chrono).
fn format<'b>(at: &DateTime<Utc>, buffer: &'b mut [u8; LONGEST]) -> Option<&'b str> {
    // In UTC the local time is the UTC time, stored as it is (a DateTime's
    // field accessors compute the local time anew for each field).
    let naive = at.naive_utc();
    let (date, time) = (naive.date(), naive.time());
    let year = date.year();
    if !(0..=9999).contains(&year) {
        return None;
    }
    let (mut second, mut nano) = (time.second(), time.nanosecond());
    if nano >= 1_000_000_000 {
        // A leap second: chrono writes it as second 60.
        second += 1;
        nano -= 1_000_000_000;
    }
    put(buffer, 0, year as u32, 4);
    buffer[4] = b'-';
    put(buffer, 5, date.month(), 2);
    buffer[7] = b'-';
    put(buffer, 8, date.day(), 2);
    buffer[10] = b'T';
    put(buffer, 11, time.hour(), 2);
    buffer[13] = b':';
    put(buffer, 14, time.minute(), 2);
    buffer[16] = b':';
    put(buffer, 17, second, 2);
    let mut end = 19;
    if nano != 0 {
        buffer[19] = b'.';
        end = if nano % 1_000_000 == 0 {
            put(buffer, 20, nano / 1_000_000, 3)
        } else if nano % 1_000 == 0 {
            put(buffer, 20, nano / 1_000, 6)
        } else {
            put(buffer, 20, nano, 9)
        };
    }
    buffer[end] = b'Z';
    std::str::from_utf8(&buffer[..=end]).ok()
}

/// Write `value` in `width` decimal digits (zero-padded) at `at`; returns where they end.
fn put(buffer: &mut [u8; LONGEST], at: usize, value: u32, width: usize) -> usize {
    let mut value = value;
    for place in buffer[at..at + width].iter_mut().rev() {
        *place = b'0' + (value % 10) as u8;
        value /= 10;
    }
    at + width
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, TimeZone};

    use super::*;

    fn ours(at: &DateTime<Utc>) -> serde_json::Value {
        serialize(at, serde_json::value::Serializer).unwrap()
    }

    #[test]
    fn instants_serialize_as_chrono_serializes_them() {
        let mut instants = vec![
            Utc.with_ymd_and_hms(2026, 5, 4, 8, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(0, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap(),
            Utc.with_ymd_and_hms(-1, 12, 31, 23, 59, 59).unwrap(),
            Utc.with_ymd_and_hms(10000, 1, 1, 0, 0, 0).unwrap(),
        ];
        let leap = NaiveDate::from_ymd_opt(2016, 12, 31).unwrap().and_hms_nano_opt(23, 59, 59, 1_000_000_000).unwrap();
        instants.push(Utc.from_utc_datetime(&leap));
        let leap = NaiveDate::from_ymd_opt(2016, 12, 31).unwrap().and_hms_nano_opt(23, 59, 59, 1_500_000_000).unwrap();
        instants.push(Utc.from_utc_datetime(&leap));
        // A spread of instants and every shape of fraction.
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let seconds = (seed % 400_000_000_000) as i64 - 62_000_000_000;
            let nanos = match seed % 4 {
                0 => 0,
                1 => (seed >> 8) as u32 % 1000 * 1_000_000,
                2 => (seed >> 8) as u32 % 1_000_000 * 1000,
                _ => (seed >> 8) as u32 % 1_000_000_000,
            };
            instants.push(Utc.timestamp_opt(seconds, nanos).unwrap());
        }
        for at in &instants {
            assert_eq!(ours(at), serde_json::to_value(at).unwrap(), "{at:?}");
            let text = serde_json::to_string(&super::Instant(at)).unwrap();
            assert_eq!(text, serde_json::to_string(at).unwrap());
            let back: DateTime<Utc> = serde_json::from_str(&text).unwrap();
            assert_eq!(back, *at);
        }
        let some = option::serialize(&Some(instants[0]), serde_json::value::Serializer).unwrap();
        assert_eq!(some, serde_json::to_value(Some(instants[0])).unwrap());
        let none = option::serialize(&None, serde_json::value::Serializer).unwrap();
        assert_eq!(none, serde_json::Value::Null);
    }
}
