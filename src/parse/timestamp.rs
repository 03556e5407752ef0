//! RFC 3339 timestamps as container runtimes write them: validation and the UTC calendar date
//! (which picks a dated index). Pure byte arithmetic; no allocation, no clock, no time crate.
//!
//! Accepted shape: `YYYY-MM-DDTHH:MM:SS[.f…]` followed by `Z` or `±HH:MM`, with any number
//! (≥ 1) of fractional digits, upper-case `T` and `Z` only (what runtimes write and what
//! Elasticsearch's strict date parsers take) and second `60` allowed (RFC 3339 leap seconds).

/// The fields of a timestamp that the date needs, in minutes.
struct Parsed {
    year: i32,
    month: u32,
    day: u32,
    /// Minutes since local midnight.
    minute_of_day: i32,
    /// Local time minus UTC, in minutes.
    offset_minutes: i32,
}

/// Whether `ts` is a complete, valid RFC 3339 date-time (see the module doc for the shape).
pub fn is_rfc3339(ts: &[u8]) -> bool {
    parse(ts).is_some()
}

/// The UTC calendar date `(year, month, day)` of an RFC 3339 timestamp, or `None` if `ts` is
/// not one. The offset is applied: `2026-01-01T01:00:00+02:00` is `(2025, 12, 31)`.
pub fn utc_date(ts: &[u8]) -> Option<(i32, u32, u32)> {
    let p = parse(ts)?;
    let utc_minutes = p.minute_of_day - p.offset_minutes;
    // Offsets are below a day, so the UTC date is at most one day away from the local one.
    let shift = utc_minutes.div_euclid(24 * 60);
    let days = days_from_civil(p.year, p.month, p.day) + i64::from(shift);
    Some(civil_from_days(days))
}

fn parse(ts: &[u8]) -> Option<Parsed> {
    // The fixed prefix: "YYYY-MM-DDTHH:MM:SS" is 19 bytes.
    if ts.len() < 20 {
        return None;
    }
    let year = digits(ts, 0, 4)? as i32;
    let month = digits(ts, 5, 2)?;
    let day = digits(ts, 8, 2)?;
    let hour = digits(ts, 11, 2)?;
    let minute = digits(ts, 14, 2)?;
    let second = digits(ts, 17, 2)?;
    if ts[4] != b'-' || ts[7] != b'-' || ts[10] != b'T' || ts[13] != b':' || ts[16] != b':' {
        return None;
    }
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut rest = &ts[19..];
    if rest.first() == Some(&b'.') {
        let n = rest[1..].iter().take_while(|b| b.is_ascii_digit()).count();
        if n == 0 {
            return None;
        }
        rest = &rest[1 + n..];
    }
    let offset_minutes = match rest {
        [b'Z'] => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let oh = digits(rest, 1, 2)?;
            let om = digits(rest, 4, 2)?;
            if oh > 23 || om > 59 {
                return None;
            }
            let m = (oh * 60 + om) as i32;
            if *sign == b'-' { -m } else { m }
        }
        _ => return None,
    };
    Some(Parsed {
        year,
        month,
        day,
        minute_of_day: (hour * 60 + minute) as i32,
        offset_minutes,
    })
}

/// `n` ASCII digits at `at` as a number; `None` if any is not a digit. `at + n <= s.len()` is
/// the caller's to ensure for the fixed prefix; out-of-range reads return `None` anyway.
fn digits(s: &[u8], at: usize, n: usize) -> Option<u32> {
    s.get(at..at + n)?.iter().try_fold(0u32, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0'))
    })
}

fn is_leap(y: i32) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i32, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(y: i32, m: u32, d: u32) -> i64 {
    let y = i64::from(y) - i64::from(m <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400; // [0, 399]
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe - 719_468
}

/// Inverse of [`days_from_civil`].
fn civil_from_days(z: i64) -> (i32, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    // Years come from four digits, ± one day: always within i32.
    (y as i32, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> Option<(i32, u32, u32)> {
        utc_date(s.as_bytes())
    }

    #[test]
    fn utc_timestamps_keep_their_date() {
        assert_eq!(date("2026-11-24T10:00:00.123456789Z"), Some((2026, 11, 24)));
        assert_eq!(date("2026-11-24T00:00:00Z"), Some((2026, 11, 24)));
        assert_eq!(date("2026-11-24T23:59:59.999999999Z"), Some((2026, 11, 24)));
        assert_eq!(date("2026-11-24T23:59:59Z"), Some((2026, 11, 24)));
    }

    #[test]
    fn any_number_of_fractional_digits() {
        assert_eq!(date("2026-11-24T10:00:00.1Z"), Some((2026, 11, 24)));
        assert_eq!(date("2026-11-24T10:00:00.123456Z"), Some((2026, 11, 24)));
        assert_eq!(
            date("2026-11-24T10:00:00.123456789012Z"),
            Some((2026, 11, 24))
        );
        assert_eq!(date("2026-11-24T10:00:00.Z"), None, "a dot needs digits");
    }

    #[test]
    fn positive_offset_before_its_midnight_is_the_previous_utc_day() {
        assert_eq!(date("2026-11-24T01:00:00+02:00"), Some((2026, 11, 23)));
        assert_eq!(date("2026-11-24T02:00:00+02:00"), Some((2026, 11, 24)));
        assert_eq!(date("2026-11-24T01:59:59.999+02:00"), Some((2026, 11, 23)));
    }

    #[test]
    fn negative_offset_late_in_the_day_is_the_next_utc_day() {
        assert_eq!(date("2026-11-24T22:00:00-02:00"), Some((2026, 11, 25)));
        assert_eq!(date("2026-11-24T21:59:00-02:00"), Some((2026, 11, 24)));
        assert_eq!(date("2026-11-24T23:30:00-00:30"), Some((2026, 11, 25)));
    }

    #[test]
    fn offsets_crossing_month_and_year_ends() {
        assert_eq!(date("2026-01-01T01:00:00+02:00"), Some((2025, 12, 31)));
        assert_eq!(date("2025-12-31T23:00:00-05:00"), Some((2026, 1, 1)));
        assert_eq!(date("2026-03-01T00:30:00+01:00"), Some((2026, 2, 28)));
        assert_eq!(date("2026-04-30T20:00:00-05:00"), Some((2026, 5, 1)));
        assert_eq!(date("2026-05-01T05:00:00+05:45"), Some((2026, 4, 30)));
    }

    #[test]
    fn leap_days() {
        assert_eq!(date("2028-02-29T12:00:00Z"), Some((2028, 2, 29)));
        assert_eq!(date("2028-03-01T00:30:00+01:00"), Some((2028, 2, 29)));
        assert_eq!(date("2028-02-29T23:00:00-02:00"), Some((2028, 3, 1)));
        assert_eq!(
            date("2000-03-01T00:00:00+00:01"),
            Some((2000, 2, 29)),
            "2000 is a leap year"
        );
        assert_eq!(
            date("2100-03-01T00:00:00+00:01"),
            Some((2100, 2, 28)),
            "2100 is not"
        );
        assert_eq!(date("2027-02-29T12:00:00Z"), None);
        assert_eq!(date("2100-02-29T12:00:00Z"), None);
    }

    #[test]
    fn civil_round_trip_over_four_centuries() {
        // Every day of a 400-year cycle (plus margins): days → date → days is the identity and
        // consecutive days give consecutive dates.
        let start = days_from_civil(1899, 12, 25);
        let mut prev = civil_from_days(start - 1);
        for z in start..start + 146_097 + 20 {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
            assert!(d >= 1 && d <= days_in_month(y, m));
            let next_of_prev = if prev.2 < days_in_month(prev.0, prev.1) {
                (prev.0, prev.1, prev.2 + 1)
            } else if prev.1 < 12 {
                (prev.0, prev.1 + 1, 1)
            } else {
                (prev.0 + 1, 1, 1)
            };
            assert_eq!((y, m, d), next_of_prev);
            prev = (y, m, d);
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
    }

    #[test]
    fn leap_second_is_valid() {
        assert!(is_rfc3339(b"2016-12-31T23:59:60Z"));
        assert_eq!(date("2016-12-31T23:59:60Z"), Some((2016, 12, 31)));
    }

    #[test]
    fn invalid_timestamps_are_rejected() {
        for bad in [
            "",
            "2026-11-24",
            "2026-11-24T10:00:00",        // no zone
            "2026-11-24 10:00:00Z",       // space instead of T
            "2026-11-24t10:00:00z",       // lower case
            "2026-13-24T10:00:00Z",       // month
            "2026-00-24T10:00:00Z",       // month
            "2026-11-00T10:00:00Z",       // day
            "2026-11-31T10:00:00Z",       // November has 30 days
            "2026-11-24T24:00:00Z",       // hour
            "2026-11-24T10:60:00Z",       // minute
            "2026-11-24T10:00:61Z",       // second
            "2026-11-24T10:00:00+0200",   // offset without colon
            "2026-11-24T10:00:00+24:00",  // offset hour
            "2026-11-24T10:00:00+02:60",  // offset minute
            "2026-11-24T10:00:00Zjunk",   // trailing bytes
            "2026-11-24T10:00:00.12a3Z",  // letter in fraction
            "2026/11/24T10:00:00Z",       // separators
            "+026-11-24T10:00:00Z",       // sign in year
            "2026-11-24T10:00:00+02:00 ", // trailing space
            "2026-1-24T10:00:00Z",        // short month
        ] {
            assert!(!is_rfc3339(bad.as_bytes()), "{bad:?} must be invalid");
            assert_eq!(date(bad), None, "{bad:?}");
        }
        assert!(is_rfc3339(b"2026-11-24T10:00:00-07:00"));
        assert!(is_rfc3339(b"0001-01-01T00:00:00Z"));
        assert_eq!(date("0001-01-01T00:00:00+01:00"), Some((0, 12, 31)));
    }
}
