//! Calendar days, shared by the box and the hub.
//!
//! A [`Day`] is a civil date counted from 1970-01-01 (day 0). Which day a moment belongs
//! to depends on where it is seen: the box cuts its days in its configured time zone
//! (`store.time_zone`, Asia/Seoul by default), so a call at 08:00 KST counts on that
//! date and not on the previous one, as it would at UTC midnight. The calendar and the
//! time-zone rules come from jiff and its bundled copy of the IANA database (the box's
//! own /usr/share/zoneinfo is preferred when it has one).

use std::fmt;
use std::str::FromStr;

use jiff::civil::Date;
use jiff::{Span, Timestamp};
use serde::{Deserialize, Serialize};

pub use jiff::tz::TimeZone;

/// A calendar day, counted from 1970-01-01 (day 0), in whatever time zone cut it.
///
/// On the wire a `Day` is its `u32` (postcard writes a newtype as its content), so
/// batches that carried a bare day number decode as they are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Day(pub u32);

const EPOCH: Date = Date::constant(1970, 1, 1);

/// The last day jiff's calendar holds (9999-12-31). Days after it are valid numbers but
/// have no date; they print as `day N`.
pub const LAST_DATED_DAY: Day = Day(2_932_896);

impl Day {
    /// The day that the moment `unix` (seconds since 1970 UTC) falls on in `tz`.
    /// Moments before 1970-01-01 in `tz` are day 0; after 9999, [`LAST_DATED_DAY`].
    pub fn of_unix(unix: u64, tz: &TimeZone) -> Day {
        let secs = i64::try_from(unix).unwrap_or(i64::MAX);
        let ts = Timestamp::from_second(secs).unwrap_or(Timestamp::MAX);
        Day::from_date(tz.to_datetime(ts).date()).unwrap_or(if secs < 86_400 {
            Day(0)
        } else {
            LAST_DATED_DAY
        })
    }

    /// The day of a civil date, or None before 1970.
    pub fn from_date(date: Date) -> Option<Day> {
        let days = EPOCH.until(date).ok()?.get_days();
        u32::try_from(days).ok().map(Day)
    }

    /// The day of a civil date, or None if the date does not exist or is before 1970.
    pub fn from_ymd(year: i64, month: u32, day: u32) -> Option<Day> {
        let date = Date::new(
            i16::try_from(year).ok()?,
            i8::try_from(month).ok()?,
            i8::try_from(day).ok()?,
        )
        .ok()?;
        Day::from_date(date)
    }

    /// The civil date of this day, or None past [`LAST_DATED_DAY`].
    pub fn date(self) -> Option<Date> {
        let span = Span::new().try_days(i64::from(self.0)).ok()?;
        EPOCH.checked_add(span).ok()
    }

    /// (year, month, day) of this day; None past [`LAST_DATED_DAY`].
    pub fn ymd(self) -> Option<(i64, u32, u32)> {
        self.date().map(|d| {
            (
                i64::from(d.year()),
                d.month().unsigned_abs().into(),
                d.day().unsigned_abs().into(),
            )
        })
    }

    /// The day `n` days later, saturating at the largest day number.
    pub fn plus(self, n: u32) -> Day {
        Day(self.0.saturating_add(n))
    }

    /// The first moment of this day in `tz` (unix seconds), e.g. 00:00 KST = 15:00 UTC of
    /// the day before. Days past [`LAST_DATED_DAY`] give `u64::MAX`.
    pub fn start_unix(self, tz: &TimeZone) -> u64 {
        self.date()
            .and_then(|d| d.to_zoned_datetime(tz.clone()).ok())
            .and_then(|z| z.start_of_day().ok())
            .map_or(u64::MAX, |z| z.timestamp().as_second().max(0) as u64)
    }
}

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.date() {
            Some(d) => write!(f, "{}", d.strftime("%Y-%m-%d")),
            None => write!(f, "day {}", self.0),
        }
    }
}

impl FromStr for Day {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("{s:?} is not a date of the form YYYY-MM-DD (1970 or later)");
        let date: Date = s.parse().map_err(|_| bad())?;
        if date.to_string() != s {
            return Err(bad());
        }
        Day::from_date(date).ok_or_else(bad)
    }
}

/// `YYYY-MM-DD HH:MM:SS ZZZ` of a unix time in `tz` (e.g. "2026-12-03 09:05:00 KST").
pub fn format_unix(unix: u64, tz: &TimeZone) -> String {
    format_unix_as(unix, tz, "%Y-%m-%d %H:%M:%S %Z")
}

/// A unix time in `tz` as the strftime-style `format` says (jiff's directives).
pub fn format_unix_as(unix: u64, tz: &TimeZone, format: &str) -> String {
    let secs = i64::try_from(unix).unwrap_or(i64::MAX);
    let ts = Timestamp::from_second(secs).unwrap_or(Timestamp::MAX);
    ts.to_zoned_datetime(tz.clone())
        .strftime(format)
        .to_string()
}

/// The time zone of an IANA name such as `Asia/Seoul`, or `UTC`; the error says what
/// names are accepted.
pub fn time_zone(name: &str) -> Result<TimeZone, String> {
    TimeZone::get(name).map_err(|e| {
        format!(
            "{name:?} is not a time zone this build knows ({e}); use an IANA name such as \
             \"Asia/Seoul\" or \"UTC\""
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seoul() -> TimeZone {
        time_zone("Asia/Seoul").unwrap()
    }

    #[test]
    fn known_dates() {
        assert_eq!(Day(0).to_string(), "1970-01-01");
        assert_eq!(Day::from_ymd(2000, 2, 29).unwrap().0, 11_016);
        assert_eq!(Day::from_ymd(2026, 11, 24).unwrap().0, 20_781);
        assert_eq!(Day::from_ymd(2100, 3, 1).unwrap().to_string(), "2100-03-01");
        assert_eq!(
            Day::of_unix(1_764_000_000, &TimeZone::UTC).to_string(),
            "2025-11-24"
        );
        assert_eq!("2026-11-24".parse::<Day>().unwrap(), Day(20_781));
        assert!(Day::from_ymd(2100, 2, 29).is_none());
        assert!(Day::from_ymd(1969, 12, 31).is_none());
        assert!("2026-13-01".parse::<Day>().is_err());
        assert!("2026-1-01".parse::<Day>().is_err());
        assert!("yesterday".parse::<Day>().is_err());
        assert_eq!(LAST_DATED_DAY.to_string(), "9999-12-31");
        assert_eq!(LAST_DATED_DAY.plus(1).to_string(), "day 2932897");
        assert_eq!(Day(u32::MAX).plus(5), Day(u32::MAX));
    }

    #[test]
    fn round_trip_over_centuries() {
        for n in (0..80_000u32).step_by(7) {
            let (y, m, d) = Day(n).ymd().unwrap();
            assert_eq!(Day::from_ymd(y, m, d), Some(Day(n)), "{y}-{m}-{d}");
            assert_eq!(Day(n).to_string().parse::<Day>(), Ok(Day(n)));
        }
    }

    #[test]
    fn seoul_days_start_at_fifteen_utc() {
        let tz = seoul();
        let d = Day::from_ymd(2026, 12, 3).unwrap();
        // 2026-12-02 15:00 UTC is 2026-12-03 00:00 KST.
        let start = d.start_unix(&tz);
        assert_eq!(start, d.start_unix(&TimeZone::UTC) - 9 * 3600);
        assert_eq!(Day::of_unix(start, &tz), d);
        assert_eq!(Day::of_unix(start - 1, &tz), Day(d.0 - 1));
        assert_eq!(Day::of_unix(start, &TimeZone::UTC), Day(d.0 - 1));
        assert_eq!(format_unix(start, &tz), "2026-12-03 00:00:00 KST");
        assert_eq!(
            format_unix(start, &TimeZone::UTC),
            "2026-12-02 15:00:00 UTC"
        );
    }

    #[test]
    fn days_follow_daylight_saving_time() {
        // New York: 2026-03-08 has 23 hours, 2026-11-01 has 25.
        let tz = time_zone("America/New_York").unwrap();
        let spring = Day::from_ymd(2026, 3, 8).unwrap();
        assert_eq!(
            spring.plus(1).start_unix(&tz) - spring.start_unix(&tz),
            23 * 3600
        );
        let autumn = Day::from_ymd(2026, 11, 1).unwrap();
        assert_eq!(
            autumn.plus(1).start_unix(&tz) - autumn.start_unix(&tz),
            25 * 3600
        );
        assert_eq!(
            Day::of_unix(autumn.start_unix(&tz) + 24 * 3600, &tz),
            autumn
        );
    }

    #[test]
    fn extreme_times_do_not_panic() {
        let tz = seoul();
        assert_eq!(Day::of_unix(0, &TimeZone::UTC), Day(0));
        assert_eq!(Day::of_unix(0, &tz), Day(0));
        // 1969-12-31 19:00 in New York.
        assert_eq!(
            Day::of_unix(0, &time_zone("America/New_York").unwrap()),
            Day(0)
        );
        assert_eq!(Day::of_unix(u64::MAX, &tz), LAST_DATED_DAY);
        assert_eq!(Day(u32::MAX).start_unix(&tz), u64::MAX);
        assert!(!format_unix(u64::MAX, &tz).is_empty());
    }

    #[test]
    fn unknown_zones_are_named() {
        let e = time_zone("Asia/Sejong").unwrap_err();
        assert!(e.contains("Asia/Sejong") && e.contains("Asia/Seoul"), "{e}");
    }

    #[test]
    fn a_day_is_its_number_on_the_wire() {
        let bytes = postcard::to_allocvec(&Day(20_781)).unwrap();
        assert_eq!(bytes, postcard::to_allocvec(&20_781u32).unwrap());
    }
}
