//! When a photo was taken, as its metadata writes it: ISO 8601 with or without a UTC
//! offset. The index files a photo under the date its camera's clock showed (a photo
//! taken at 23:30 on New Year's Eve in Tokyo is in that year, whatever UTC says), so
//! the instant it keeps is that wall-clock time read as if it were UTC.

/// A date and time of day, with the UTC offset in minutes when the source gives one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Taken {
    pub year: i32,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub offset_minutes: Option<i32>,
}

/// The first photograph that survives is from 1826 or 1827.
pub const FIRST_YEAR: i32 = 1826;

impl Taken {
    /// Checks every part's range, and that the year is from [`FIRST_YEAR`] to
    /// `latest_year`: a clock that was never set (year 0) or set wrong (2099) says
    /// nothing about when the photo was taken.
    pub fn check(self, latest_year: i32) -> Result<Self, String> {
        let days = days_in_month(self.year, self.month);
        if !(FIRST_YEAR..=latest_year).contains(&self.year) {
            return Err(format!("year {} is not between {FIRST_YEAR} and {latest_year}", self.year));
        }
        if !(1..=12).contains(&self.month) || self.day < 1 || self.day > days {
            return Err(format!("{}-{:02}-{:02} is no date", self.year, self.month, self.day));
        }
        if self.hour > 23 || self.minute > 59 || self.second > 60 {
            return Err(format!("{:02}:{:02}:{:02} is no time of day", self.hour, self.minute, self.second));
        }
        if self.offset_minutes.is_some_and(|m| m.abs() > 14 * 60) {
            return Err(format!("UTC offset of {} minutes is beyond ±14 h", self.offset_minutes.unwrap_or(0)));
        }
        Ok(self)
    }

    /// ISO 8601: `2019-07-14T09:30:05`, with `+09:00` (or `Z`) when the offset is known.
    pub fn iso(&self) -> String {
        let mut text = format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        );
        match self.offset_minutes {
            Some(0) => text.push('Z'),
            Some(m) => {
                text.push_str(&format!("{}{:02}:{:02}", if m < 0 { '-' } else { '+' }, m.abs() / 60, m.abs() % 60))
            }
            None => {}
        }
        text
    }

    /// Parses ISO 8601 as XMP writes it: a date (`2019`, `2019-07`, `2019-07-14`), or
    /// a date and a time (`T09:30`, `T09:30:05`, `T09:30:05.25`) with an optional
    /// offset (`Z`, `+09:00`). Missing parts are the first month, day, or midnight.
    pub fn parse_iso(text: &str) -> Result<Self, String> {
        let bad = || format!("{text:?} is not an ISO 8601 date and time");
        let text = text.trim();
        let (date, time) = text.split_once('T').unwrap_or((text, ""));
        let mut parts = date.splitn(3, '-');
        let year = number(parts.next(), 4).ok_or_else(bad)?;
        let month = parts.next().map_or(Some(1), |p| number(Some(p), 2)).ok_or_else(bad)?;
        let day = parts.next().map_or(Some(1), |p| number(Some(p), 2)).ok_or_else(bad)?;
        let (clock, offset) = match time.find(['Z', '+', '-']) {
            Some(at) => (&time[..at], Some(&time[at..])),
            None => (time, None),
        };
        let mut hms = [0u32; 3];
        if !clock.is_empty() {
            let whole = clock.split('.').next().unwrap_or("");
            let pieces: Vec<&str> = whole.split(':').collect();
            if pieces.len() < 2 || pieces.len() > 3 {
                return Err(bad());
            }
            for (slot, piece) in hms.iter_mut().zip(pieces) {
                *slot = number(Some(piece), 2).ok_or_else(bad)? as u32;
            }
        }
        let offset_minutes = match offset {
            None => None,
            Some("Z") => Some(0),
            Some(o) => {
                let sign = if o.starts_with('-') { -1 } else { 1 };
                let (h, m) = o[1..].split_once(':').unwrap_or((&o[1..], "00"));
                Some(sign * (number(Some(h), 2).ok_or_else(bad)? * 60 + number(Some(m), 2).ok_or_else(bad)?))
            }
        };
        Ok(Self {
            year,
            month: month as u32,
            day: day as u32,
            hour: hms[0],
            minute: hms[1],
            second: hms[2],
            offset_minutes,
        })
    }

    /// The wall-clock time as milliseconds since the epoch, read as if it were UTC.
    pub fn wall_clock_ms(&self) -> i64 {
        let days = days_from_civil(self.year, self.month, self.day);
        ((days * 24 + i64::from(self.hour)) * 60 + i64::from(self.minute)) * 60_000 + i64::from(self.second) * 1000
    }
}

/// Exactly `width` ASCII digits.
fn number(text: Option<&str>, width: usize) -> Option<i32> {
    let text = text?;
    (text.len() == width && text.bytes().all(|b| b.is_ascii_digit())).then(|| text.parse().ok()).flatten()
}

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar: count whole
/// 400-year eras from year 0 (each 146 097 days), with years starting in March so
/// that the leap day ends a year.
pub fn days_from_civil(year: i32, month: u32, day: u32) -> i64 {
    let year = i64::from(if month <= 2 { year - 1 } else { year });
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (i64::from(month) + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The civil year of a wall-clock instant from [`Taken::wall_clock_ms`], and the
/// instants its first day and the next year's begin.
pub fn year_bounds(year: i32) -> (i64, i64) {
    (days_from_civil(year, 1, 1) * 86_400_000, days_from_civil(year + 1, 1, 1) * 86_400_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_count_days_from_the_epoch_as_the_calendar_does() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(2021, 11, 12) * 86_400_000, 1_636_675_200_000);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        assert_eq!(days_from_civil(1900, 3, 1) - days_from_civil(1900, 2, 28), 1, "1900 was no leap year");
        assert_eq!(days_from_civil(2000, 3, 1) - days_from_civil(2000, 2, 28), 2, "2000 was");
    }

    #[test]
    fn iso_times_parse_with_and_without_their_parts_and_offsets() {
        let t = Taken::parse_iso("2019-07-14T09:30:05+09:00").unwrap();
        assert_eq!(
            (t.year, t.month, t.day, t.hour, t.minute, t.second, t.offset_minutes),
            (2019, 7, 14, 9, 30, 5, Some(540))
        );
        assert_eq!(t.iso(), "2019-07-14T09:30:05+09:00");
        assert_eq!(Taken::parse_iso("2019-07-14T09:30:05.250-03:30").unwrap().offset_minutes, Some(-210));
        assert_eq!(Taken::parse_iso("2019-07-14T09:30Z").unwrap().iso(), "2019-07-14T09:30:00Z");
        assert_eq!(Taken::parse_iso("2019-07").unwrap().iso(), "2019-07-01T00:00:00");
        assert_eq!(Taken::parse_iso("2019").unwrap().iso(), "2019-01-01T00:00:00");
        for bad in ["", "19-07-14", "2019-7-14", "2019-07-14T9:30", "2019-07-14T09", "yesterday", "2019-07-14T09:30+9"]
        {
            assert!(Taken::parse_iso(bad).is_err(), "{bad:?}");
        }
        let new_year = Taken::parse_iso("2019-12-31T23:30:00+09:00").unwrap();
        let (start, end) = year_bounds(2019);
        assert!((start..end).contains(&new_year.wall_clock_ms()), "filed under the year its clock showed");
    }

    #[test]
    fn a_time_out_of_range_is_refused_with_the_reason() {
        let at = |text: &str| Taken::parse_iso(text).unwrap().check(2030);
        assert!(at("2019-02-29T00:00:00").unwrap_err().contains("no date"));
        assert!(at("2020-02-29T00:00:00").is_ok());
        assert!(at("0000-01-01T00:00:00").unwrap_err().contains("year 0"));
        assert!(at("2099-01-01T00:00:00").unwrap_err().contains("2099"));
        assert!(at("2019-13-01T00:00:00").is_err());
        assert!(at("2019-01-01T24:00:00").unwrap_err().contains("no time of day"));
        assert!(at("2019-01-01T10:00:00+15:00").unwrap_err().contains("±14 h"));
    }
}
