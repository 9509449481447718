//! UTC timestamps as the database stores them (`YYYY-MM-DD HH:MM:SS`),
//! without a calendar crate: the civil-date algorithm is short and exact.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, now.
pub fn now_unix() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// Days since 1970-01-01 to (year, month, day). (Howard Hinnant's algorithm.)
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `YYYY-MM-DD HH:MM:SS` for a Unix time.
pub fn format_sql(unix: i64) -> String {
    let (days, secs) = (unix.div_euclid(86_400), unix.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}", secs / 3600, (secs % 3600) / 60, secs % 60)
}

/// ISO 8601 as Laravel serialises model timestamps: `2023-05-22T10:00:00.000000Z`.
pub fn format_iso(unix: i64) -> String {
    let sql = format_sql(unix);
    format!("{}T{}.000000Z", &sql[..10], &sql[11..])
}

/// The stored text form turned into ISO 8601 (empty stays empty).
pub fn sql_to_iso(sql: &str) -> String {
    // `parse_sql` accepts only canonical text (fixed widths, real dates),
    // which `format_sql` would give back unchanged: reuse it as it is.
    if parse_sql(sql).is_none() {
        return String::new();
    }
    let mut iso = String::with_capacity(27);
    iso.push_str(&sql[..10]);
    iso.push('T');
    iso.push_str(&sql[11..]);
    iso.push_str(".000000Z");
    iso
}

pub fn now_sql() -> String {
    format_sql(now_unix())
}

/// The stored form `minutes` ago (or ahead, when negative).
pub fn minutes_ago_sql(minutes: i64) -> String {
    format_sql(now_unix() - minutes * 60)
}

/// Parses `YYYY-MM-DD HH:MM:SS` strictly (PHP's `Y-m-d H:i:s`).
pub fn parse_sql(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() != 19 || b[4] != b'-' || b[7] != b'-' || b[10] != b' ' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let s = text.get(r)?;
        if s.bytes().all(|c| c.is_ascii_digit()) {
            s.parse().ok()
        } else {
            None
        }
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || d < 1 || h > 23 || mi > 59 || s > 59 {
        return None;
    }
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_days = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if d > month_days[(mo - 1) as usize] {
        return None;
    }
    Some(days_from_civil(y, mo as u32, d as u32) * 86_400 + h * 3600 + mi * 60 + s)
}

/// Calendar month arithmetic for "now − 1 month" (clamped to the month's end).
pub fn months_ago(unix: i64, months: i64) -> i64 {
    let (days, secs) = (unix.div_euclid(86_400), unix.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    let total = y * 12 + (m as i64 - 1) - months;
    let (ny, nm) = (total.div_euclid(12), (total.rem_euclid(12) + 1) as u32);
    let leap = (ny % 4 == 0 && ny % 100 != 0) || ny % 400 == 0;
    let month_days = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    let nd = d.min(month_days[(nm - 1) as usize]);
    days_from_civil(ny, nm, nd) * 86_400 + secs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sql_to_iso_matches_parse_then_format() {
        for text in ["2024-02-29 23:59:59", "0000-01-01 00:00:00", "1999-12-31 12:00:00", "2023-05-22 10:00:00"] {
            assert_eq!(sql_to_iso(text), parse_sql(text).map(format_iso).unwrap());
        }
        for bad in ["", "2023-02-29 00:00:00", "2023-13-01 00:00:00", "2023-05-22T10:00:00", "2023-05-22 10:00:0x"] {
            assert_eq!(sql_to_iso(bad), "");
        }
    }

    #[test]
    fn round_trips() {
        for t in [0, 951_782_400, 1_700_000_000, 4_102_444_799, 1_709_210_096] {
            assert_eq!(parse_sql(&format_sql(t)), Some(t));
        }
        assert_eq!(format_sql(0), "1970-01-01 00:00:00");
        assert_eq!(format_sql(951_782_400), "2000-02-29 00:00:00");
        assert_eq!(format_iso(0), "1970-01-01T00:00:00.000000Z");
    }

    #[test]
    fn strict_parsing() {
        for bad in ["abc", "2023-13-01 00:00:00", "2023-02-29 10:00:00", "2023-01-01T00:00:00", "2023-01-01 24:00:00"] {
            assert_eq!(parse_sql(bad), None, "{bad}");
        }
    }

    #[test]
    fn month_arithmetic() {
        let t = parse_sql("2024-03-31 12:00:00").unwrap();
        assert_eq!(format_sql(months_ago(t, 1)), "2024-02-29 12:00:00");
    }
}
