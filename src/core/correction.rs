//! Corrections (`/adjust`, `study-tracker adjust`): what a server manager
//! or an operator may add to or take from a member's figures, validated
//! here, before anything is written.
//!
//! A correction is one signed amount of one figure (camera-on seconds,
//! camera-off seconds or messages) on the local day it was made. It adds to
//! the member's all-time totals and to the day, week and month of that day;
//! it may never leave the total or that day below zero ([`check_floor`]).

use super::stats::Totals;

/// Which figure a correction changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum What {
    CameraOn,
    CameraOff,
    Messages,
}

impl What {
    /// The names the command and the CLI take (and the audit log keeps).
    pub const NAMES: [&'static str; 3] = ["camera_on", "camera_off", "messages"];

    /// # Errors
    /// Not one of [`What::NAMES`]: the line to show.
    pub fn parse(s: &str) -> Result<What, String> {
        match s.trim() {
            "camera_on" => Ok(What::CameraOn),
            "camera_off" => Ok(What::CameraOff),
            "messages" => Ok(What::Messages),
            other => Err(format!(
                "`{other}` is not something a correction can change: use camera_on, camera_off or messages."
            )),
        }
    }

    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            What::CameraOn => "camera_on",
            What::CameraOff => "camera_off",
            What::Messages => "messages",
        }
    }

    /// The figure it changes in `t`.
    #[must_use]
    pub fn of(self, t: &Totals) -> i64 {
        match self {
            What::CameraOn => t.cam_on_secs,
            What::CameraOff => t.cam_off_secs,
            What::Messages => t.messages,
        }
    }

    /// `t` with `amount` added to this figure.
    pub fn add_to(self, t: &mut Totals, amount: i64) {
        match self {
            What::CameraOn => t.cam_on_secs += amount,
            What::CameraOff => t.cam_off_secs += amount,
            What::Messages => t.messages += amount,
        }
    }

    /// An amount of this figure for people: `-1h 30m 5s`, `+3 messages`.
    #[must_use]
    pub fn show(self, amount: i64) -> String {
        let sign = if amount < 0 { "-" } else { "+" };
        match self {
            What::Messages => format!(
                "{sign}{} message{}",
                amount.unsigned_abs(),
                if amount.unsigned_abs() == 1 { "" } else { "s" }
            ),
            _ => format!("{sign}{}", duration(amount.unsigned_abs())),
        }
    }
}

/// Seconds as `1h 30m 5s` (`0s` for none).
#[must_use]
pub fn duration(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut parts = Vec::new();
    if h > 0 {
        parts.push(format!("{h}h"));
    }
    if m > 0 {
        parts.push(format!("{m}m"));
    }
    if s > 0 || parts.is_empty() {
        parts.push(format!("{s}s"));
    }
    parts.join(" ")
}

/// The most a correction may move a figure: ten years of seconds (a typo
/// guard; no real correction comes near it).
pub const MAX_AMOUNT: i64 = 10 * 366 * 86_400;

/// The longest reason kept.
pub const MAX_REASON_CHARS: usize = 200;

/// Parses a signed amount of `what`: time as `1h30m`, `-45m`, `90s`,
/// `1h 5m 3s` or plain seconds (`-120`); messages as a plain count.
///
/// # Errors
/// Anything else, zero, or beyond [`MAX_AMOUNT`]: the line to show.
pub fn parse_amount(what: What, typed: &str) -> Result<i64, String> {
    let t = typed.trim();
    let bad = || match what {
        What::Messages => {
            format!("`{typed}` is not a number of messages: give a whole number such as 5 or -3.")
        }
        _ => format!(
            "`{typed}` is not an amount of time: use e.g. 1h30m, -45m, 90s or plain seconds."
        ),
    };
    let (negative, body) = match t.strip_prefix('-') {
        Some(rest) => (true, rest.trim_start()),
        None => (false, t.strip_prefix('+').unwrap_or(t).trim_start()),
    };
    if body.is_empty() {
        return Err(bad());
    }
    let magnitude: i64 = if body.bytes().all(|b| b.is_ascii_digit()) {
        body.parse().map_err(|_| bad())?
    } else if what == What::Messages {
        return Err(bad());
    } else {
        parse_units(body).ok_or_else(bad)?
    };
    if magnitude == 0 {
        return Err("A correction of zero changes nothing: give an amount other than 0.".into());
    }
    if magnitude > MAX_AMOUNT {
        return Err(format!(
            "`{typed}` is more than a correction can move (at most {MAX_AMOUNT})."
        ));
    }
    Ok(if negative { -magnitude } else { magnitude })
}

/// `1h30m`, `45m`, `90s`, `2h 5s`: each unit at most once, in the order
/// h, m, s.
fn parse_units(body: &str) -> Option<i64> {
    let mut total: i64 = 0;
    let mut digits = String::new();
    let mut last_unit = 0_u8;
    for c in body.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' if digits.is_empty() => {}
            'h' | 'H' | 'm' | 'M' | 's' | 'S' => {
                let (rank, per) = match c.to_ascii_lowercase() {
                    'h' => (1, 3600),
                    'm' => (2, 60),
                    _ => (3, 1),
                };
                if digits.is_empty() || rank <= last_unit {
                    return None;
                }
                last_unit = rank;
                let n: i64 = digits.parse().ok()?;
                total = total.checked_add(n.checked_mul(per)?)?;
                digits.clear();
            }
            _ => return None,
        }
    }
    digits.is_empty().then_some(total)
}

/// Checks a reason: required, at most [`MAX_REASON_CHARS`] characters.
///
/// # Errors
/// Empty or too long: the line to show.
pub fn check_reason(reason: &str) -> Result<String, String> {
    let r = reason.trim();
    if r.is_empty() {
        return Err("A correction needs a reason (up to 200 characters).".into());
    }
    let n = r.chars().count();
    if n > MAX_REASON_CHARS {
        return Err(format!(
            "The reason is {n} characters long; keep it to {MAX_REASON_CHARS}."
        ));
    }
    Ok(r.to_owned())
}

/// Refuses `amount` of `what` if it would leave the member's all-time
/// figure (`total`) or that of the correction's day (`day`) below zero.
///
/// # Errors
/// The line to show, with the figure the correction would leave.
pub fn check_floor(what: What, amount: i64, total: &Totals, day: &Totals) -> Result<(), String> {
    for (figure, place) in [(what.of(total), "all-time"), (what.of(day), "today's")] {
        let left = figure + amount;
        if left < 0 {
            let label = match what {
                What::CameraOn => "camera-on time",
                What::CameraOff => "camera-off time",
                What::Messages => "message count",
            };
            let shown = |v: i64| match what {
                What::Messages => v.to_string(),
                _ => format!(
                    "{}{}",
                    if v < 0 { "-" } else { "" },
                    duration(v.unsigned_abs())
                ),
            };
            return Err(format!(
                "Refused: {} would leave the member's {place} {label} at {} (it is {}). A correction never takes a figure below zero.",
                what.show(amount),
                shown(left),
                shown(figure)
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_parse_as_the_issue_writes_them() {
        let t = |s| parse_amount(What::CameraOn, s);
        assert_eq!(t("1h30m"), Ok(5400));
        assert_eq!(t("-45m"), Ok(-2700));
        assert_eq!(t("90s"), Ok(90));
        assert_eq!(t("3600"), Ok(3600));
        assert_eq!(t("-120"), Ok(-120));
        assert_eq!(t("+2h 5s"), Ok(7205));
        assert_eq!(t(" 1H 2M 3S "), Ok(3723));
        for bad in [
            "", "-", "abc", "1x", "30m1h", "1h1h", "h", "1.5h", "--5", "1h30", "0", "0m",
        ] {
            assert!(t(bad).is_err(), "{bad:?} parsed");
        }
        assert!(t("99999999h").is_err());
        assert_eq!(parse_amount(What::Messages, "-3"), Ok(-3));
        assert!(parse_amount(What::Messages, "3m").is_err());
    }

    #[test]
    fn a_correction_never_takes_a_total_or_its_day_below_zero() {
        let total = Totals {
            cam_on_secs: 3600,
            cam_off_secs: 0,
            messages: 4,
        };
        let day = Totals {
            cam_on_secs: 600,
            ..Totals::default()
        };
        assert!(check_floor(What::CameraOn, -600, &total, &day).is_ok());
        let e = check_floor(What::CameraOn, -900, &total, &day).unwrap_err();
        assert!(e.contains("today's camera-on time at -5m"), "{e}");
        let e = check_floor(What::Messages, -5, &total, &day).unwrap_err();
        assert!(e.contains("all-time message count at -1"), "{e}");
        assert!(check_floor(What::CameraOff, 60, &total, &day).is_ok());
    }

    #[test]
    fn reasons_are_required_and_bounded() {
        assert!(check_reason("  ").is_err());
        assert!(check_reason(&"x".repeat(201)).is_err());
        assert_eq!(check_reason(" typo "), Ok("typo".into()));
        assert_eq!(What::parse("camera_off"), Ok(What::CameraOff));
        assert!(What::parse("voice").is_err());
        assert_eq!(What::CameraOn.show(-5400), "-1h 30m");
        assert_eq!(What::Messages.show(1), "+1 message");
    }
}
