//! Instants and times of day as policy files write them.
//!
//! TOML has date-time and time values of its own (`from = 2026-12-20T00:00:00Z`,
//! `start = 09:00`); they reach serde as a private map, not a string, so the
//! policy's fields read them here. Quoted RFC 3339 and `HH:MM` strings work in
//! both formats.

use std::fmt;

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveTime, Utc};
use serde::de::value::MapAccessDeserializer;
use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
use toml::value::{Datetime as TomlDatetime, Offset as TomlOffset};

use crate::policy::LocalTime;

/// An instant: an RFC 3339 string or a TOML offset date-time.
pub(crate) fn instant<'de, D: Deserializer<'de>>(deserializer: D) -> Result<DateTime<Utc>, D::Error> {
    deserializer.deserialize_str(InstantVisitor)
}

/// An optional instant (`null` in YAML is none).
pub(crate) fn optional_instant<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    struct Optional;
    impl<'de> Visitor<'de> for Optional {
        type Value = Option<DateTime<Utc>>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            InstantVisitor.expecting(f)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
            instant(deserializer).map(Some)
        }
    }
    deserializer.deserialize_option(Optional)
}

/// A wall-clock time: `HH:MM` as a string, or a TOML local time without seconds.
pub(crate) fn time_of_day<'de, D: Deserializer<'de>>(deserializer: D) -> Result<LocalTime, D::Error> {
    deserializer.deserialize_str(TimeVisitor)
}

/// The message for a time of day that cannot be read.
pub(crate) fn invalid_time_message(text: &str) -> String {
    format!("invalid time {text:?}: expected HH:MM from 00:00 to 24:00, e.g. 09:00")
}

struct InstantVisitor;

impl<'de> Visitor<'de> for InstantVisitor {
    type Value = DateTime<Utc>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an RFC 3339 date-time with an offset, e.g. 2026-12-20T00:00:00Z")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
        DateTime::parse_from_rfc3339(text).map(|t| t.to_utc()).map_err(|_| {
            E::custom(format!(
                "invalid date-time {text:?}: expected RFC 3339 with an offset, e.g. 2026-12-20T00:00:00Z"
            ))
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let datetime = TomlDatetime::deserialize(MapAccessDeserializer::new(map))?;
        from_toml(&datetime).ok_or_else(|| {
            de::Error::custom(format!(
                "invalid date-time {datetime}: expected a date, a time and an offset, e.g. 2026-12-20T00:00:00Z"
            ))
        })
    }
}

fn from_toml(datetime: &TomlDatetime) -> Option<DateTime<Utc>> {
    let (date, time, offset) = (datetime.date?, datetime.time?, datetime.offset?);
    let date = NaiveDate::from_ymd_opt(date.year.into(), date.month.into(), date.day.into())?;
    let time = NaiveTime::from_hms_nano_opt(
        time.hour.into(),
        time.minute.into(),
        time.second.unwrap_or(0).into(),
        time.nanosecond.unwrap_or(0),
    )?;
    let offset = match offset {
        TomlOffset::Z => FixedOffset::east_opt(0)?,
        TomlOffset::Custom { minutes } => FixedOffset::east_opt(i32::from(minutes) * 60)?,
    };
    date.and_time(time).and_local_timezone(offset).single().map(|t| t.to_utc())
}

struct TimeVisitor;

impl<'de> Visitor<'de> for TimeVisitor {
    type Value = LocalTime;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a time of day HH:MM from 00:00 to 24:00, e.g. 09:00")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
        LocalTime::parse(text).ok_or_else(|| E::custom(invalid_time_message(text)))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let datetime = TomlDatetime::deserialize(MapAccessDeserializer::new(map))?;
        let time = match (datetime.date, datetime.time, datetime.offset) {
            (None, Some(time), None) if time.second.unwrap_or(0) == 0 && time.nanosecond.unwrap_or(0) == 0 => {
                LocalTime::hm(time.hour.into(), time.minute.into())
            }
            _ => None,
        };
        time.ok_or_else(|| de::Error::custom(invalid_time_message(&datetime.to_string())))
    }
}
