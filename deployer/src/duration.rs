//! The one syntax of every time flag (`--since`, `--timeout`, `--ready-timeout`,
//! `--retry-backoff`): Go's `time.ParseDuration`, as kubectl takes `--since` and
//! `--request-timeout` (`30s`, `1.5h`, `2h45m`, `500ms`; units ns, us/µs, ms, s, m, h; a bare
//! `0`). Each `<number><unit>` part is read by jiff's duration parser and the parts are summed
//! with jiff's checked arithmetic; only the Go-specific shape around them is checked here: no
//! spaces, no words, no ISO 8601, no days (a day is not always 24 h), parts in any order, and
//! Go's bound (a signed 64-bit count of nanoseconds, about 292 years), so a huge value is an
//! error, never an overflow.
use jiff::SignedDuration;

const UNITS: &str = "units ns, us, ms, s, m, h";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("invalid duration {text:?}: {why} (e.g. 30s, 1.5h, 2h45m, 500ms; {UNITS})")]
    Syntax { text: String, why: String },
    #[error("invalid duration {text:?}: out of range: at most 2562047h47m16.854775807s")]
    OutOfRange { text: String },
    #[error("{text:?} is negative: it must be greater than 0")]
    Negative { text: String },
    #[error("{text:?} is zero: it must be greater than 0")]
    Zero { text: String },
    #[error(
        "{text:?} rounds to 0 seconds (the API server counts whole seconds): use at least 500ms"
    )]
    RoundsToZero { text: String },
}

/// Go's `time.ParseDuration`: a signed duration (`-5m` is allowed here; flags refuse it).
pub fn parse(text: &str) -> Result<SignedDuration, Error> {
    let syntax = |why: &str| Error::Syntax {
        text: text.to_string(),
        why: why.to_string(),
    };
    let out_of_range = || Error::OutOfRange {
        text: text.to_string(),
    };
    let (negative, rest) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    if rest == "0" {
        return Ok(SignedDuration::ZERO);
    }
    if rest.is_empty() {
        return Err(syntax("empty"));
    }
    let mut total = SignedDuration::ZERO;
    let mut rest = rest;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(number_len);
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        rest = after;
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if number.matches('.').count() > 1 || (whole.is_empty() && fraction.is_empty()) {
            return Err(syntax("expected a number"));
        }
        let unit = match unit {
            "" => {
                return Err(syntax(&format!(
                    "{number} has no unit (say {number}s for seconds)"
                )));
            }
            "ns" | "us" | "ms" | "s" | "m" | "h" => unit,
            // U+00B5 (micro sign) and U+03BC (Greek mu), as Go takes both.
            "\u{b5}s" | "\u{3bc}s" => "us",
            other => return Err(syntax(&format!("unknown unit {other:?}"))),
        };
        // jiff reads `1.5h` but not Go's `.5h` and `1.h`.
        let whole = if whole.is_empty() { "0" } else { whole };
        let part = if fraction.is_empty() {
            format!("{whole}{unit}")
        } else {
            format!("{whole}.{fraction}{unit}")
        };
        // The shape is valid, so jiff refusing a part means a number too large for it.
        let part: SignedDuration = part.parse().map_err(|_| out_of_range())?;
        total = total.checked_add(part).ok_or_else(out_of_range)?;
    }
    if negative {
        total = -total;
    }
    // Go's bound: the kubectl behind these flags keeps durations in int64 nanoseconds.
    if i64::try_from(total.as_nanos()).is_err() {
        return Err(out_of_range());
    }
    Ok(total)
}

/// A positive duration, for timeouts and intervals: the value parser of those flags (clap
/// names the flag in front of the error).
pub fn positive(text: &str) -> Result<std::time::Duration, Error> {
    let duration = parse(text)?;
    if duration.is_negative() {
        return Err(Error::Negative {
            text: text.to_string(),
        });
    }
    if duration.is_zero() {
        return Err(Error::Zero {
            text: text.to_string(),
        });
    }
    Ok(duration.unsigned_abs())
}

/// A duration as the flags take it (`30s`, `1h30m`, `1.5ms`), for messages that name one.
pub fn format(duration: std::time::Duration) -> String {
    use jiff::fmt::friendly::{Designator, Spacing, SpanPrinter};
    SpanPrinter::new()
        .designator(Designator::Compact)
        .spacing(Spacing::None)
        .unsigned_duration_to_string(&duration)
}

/// `--since` as `kubectl logs --since` takes it: a duration rounded to whole seconds like
/// kubectl (`Duration.Round(time.Second)`: `500ms` is 1 s). `0` means no window (kubectl sends
/// nothing), so it maps to 0 and the caller drops it. kubectl refuses a negative value, and
/// the API server a window that rounds to 0 s; both are refused here before any request.
pub fn since_seconds(text: &str) -> Result<i64, Error> {
    let duration = parse(text)?;
    if duration.is_zero() {
        return Ok(0);
    }
    if duration.is_negative() {
        return Err(Error::Negative {
            text: text.to_string(),
        });
    }
    match round_to_seconds(duration) {
        0 => Err(Error::RoundsToZero {
            text: text.to_string(),
        }),
        seconds => Ok(seconds),
    }
}

/// Whole seconds, rounded as Go's `Duration.Round(time.Second)` (half away from zero): what
/// kubectl sends for `--since`.
pub fn round_to_seconds(duration: SignedDuration) -> i64 {
    let nanos = duration.as_nanos();
    const SECOND: i128 = 1_000_000_000;
    let seconds = (nanos.abs() + SECOND / 2) / SECOND * nanos.signum();
    // Within Go's bound (checked by `parse`), whole seconds always fit.
    i64::try_from(seconds).unwrap_or(if seconds < 0 { i64::MIN } else { i64::MAX })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nanos(text: &str) -> Result<i128, Error> {
        parse(text).map(|duration| duration.as_nanos())
    }

    #[test]
    fn go_durations() {
        const S: i128 = 1_000_000_000;
        for (text, expected) in [
            ("30s", 30 * S),
            ("1h30m", 5400 * S),
            ("1.5h", 5400 * S),
            ("500ms", S / 2),
            ("+5m", 300 * S),
            ("-5m", -300 * S),
            ("2h45m0.5s", 9900 * S + S / 2),
            (".5m", 30 * S),
            ("1.m", 60 * S),
            ("1.5h30m", 7200 * S),
            ("90\u{b5}s1s", S + 90_000),
            ("90\u{3bc}s", 90_000),
            ("3us", 3000),
            ("7ns", 7),
            ("0", 0),
            ("-0", 0),
            ("0s", 0),
            ("2562047h47m16.854775807s", i64::MAX as i128),
            ("-2562047h47m16.854775808s", i64::MIN as i128),
        ] {
            assert_eq!(nanos(text), Ok(expected), "{text}");
        }
    }

    #[test]
    fn not_go_durations() {
        for (text, says) in [
            ("", "empty"),
            ("-", "empty"),
            ("5", "no unit"),
            ("1.5", "no unit"),
            ("5d", "unknown unit"),
            ("5 m", "unknown unit"),
            ("1 hour", "unknown unit"),
            ("PT5M", "expected a number"),
            ("h", "expected a number"),
            (".s", "expected a number"),
            ("1..5s", "expected a number"),
            ("1h-5m", "unknown unit"),
            ("1e3s", "unknown unit"),
            ("5m ago", "unknown unit"),
        ] {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.contains(says), "{text}: {err}");
        }
    }

    #[test]
    fn huge_durations_are_an_error_not_a_panic() {
        for text in [
            "9000000000000000h",
            "2562048h",
            "9223372036854775808ns",
            "99999999999999999999999s",
            "2562047h47m16.854775808s",
            "9223372036854775807h9223372036854775807h",
        ] {
            assert_eq!(
                parse(text),
                Err(Error::OutOfRange { text: text.into() }),
                "{text}"
            );
        }
    }

    #[test]
    fn flags_take_positive_durations() {
        assert_eq!(positive("1.5s"), Ok(std::time::Duration::from_millis(1500)));
        let zero = positive("0s").unwrap_err().to_string();
        assert!(zero.contains("must be greater than 0"), "{zero}");
        let negative = positive("-1s").unwrap_err().to_string();
        assert!(negative.contains("negative"), "{negative}");
    }

    #[test]
    fn since_is_kubectls() {
        for (text, seconds) in [("0", 0), ("-0", 0), ("0s", 0), ("500ms", 1), ("1.5h", 5400)] {
            assert_eq!(since_seconds(text), Ok(seconds), "{text}");
        }
        for (text, says) in [
            ("-5m", "greater than 0"),
            ("400ms", "rounds to 0 seconds"),
            ("5d", "unknown unit"),
            ("9000000000000000h", "out of range"),
        ] {
            let err = since_seconds(text).unwrap_err().to_string();
            assert!(err.contains(says), "{text}: {err}");
        }
    }

    #[test]
    fn messages_say_durations_as_flags_take_them() {
        for text in ["30s", "1h30m", "1ms", "2m"] {
            assert_eq!(format(positive(text).unwrap()), text);
        }
    }

    #[test]
    fn rounding_to_seconds_is_gos() {
        for (text, seconds) in [
            ("500ms", 1),
            ("1499ms", 1),
            ("1500ms", 2),
            ("2h45m0.5s", 9901),
            ("90\u{b5}s1s", 1),
            ("-1500ms", -2),
        ] {
            assert_eq!(round_to_seconds(parse(text).unwrap()), seconds, "{text}");
        }
    }
}
