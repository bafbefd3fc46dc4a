//! Durations as policy files write them: `90m`, `26h`, `2d`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A span of time in whole minutes, written in policy files as a number
/// followed by `m`, `h` or `d` (`90m`, `26h`, `2d`).
///
/// ```
/// use atlas_promote_core::Duration;
/// let d: Duration = "26h".parse().unwrap();
/// assert_eq!(d, Duration::hours(26));
/// assert_eq!(d.to_string(), "26h");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration {
    minutes: i64,
}

impl Duration {
    /// A duration of `n` minutes.
    pub const fn minutes(n: i64) -> Self {
        Self { minutes: n }
    }

    /// A duration of `n` hours.
    pub const fn hours(n: i64) -> Self {
        Self { minutes: n * 60 }
    }

    /// A duration of `n` days of 24 hours.
    pub const fn days(n: i64) -> Self {
        Self { minutes: n * 60 * 24 }
    }

    /// The length in whole minutes.
    pub const fn as_minutes(self) -> i64 {
        self.minutes
    }

    /// The same span as a [`chrono::TimeDelta`], for arithmetic on instants.
    pub fn to_chrono(self) -> chrono::TimeDelta {
        chrono::TimeDelta::minutes(self.minutes)
    }
}

/// The longest duration: ten thousand years is enough for any policy and
/// keeps arithmetic on instants in range.
const MAX_MINUTES: i64 = 10_000 * 366 * 24 * 60;

/// Why a text is not a [`Duration`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseDurationError {
    text: String,
    too_long: bool,
}

impl fmt::Display for ParseDurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = &self.text;
        if self.too_long {
            write!(
                f,
                "invalid duration {text:?}: longer than the longest a policy can hold, {}d (ten thousand years)",
                MAX_MINUTES / (24 * 60)
            )
        } else {
            write!(f, "invalid duration {text:?}: expected a whole number followed by m, h or d (e.g. 90m, 26h, 2d)")
        }
    }
}

impl std::error::Error for ParseDurationError {}

impl FromStr for Duration {
    type Err = ParseDurationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseDurationError { text: s.to_owned(), too_long: false };
        let too_long = || ParseDurationError { text: s.to_owned(), too_long: true };
        let s = s.trim();
        let unit = s.chars().last().ok_or_else(err)?;
        let digits = &s[..s.len() - unit.len_utf8()];
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err());
        }
        let per = match unit {
            'm' => 1,
            'h' => 60,
            'd' => 60 * 24,
            _ => return Err(err()),
        };
        // Digits beyond i64 are a whole number too, and too long.
        let n: i64 = digits.parse().map_err(|_| too_long())?;
        let minutes = n.checked_mul(per).filter(|m| *m <= MAX_MINUTES).ok_or_else(too_long)?;
        Ok(Self { minutes })
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.minutes;
        if m != 0 && m % (60 * 24) == 0 {
            write!(f, "{}d", m / (60 * 24))
        } else if m != 0 && m % 60 == 0 {
            write!(f, "{}h", m / 60)
        } else {
            write!(f, "{m}m")
        }
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_minutes_hours_and_days() {
        assert_eq!("90m".parse(), Ok(Duration::minutes(90)));
        assert_eq!("26h".parse(), Ok(Duration::hours(26)));
        assert_eq!("2d".parse(), Ok(Duration::days(2)));
    }

    #[test]
    fn refuses_other_shapes() {
        for bad in ["", "h", "26", "2w", "-1h", "1.5h", "h26", "99999999999999999999d"] {
            assert!(bad.parse::<Duration>().is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn displays_in_the_largest_whole_unit() {
        assert_eq!(Duration::minutes(90).to_string(), "90m");
        assert_eq!(Duration::minutes(120).to_string(), "2h");
        assert_eq!(Duration::hours(48).to_string(), "2d");
        assert_eq!(Duration::minutes(0).to_string(), "0m");
    }
}
