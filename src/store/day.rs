//! Calendar days without a date crate: days since 1970-01-01 (UTC) and back.
//!
//! The conversion is the usual proleptic-Gregorian one done with 400-year eras, so it is
//! exact for every day a `u32` can hold from 1970 on.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A UTC calendar day, counted from 1970-01-01 (day 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Day(pub u32);

impl Day {
    pub fn from_unix(secs: u64) -> Day {
        Day((secs / 86_400) as u32)
    }

    /// The day of a civil date, or None if the date does not exist or is before 1970.
    pub fn from_ymd(year: i64, month: u32, day: u32) -> Option<Day> {
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
            return None;
        }
        let y = if month <= 2 { year - 1 } else { year };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let m = month as i64;
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day as i64 - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        u32::try_from(days).ok().map(Day)
    }

    /// (year, month, day) of this day.
    pub fn ymd(self) -> (i64, u32, u32) {
        let z = self.0 as i64 + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let y = yoe + era * 400 + i64::from(m <= 2);
        (y, m, d)
    }
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = self.ymd();
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

impl FromStr for Day {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("{s:?} is not a date of the form YYYY-MM-DD (1970 or later)");
        let mut parts = s.splitn(3, '-');
        let y = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
        let m = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
        let d = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
        Day::from_ymd(y, m, d).ok_or_else(bad)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(Day(0).to_string(), "1970-01-01");
        assert_eq!(Day::from_ymd(2000, 2, 29).unwrap().0, 11_016);
        assert_eq!(Day::from_ymd(2026, 11, 24).unwrap().0, 20_781);
        assert_eq!(Day::from_ymd(2100, 3, 1).unwrap().to_string(), "2100-03-01");
        assert_eq!(Day::from_unix(1_764_000_000).to_string(), "2025-11-24");
        assert_eq!("2026-11-24".parse::<Day>().unwrap(), Day(20_781));
        assert!(Day::from_ymd(2100, 2, 29).is_none());
        assert!(Day::from_ymd(1969, 12, 31).is_none());
        assert!("2026-13-01".parse::<Day>().is_err());
        assert!("yesterday".parse::<Day>().is_err());
    }

    #[test]
    fn round_trip_over_centuries() {
        for n in (0..80_000u32).step_by(7) {
            let (y, m, d) = Day(n).ymd();
            assert_eq!(Day::from_ymd(y, m, d), Some(Day(n)), "{y}-{m}-{d}");
        }
    }
}
