//! Proleptic Gregorian calendar arithmetic on unix days, in integers (H. Hinnant's
//! `days_from_civil` and `civil_from_days`). Venues, the fixture and the replay venues write
//! times as calendar dates; these turn them into unix time and back without a date library.

/// Days since 1970-01-01 of a date (month 1..=12, day 1..=31).
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date `(year, month, day)` of a day count since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Days in a month of a year (leap years included).
pub fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` of unix milliseconds; `decimals` is 0 (no fraction), 3 or 6
/// (milliseconds padded with zeros).
pub fn rfc3339_utc(unix_ms: u64, decimals: usize) -> String {
    let secs = unix_ms / 1000;
    let (y, m, d) = civil_from_days(i64::try_from(secs / 86_400).expect("u64 seconds / 86400 fits i64"));
    let rem = secs % 86_400;
    let hms = format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}", rem / 3600, rem % 3600 / 60, rem % 60);
    match decimals {
        0 => format!("{hms}Z"),
        3 => format!("{hms}.{:03}Z", unix_ms % 1000),
        _ => format!("{hms}.{:03}000Z", unix_ms % 1000),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(2025, 6, 12) * 86_400 + 16 * 3600, 1_749_744_000);
        assert_eq!(rfc3339_utc(1_749_744_000_123, 6), "2025-06-12T16:00:00.123000Z");
        assert_eq!(rfc3339_utc(1_749_744_000_123, 0), "2025-06-12T16:00:00Z");
        assert_eq!(days_in_month(2024, 2), 29);
        assert_eq!(days_in_month(1900, 2), 28);
    }

    proptest! {
        #[test]
        fn days_round_trip(days in -1_000_000i64..1_000_000) {
            let (y, m, d) = civil_from_days(days);
            prop_assert!((1..=12).contains(&m) && d >= 1 && d <= days_in_month(y, m));
            prop_assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
