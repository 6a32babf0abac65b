//! date, time, timetz, timestamp(tz) and interval arithmetic.
//!
//! PostgreSQL counts days and microseconds from 2000-01-01; infinity is the extreme integer.
//! Conversions to calendar fields use the proleptic Gregorian calendar (Hinnant's algorithm,
//! and Neri and Schneider's faster one for the years 1 to 9999), valid over the whole range;
//! callers decide which years their target type can hold.

use crate::error::{Error, Result};

pub const USECS_PER_SEC: i64 = 1_000_000;
pub const USECS_PER_DAY: i64 = 86_400 * USECS_PER_SEC;
/// Days from 0001-01-01 (proleptic Gregorian day 1, like Python's `date.toordinal()`) to
/// 2000-01-01.
pub const PG_EPOCH_ORDINAL: i64 = 730_120;

pub const DATE_POS_INFINITY: i32 = i32::MAX;
pub const DATE_NEG_INFINITY: i32 = i32::MIN;
pub const TIMESTAMP_POS_INFINITY: i64 = i64::MAX;
pub const TIMESTAMP_NEG_INFINITY: i64 = i64::MIN;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Date {
    pub year: i32,
    pub month: u8,
    pub day: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Time {
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
    pub microsecond: u32,
}

/// A decoded date or timestamp: finite, or one of the infinities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bounded<T> {
    Finite(T),
    Infinity,
    NegInfinity,
}

/// Days from 1970-01-01 to 0001-01-01 and to 9999-12-31: the dates Python can hold.
const PYTHON_DAYS: std::ops::RangeInclusive<i64> = -719_162..=2_932_896;

/// Calendar date of a day count relative to 1970-01-01.
pub fn civil_from_unix_days(z: i64) -> Date {
    if PYTHON_DAYS.contains(&z) {
        civil_from_unix_days_32(z as i32)
    } else {
        civil_from_unix_days_wide(z)
    }
}

/// Neri and Schneider's 32-bit form ("Euclidean affine functions and their application to
/// calendar algorithms", 2022): a third of the instructions of the general form, which shows
/// on columns of dates and timestamps. Valid far beyond [`PYTHON_DAYS`], where it is used;
/// `fast_form_matches_general_form` checks every day of that range.
fn civil_from_unix_days_32(days: i32) -> Date {
    // Shift the count by 82 cycles of 400 years, so that it is positive and counts from a
    // March 1st: the leap day then ends a year.
    const CYCLES: u32 = 82;
    const SHIFT: u32 = 719_468 + 146_097 * CYCLES;
    let n = days.wrapping_add_unsigned(SHIFT) as u32;
    let n1 = 4 * n + 3;
    let century = n1 / 146_097;
    let day_of_century = n1 % 146_097 / 4;
    let n2 = 4 * day_of_century + 3;
    let p2 = 2_939_745u64 * u64::from(n2);
    let year_of_century = (p2 >> 32) as u32;
    let day_of_year = (p2 as u32) / 2_939_745 / 4;
    let n3 = 2141 * day_of_year + 197_913;
    let month = n3 >> 16;
    let day = (n3 & 0xFFFF) / 2141 + 1;
    // Days past the end of December belong to the next calendar year.
    let january_or_february = day_of_year >= 306;
    let year = (100 * century + year_of_century) as i32 - (400 * CYCLES) as i32
        + i32::from(january_or_february);
    Date {
        year,
        month: if january_or_february {
            month - 12
        } else {
            month
        } as u8,
        day: day as u8,
    }
}

/// Hinnant's form, for any day count.
fn civil_from_unix_days_wide(z: i64) -> Date {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    Date {
        year: (y + i64::from(m <= 2)) as i32,
        month: m,
        day: d,
    }
}

/// Day count relative to 1970-01-01 of a calendar date.
pub fn unix_days_from_civil(date: Date) -> i64 {
    let y = i64::from(date.year) - i64::from(date.month <= 2);
    let m = i64::from(date.month);
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(date.day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

const UNIX_TO_PG_DAYS: i64 = 10_957;

/// PostgreSQL's day counts of 0001-01-01 and 9999-12-31, and its microsecond counts of
/// 0001-01-01 00:00:00 and 9999-12-31 23:59:59.999999: the first and last values of
/// calendars limited to the years 1 to 9999 (Python's `date.min`, `date.max`,
/// `datetime.min`, `datetime.max`), which asyncpg reads and writes as -infinity and infinity.
pub const YEAR_1_FIRST_DAY: i32 = -730_119;
pub const YEAR_9999_LAST_DAY: i32 = 2_921_939;
pub const YEAR_1_FIRST_USEC: i64 = YEAR_1_FIRST_DAY as i64 * USECS_PER_DAY;
pub const YEAR_9999_LAST_USEC: i64 = (YEAR_9999_LAST_DAY as i64 + 1) * USECS_PER_DAY - 1;

/// A date's day count with the first and last days of the years 1 to 9999 standing for
/// -infinity and infinity (asyncpg's mapping of Python's `date.min` and `date.max`).
pub fn pg_days_with_extremes_infinite(days: i64) -> i64 {
    match days {
        d if d == i64::from(YEAR_9999_LAST_DAY) => i64::from(DATE_POS_INFINITY),
        d if d == i64::from(YEAR_1_FIRST_DAY) => i64::from(DATE_NEG_INFINITY),
        d => d,
    }
}

/// A timestamp's microsecond count with the first and last microseconds of the years 1 to
/// 9999 standing for -infinity and infinity (asyncpg's mapping of `datetime.min` and
/// `datetime.max`).
pub fn pg_usecs_with_extremes_infinite(usecs: i64) -> i64 {
    match usecs {
        YEAR_9999_LAST_USEC => TIMESTAMP_POS_INFINITY,
        YEAR_1_FIRST_USEC => TIMESTAMP_NEG_INFINITY,
        u => u,
    }
}

pub fn date_from_pg_days(days: i32) -> Bounded<Date> {
    match days {
        DATE_POS_INFINITY => Bounded::Infinity,
        DATE_NEG_INFINITY => Bounded::NegInfinity,
        d => Bounded::Finite(civil_from_unix_days(i64::from(d) + UNIX_TO_PG_DAYS)),
    }
}

pub fn pg_days_from_date(date: Date) -> i64 {
    unix_days_from_civil(date) - UNIX_TO_PG_DAYS
}

pub fn time_from_usecs(usecs: i64) -> Result<Time> {
    if !(0..=USECS_PER_DAY).contains(&usecs) {
        return Err(Error::decode(format!(
            "invalid time value: {usecs} microseconds"
        )));
    }
    // 24:00:00 is a valid PostgreSQL time; Python has no such time, so it is reported.
    if usecs == USECS_PER_DAY {
        return Err(Error::decode(
            "time 24:00:00 cannot be represented as datetime.time",
        ));
    }
    let secs = usecs / USECS_PER_SEC;
    Ok(Time {
        hour: (secs / 3600) as u8,
        minute: (secs / 60 % 60) as u8,
        second: (secs % 60) as u8,
        microsecond: (usecs % USECS_PER_SEC) as u32,
    })
}

pub fn usecs_from_time(t: Time) -> i64 {
    (i64::from(t.hour) * 3600 + i64::from(t.minute) * 60 + i64::from(t.second)) * USECS_PER_SEC
        + i64::from(t.microsecond)
}

/// A timestamp as a date and a time of day.
pub fn timestamp_from_pg_usecs(usecs: i64) -> Bounded<(Date, Time)> {
    match usecs {
        TIMESTAMP_POS_INFINITY => Bounded::Infinity,
        TIMESTAMP_NEG_INFINITY => Bounded::NegInfinity,
        u => {
            let days = u.div_euclid(USECS_PER_DAY);
            let tod = u.rem_euclid(USECS_PER_DAY);
            let date = civil_from_unix_days(days + UNIX_TO_PG_DAYS);
            let time = time_from_usecs(tod).expect("remainder is within one day");
            Bounded::Finite((date, time))
        }
    }
}

pub fn pg_usecs_from_timestamp(date: Date, time: Time) -> i64 {
    pg_days_from_date(date) * USECS_PER_DAY + usecs_from_time(time)
}

/// Decoded timetz: time of day and the zone's offset east of UTC in seconds (the wire stores
/// seconds west, the opposite sign).
pub fn decode_timetz(data: &[u8]) -> Result<(Time, i32)> {
    let raw: [u8; 12] = super::fixed(data, "timetz")?;
    let usecs = i64::from_be_bytes(raw[..8].try_into().expect("8 bytes"));
    let west = i32::from_be_bytes(raw[8..].try_into().expect("4 bytes"));
    Ok((time_from_usecs(usecs)?, -west))
}

/// Interval: microseconds, days and months, kept apart as PostgreSQL does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval {
    pub microseconds: i64,
    pub days: i32,
    pub months: i32,
}

impl Interval {
    /// PostgreSQL 17's `infinity` and `-infinity`: every field at its extreme.
    pub const INFINITY: Interval = Interval {
        microseconds: i64::MAX,
        days: i32::MAX,
        months: i32::MAX,
    };
    pub const NEG_INFINITY: Interval = Interval {
        microseconds: i64::MIN,
        days: i32::MIN,
        months: i32::MIN,
    };

    pub fn is_infinite(&self) -> bool {
        *self == Self::INFINITY || *self == Self::NEG_INFINITY
    }

    /// The interval as one length in microseconds, read as asyncpg reads it: a day is 24 hours,
    /// each whole year of the months 365 days and each remaining month 30 days (years and
    /// months split towards zero, so `-13 mons` is -365 - 30 days). PostgreSQL's own
    /// comparison counts a year as 360 days; asyncpg's reading is the one Python code knows.
    pub fn asyncpg_usecs(&self) -> i128 {
        let years = self.months / 12;
        let months = self.months % 12;
        let days = i128::from(self.days) + i128::from(years) * 365 + i128::from(months) * 30;
        days * i128::from(USECS_PER_DAY) + i128::from(self.microseconds)
    }
}

pub fn decode_interval(data: &[u8]) -> Result<Interval> {
    let raw: [u8; 16] = super::fixed(data, "interval")?;
    Ok(Interval {
        microseconds: i64::from_be_bytes(raw[..8].try_into().expect("8 bytes")),
        days: i32::from_be_bytes(raw[8..12].try_into().expect("4 bytes")),
        months: i32::from_be_bytes(raw[12..].try_into().expect("4 bytes")),
    })
}

pub fn encode_interval(buf: &mut Vec<u8>, iv: Interval) {
    buf.extend_from_slice(&iv.microseconds.to_be_bytes());
    buf.extend_from_slice(&iv.days.to_be_bytes());
    buf.extend_from_slice(&iv.months.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn fast_form_matches_general_form() {
        for z in *PYTHON_DAYS.start() - 1000..=*PYTHON_DAYS.end() + 1000 {
            assert_eq!(
                civil_from_unix_days_32(z as i32),
                civil_from_unix_days_wide(z),
                "day {z}"
            );
        }
        assert_eq!(
            civil_from_unix_days(*PYTHON_DAYS.end()),
            Date {
                year: 9999,
                month: 12,
                day: 31
            }
        );
        assert_eq!(
            civil_from_unix_days(*PYTHON_DAYS.end() + 1),
            Date {
                year: 10000,
                month: 1,
                day: 1
            }
        );
    }

    #[test]
    fn epoch_values() {
        assert_eq!(
            date_from_pg_days(0),
            Bounded::Finite(Date {
                year: 2000,
                month: 1,
                day: 1
            })
        );
        assert_eq!(
            date_from_pg_days(-730_119),
            Bounded::Finite(Date {
                year: 1,
                month: 1,
                day: 1
            })
        );
        assert_eq!(date_from_pg_days(i32::MAX), Bounded::Infinity);
        assert_eq!(
            pg_days_from_date(Date {
                year: 1,
                month: 1,
                day: 1
            }),
            1 - PG_EPOCH_ORDINAL
        );
        let Bounded::Finite((d, t)) = timestamp_from_pg_usecs(-1) else {
            panic!()
        };
        assert_eq!(
            d,
            Date {
                year: 1999,
                month: 12,
                day: 31
            }
        );
        assert_eq!(
            t,
            Time {
                hour: 23,
                minute: 59,
                second: 59,
                microsecond: 999_999
            }
        );
    }

    #[test]
    fn extremes_of_the_years_1_to_9999() {
        let last = Date {
            year: 9999,
            month: 12,
            day: 31,
        };
        let first = Date {
            year: 1,
            month: 1,
            day: 1,
        };
        assert_eq!(pg_days_from_date(last), i64::from(YEAR_9999_LAST_DAY));
        assert_eq!(pg_days_from_date(first), i64::from(YEAR_1_FIRST_DAY));
        let end_of_day = Time {
            hour: 23,
            minute: 59,
            second: 59,
            microsecond: 999_999,
        };
        let midnight = Time {
            hour: 0,
            minute: 0,
            second: 0,
            microsecond: 0,
        };
        assert_eq!(
            pg_usecs_from_timestamp(last, end_of_day),
            YEAR_9999_LAST_USEC
        );
        assert_eq!(pg_usecs_from_timestamp(first, midnight), YEAR_1_FIRST_USEC);
        assert_eq!(
            pg_days_with_extremes_infinite(YEAR_9999_LAST_DAY.into()),
            DATE_POS_INFINITY.into()
        );
        assert_eq!(
            pg_days_with_extremes_infinite(YEAR_1_FIRST_DAY.into()),
            DATE_NEG_INFINITY.into()
        );
        assert_eq!(pg_days_with_extremes_infinite(0), 0);
        assert_eq!(
            pg_days_with_extremes_infinite(i64::from(YEAR_9999_LAST_DAY) - 1),
            i64::from(YEAR_9999_LAST_DAY) - 1
        );
        assert_eq!(
            pg_usecs_with_extremes_infinite(YEAR_9999_LAST_USEC),
            TIMESTAMP_POS_INFINITY
        );
        assert_eq!(
            pg_usecs_with_extremes_infinite(YEAR_1_FIRST_USEC),
            TIMESTAMP_NEG_INFINITY
        );
        assert_eq!(
            pg_usecs_with_extremes_infinite(YEAR_9999_LAST_USEC - 1),
            YEAR_9999_LAST_USEC - 1
        );
        assert_eq!(
            pg_usecs_with_extremes_infinite(YEAR_1_FIRST_USEC + 1),
            YEAR_1_FIRST_USEC + 1
        );
    }

    #[test]
    fn interval_as_asyncpg_reads_it() {
        let days = |months, days| {
            Interval {
                microseconds: 0,
                days,
                months,
            }
            .asyncpg_usecs()
                / i128::from(USECS_PER_DAY)
        };
        // The values asyncpg 0.32 returns for these intervals.
        assert_eq!(days(1, 0), 30);
        assert_eq!(days(-1, 0), -30);
        assert_eq!(days(11, 0), 330);
        assert_eq!(days(12, 0), 365);
        assert_eq!(days(-12, 0), -365);
        assert_eq!(days(13, 0), 395);
        assert_eq!(days(-13, 0), -395);
        assert_eq!(days(60, 0), 1825);
        assert_eq!(days(-61, 0), -1855);
        assert_eq!(days(12, -1), 364);
        assert_eq!(days(1, -40), -10);
        assert_eq!(days(12_000_000, 0), 365_000_000);
        let mixed = Interval {
            microseconds: -3 * 3_600 * USECS_PER_SEC,
            days: 2,
            months: -1,
        };
        assert_eq!(
            mixed.asyncpg_usecs(),
            -28 * i128::from(USECS_PER_DAY) - 3 * 3_600 * i128::from(USECS_PER_SEC)
        );
        // The extremes fit: no overflow in the reading itself.
        assert!(Interval::INFINITY.asyncpg_usecs() > 0);
        assert!(Interval::NEG_INFINITY.asyncpg_usecs() < 0);
        assert!(Interval::INFINITY.is_infinite());
        assert!(Interval::NEG_INFINITY.is_infinite());
        assert!(!Interval {
            microseconds: i64::MAX,
            days: i32::MAX,
            months: 0
        }
        .is_infinite());
    }

    #[test]
    fn time_limits() {
        assert!(time_from_usecs(USECS_PER_DAY).is_err());
        assert!(time_from_usecs(-1).is_err());
    }

    proptest! {
        #[test]
        fn days_round_trip(days in -2_451_545i64..100_000_000) {
            let Bounded::Finite(d) = date_from_pg_days(days as i32) else { unreachable!() };
            prop_assert_eq!(pg_days_from_date(d), days);
        }

        #[test]
        fn timestamp_round_trip(us in -211_813_488_000_000_000i64..i64::MAX) {
            let Bounded::Finite((d, t)) = timestamp_from_pg_usecs(us) else { unreachable!() };
            prop_assert_eq!(pg_usecs_from_timestamp(d, t), us);
        }
    }
}
