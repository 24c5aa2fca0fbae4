//! RFC 3339 timestamps: formatting the clock's instant and parsing client values
//! (for `dateTime` comparison in filters). No wall clock is read here.

/// Days since 1970-01-01 for a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Formats milliseconds since the Unix epoch as `YYYY-MM-DDThh:mm:ss.sssZ`.
pub fn format_millis(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let milli = ms.rem_euclid(1000);
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{milli:03}Z",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    )
}

fn digits(s: &[u8], at: usize, n: usize) -> Option<i64> {
    let part = s.get(at..at + n)?;
    let mut v = 0i64;
    for &c in part {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + i64::from(c - b'0');
    }
    Some(v)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if y % 4 == 0 && (y % 100 != 0 || y % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

const SHAPE: &str = "expected YYYY-MM-DDThh:mm:ss[.fraction][Z|+hh:mm|-hh:mm]";

/// Parses an RFC 3339 date-time (`xsd:dateTime` with a zone) into nanoseconds since the
/// epoch, or says what is wrong with it. A missing zone is read as UTC, as many clients
/// omit it. Every field must exist on the calendar and the clock: no February 30th, no
/// `24:00`, offsets within ±23:59, a leap second only as the 60th second of a minute.
pub fn parse_nanos(s: &str) -> Result<i128, String> {
    let b = s.as_bytes();
    let shape = |ok: bool| if ok { Ok(()) } else { Err(SHAPE.to_string()) };
    let field = |at, n| digits(b, at, n).ok_or_else(|| SHAPE.to_string());
    let (y, mo, d) = (field(0, 4)?, field(5, 2)?, field(8, 2)?);
    shape(b.get(4) == Some(&b'-') && b.get(7) == Some(&b'-'))?;
    shape(matches!(b.get(10), Some(b'T' | b't' | b' ')))?;
    let (h, mi, se) = (field(11, 2)?, field(14, 2)?, field(17, 2)?);
    shape(b.get(13) == Some(&b':') && b.get(16) == Some(&b':'))?;
    if !(1..=12).contains(&mo) {
        return Err(format!("there is no month {mo:02}"));
    }
    if d < 1 || d > days_in_month(y, mo) {
        return Err(format!("{y:04}-{mo:02} has no day {d:02}"));
    }
    if h > 23 || mi > 59 || se > 60 || (se == 60 && mi != 59) {
        return Err(format!("{h:02}:{mi:02}:{se:02} is not a time of day"));
    }
    let mut i = 19;
    let mut frac: i128 = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        let mut scale = 1_000_000_000i128;
        while let Some(c) = b.get(i).filter(|c| c.is_ascii_digit()) {
            scale /= 10;
            frac += i128::from(c - b'0') * scale;
            i += 1;
        }
        shape(i > start)?;
    }
    let offset = match b.get(i) {
        None => 0,
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) if i + 6 == b.len() && b.get(i + 3) == Some(&b':') => {
            let (oh, om) = (field(i + 1, 2)?, field(i + 4, 2)?);
            if oh > 23 || om > 59 {
                return Err(format!("the offset {oh:02}:{om:02} is beyond 23:59"));
            }
            let o = oh * 3600 + om * 60;
            if sign == b'+' {
                o
            } else {
                -o
            }
        }
        _ => return Err(SHAPE.to_string()),
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + se - offset;
    Ok(i128::from(secs) * 1_000_000_000 + frac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses() {
        assert_eq!(format_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_millis(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(
            parse_nanos("2023-11-14T22:13:20.123Z"),
            Ok(1_700_000_000_123_000_000)
        );
        assert_eq!(
            parse_nanos("2023-11-15T00:13:20+02:00"),
            Ok(1_700_000_000_000_000_000)
        );
        assert_eq!(
            parse_nanos("2011-05-13T04:42:34"),
            parse_nanos("2011-05-13T04:42:34Z")
        );
    }

    #[test]
    fn calendar_and_clock_table() {
        let ok = [
            "2024-02-29T00:00:00Z",
            "2000-02-29T12:00:00Z",
            "2026-01-31T23:59:59Z",
            "2026-04-30T00:00:00Z",
            "2026-12-31T23:59:60Z",
            "2026-06-01T00:00:00.5Z",
            "2026-06-01T00:00:00.123456789Z",
            "2026-06-01T00:00:00.1234567891234Z",
            "2026-06-01T00:00:00+23:59",
            "2026-06-01T00:00:00-23:59",
            "2026-06-01T00:00:00-00:00",
            "2026-06-01t00:00:00z",
        ];
        for s in ok {
            assert!(parse_nanos(s).is_ok(), "{s}: {:?}", parse_nanos(s));
        }
        let bad = [
            ("2026-02-29T00:00:00Z", "2026-02 has no day 29"),
            ("1900-02-29T00:00:00Z", "1900-02 has no day 29"),
            ("2026-02-31T00:00:00Z", "2026-02 has no day 31"),
            ("2026-04-31T00:00:00Z", "2026-04 has no day 31"),
            ("2026-06-00T00:00:00Z", "2026-06 has no day 00"),
            ("2026-13-01T00:00:00Z", "there is no month 13"),
            ("2026-00-01T00:00:00Z", "there is no month 00"),
            ("2026-06-01T24:00:00Z", "24:00:00 is not a time of day"),
            ("2026-06-01T23:60:00Z", "23:60:00 is not a time of day"),
            ("2026-06-01T12:30:60Z", "12:30:60 is not a time of day"),
            (
                "2026-06-01T00:00:00+99:99",
                "the offset 99:99 is beyond 23:59",
            ),
            (
                "2026-06-01T00:00:00+24:00",
                "the offset 24:00 is beyond 23:59",
            ),
            (
                "2026-06-01T00:00:00-00:60",
                "the offset 00:60 is beyond 23:59",
            ),
            ("2026-06-01T00:00:00.Z", SHAPE),
            ("2026-06-01T00:00:00+0100", SHAPE),
            ("2026-06-01T00:00:00Zjunk", SHAPE),
            ("2026-6-01T00:00:00Z", SHAPE),
            ("yesterday", SHAPE),
        ];
        for (s, why) in bad {
            assert_eq!(parse_nanos(s), Err(why.to_string()), "{s}");
        }
    }
}
