//! How long the CLI waits for a registry. A registry that accepts the connection and never
//! answers must not hang a command: every request has a bound (`--timeout`, default 30 s),
//! and retries multiply it by at most `--attempts`, so the worst case is visible up front:
//! `attempts x timeout + backoff` (defaults: 4 x 30 s + 3.5 s).
use std::time::Duration;

use super::Error;

/// Default bound of one registry request: the wait for its answer, and the longest pause
/// while a body streams (a 100 MB blob on a slow link keeps going as long as bytes flow).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Connecting takes milliseconds on a LAN; a dead address should not cost a whole timeout.
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub fn connect_timeout(request_timeout: Duration) -> Duration {
    request_timeout.min(MAX_CONNECT_TIMEOUT)
}

/// `30 s`, `1.5 s`: how errors and help text show a timeout.
pub fn seconds(duration: Duration) -> String {
    let secs = duration.as_secs_f64();
    if secs.fract() == 0.0 {
        format!("{secs:.0} s")
    } else {
        format!("{secs:.1} s")
    }
}

/// Fills in how long a timed-out request took in all, retries included.
pub(super) fn with_elapsed(error: Error, elapsed: Duration) -> Error {
    match error {
        Error::TimedOut {
            registry,
            timeout,
            attempts,
            ..
        } => Error::TimedOut {
            registry,
            timeout,
            attempts,
            elapsed: seconds(Duration::from_millis(
                elapsed.as_millis() as u64 / 100 * 100,
            )),
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_seconds() {
        assert_eq!(seconds(Duration::from_secs(30)), "30 s");
        assert_eq!(seconds(Duration::from_millis(1500)), "1.5 s");
        assert_eq!(
            connect_timeout(Duration::from_secs(2)),
            Duration::from_secs(2)
        );
        assert_eq!(
            connect_timeout(Duration::from_secs(60)),
            MAX_CONNECT_TIMEOUT
        );
    }

    #[test]
    fn the_total_is_shown() {
        let error = Error::TimedOut {
            registry: "127.0.0.1:5000".into(),
            timeout: "2 s".into(),
            attempts: 2,
            elapsed: String::new(),
        };
        let text = with_elapsed(error, Duration::from_millis(4567)).to_string();
        assert!(text.contains("127.0.0.1:5000"), "{text}");
        assert!(text.contains("within 2 s"), "{text}");
        assert!(text.contains("2 attempt(s), 4.5 s in all"), "{text}");
    }
}
