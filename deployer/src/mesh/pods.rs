//! Reading the cluster for the mesh views: the plugin, the pods of its namespace, and their
//! `istio-proxy` logs through the API server (the kubelet's log endpoint, kwok's here).
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, LogParams};

use k8s_openapi::jiff::Timestamp;

use super::{Error, PROXY_CONTAINER, Plugin, PodView};
use crate::cluster::errors::{self, Attempt, Failure};
use crate::cluster::{Cluster, ConnectOptions};

/// The plugin, or `PluginMissing` naming where it was looked for.
pub async fn get_plugin(cluster: &Cluster, namespace: &str, name: &str) -> Result<Plugin, Error> {
    cluster.ensure_crd().await?;
    match cluster.get_plugin(namespace, name).await? {
        Some(object) => Ok(Plugin::from_object(&object)),
        None => Err(Error::PluginMissing {
            context: cluster.context.clone(),
            namespace: namespace.into(),
            name: name.into(),
        }),
    }
}

fn pod_error(
    cluster: &Cluster,
    verb: &'static str,
    namespace: &str,
    err: kube::Error,
) -> crate::cluster::Error {
    errors::map(
        cluster,
        &Attempt {
            verb,
            resource: "pods",
            namespace: Some(namespace),
            name: None,
        },
        Failure::from(err),
    )
}

pub async fn list_pods(cluster: &Cluster, namespace: &str) -> Result<Vec<PodView>, Error> {
    list_matching(cluster, namespace, &ListParams::default()).await
}

/// The pods `plugin` selects (its matchLabels go to the API server, so a periodic listing
/// stays small in a busy namespace).
pub async fn list_selected(cluster: &Cluster, plugin: &Plugin) -> Result<Vec<PodView>, Error> {
    let mut params = ListParams::default();
    if let Some(labels) = plugin.selector.as_ref().filter(|labels| !labels.is_empty()) {
        let selector: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        params = params.labels(&selector.join(","));
    }
    let pods = list_matching(cluster, &plugin.namespace, &params).await?;
    Ok(super::select::select(plugin, &pods).selected)
}

async fn list_matching(
    cluster: &Cluster,
    namespace: &str,
    params: &ListParams,
) -> Result<Vec<PodView>, Error> {
    let api: Api<Pod> = Api::namespaced(cluster.client.clone(), namespace);
    let pods = cluster
        .bounded(async {
            api.list(params)
                .await
                .map_err(|err| pod_error(cluster, "list", namespace, err))
        })
        .await?;
    let mut views: Vec<PodView> = pods.items.iter().map(PodView::from_pod).collect();
    views.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(views)
}

/// A client for long-lived log streams: the same kubeconfig context as `Cluster::connect`
/// but without its read timeout, which would cut `-f` after a quiet half minute.
pub async fn streaming_client(options: &ConnectOptions) -> Result<kube::Client, Error> {
    let mut loaded = crate::cluster::connect::Loaded::load(options).await?;
    loaded.config.read_timeout = None;
    Ok(loaded.client()?)
}

/// Log requests open at once by default (`--max-log-requests`): each is a connection (a file
/// descriptor), so 50 stays far below the usual `ulimit -n` of 1024 (and 256 on macOS) while
/// reading a thousand pods' logs in about the time of a few dozen.
pub const MAX_LOG_REQUESTS: u32 = 50;

/// How much of a log to read.
#[derive(Debug, Clone, Default)]
pub struct LogWindow {
    pub follow: bool,
    pub since_seconds: Option<i64>,
    /// Lines written at or after this time (sent in whole seconds, rounded down).
    pub since_time: Option<Timestamp>,
    pub tail_lines: Option<i64>,
    /// Prefix each line with the time it was written (RFC3339Nano and a space), as
    /// `kubectl logs --timestamps` does: how a reader resumes a stream without repeating lines.
    pub timestamps: bool,
}

/// Rounds down to a whole second. The API takes `sinceTime` in whole seconds and kube rounds
/// half up, which could skip the lines of the last half second; rounding down first never
/// loses a line (the reader drops the ones it already has).
pub fn whole_second(at: Timestamp) -> Timestamp {
    Timestamp::from_second(at.as_second()).unwrap_or(at)
}

/// The `istio-proxy` log of one pod as a stream of bytes (lines end with `\n`).
pub async fn proxy_log(
    client: &kube::Client,
    namespace: &str,
    pod: &str,
    window: &LogWindow,
) -> Result<impl futures::AsyncBufRead + use<>, Error> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let params = LogParams {
        container: Some(PROXY_CONTAINER.into()),
        follow: window.follow,
        since_seconds: window.since_seconds,
        since_time: window.since_time.map(whole_second),
        tail_lines: window.tail_lines,
        timestamps: window.timestamps,
        ..Default::default()
    };
    api.log_stream(pod, &params)
        .await
        .map_err(|err| Error::PodLogs {
            namespace: namespace.into(),
            pod: pod.into(),
            status: match &err {
                kube::Error::Api(status) => Some(status.code),
                _ => None,
            },
            message: match err {
                kube::Error::Api(status) => format!(
                    "cannot read the {PROXY_CONTAINER} log (HTTP {}): {}",
                    status.code, status.message
                ),
                other => format!(
                    "cannot read the {PROXY_CONTAINER} log: {}",
                    describe_failure(&other)
                ),
            },
        })
}

/// An error with its causes, so "client error (Connect)" says what failed underneath; when
/// the process ran out of file descriptors (every log stream is a connection) it says so, with
/// what to do, instead of the bare connect error.
pub fn describe_failure(err: &(dyn std::error::Error + 'static)) -> String {
    let out_of_files = crate::error_chain::causes(err).any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| matches!(io.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)))
    });
    let mut message = crate::error_chain::flatten(err);
    if out_of_files || message.contains("Too many open files") {
        message = format!("{TOO_MANY_OPEN_FILES} ({message})");
    }
    message
}

/// The start of every message about running out of file descriptors.
pub const TOO_MANY_OPEN_FILES: &str = "too many open files: every log stream is a connection, so raise the limit (`ulimit -n`) or lower --max-log-requests";

/// Parses `--since` exactly as `kubectl logs --since` does: Go's `time.ParseDuration` grammar
/// (`300ms`, `1.5h`, `2h45m`, `+5m`; units ns, us, µs, ms, s, m, h; at most ~292 years), then
/// rounded to whole seconds like kubectl (`Duration.Round(time.Second)`: `500ms` is 1 s).
/// `0` means no window (kubectl sends nothing), so it maps to 0 and the caller drops it.
/// kubectl refuses a negative value, and the API server a window that rounds to 0 s; both are
/// refused here before any request.
pub fn parse_duration(text: &str) -> Result<i64, String> {
    let nanos = parse_go_duration(text)?;
    if nanos == 0 {
        return Ok(0);
    }
    const SECOND: i128 = 1_000_000_000;
    // Go rounds half away from zero; a Go Duration's range keeps this from overflowing.
    let seconds = (nanos.abs() + SECOND / 2) / SECOND * nanos.signum();
    if seconds < 0 {
        return Err(format!(
            "{text:?} is negative: --since must be greater than 0"
        ));
    }
    if seconds == 0 {
        return Err(format!(
            "{text:?} rounds to 0 seconds (the API server counts whole seconds): use at least 500ms"
        ));
    }
    i64::try_from(seconds).map_err(|_| format!("{text:?} is out of range"))
}

/// Go's `time.ParseDuration` (time/format.go), in nanoseconds, with its overflow rules: a
/// total beyond a signed 64-bit count of nanoseconds (2562047h47m16.854775807s) is an error.
fn parse_go_duration(text: &str) -> Result<i128, String> {
    const LIMIT: u128 = 1 << 63;
    let invalid = |why: &str| {
        format!(
            "invalid duration {text:?}: {why} (Go duration syntax as kubectl takes it, e.g. 30s, \
             1.5h, 2h45m, 500ms; units ns, us, ms, s, m, h)"
        )
    };
    let out_of_range = || invalid("out of range: at most 2562047h47m16.854775807s");
    let mut rest = text;
    let mut negative = false;
    if let Some(sign) = rest.chars().next().filter(|c| *c == '-' || *c == '+') {
        negative = sign == '-';
        rest = &rest[1..];
    }
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(invalid("empty"));
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        if !rest.starts_with(|c: char| c == '.' || c.is_ascii_digit()) {
            return Err(invalid("expected a number"));
        }
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (whole, after) = rest.split_at(digits);
        rest = after;
        // Go's leadingInt: more than 2^63 is an error, not a wrap-around.
        let mut value: u128 = 0;
        for digit in whole.bytes() {
            value = value * 10 + u128::from(digit - b'0');
            if value > LIMIT {
                return Err(out_of_range());
            }
        }
        // Go's leadingFraction: digits past what fits stop adding precision, silently.
        let (mut fraction, mut scale, mut has_fraction) = (0u128, 1f64, false);
        if let Some(after_point) = rest.strip_prefix('.') {
            let digits = after_point
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(after_point.len());
            has_fraction = digits > 0;
            let mut overflow = false;
            for digit in after_point[..digits].bytes() {
                if overflow || fraction > (LIMIT - 1) / 10 {
                    overflow = true;
                    continue;
                }
                let next = fraction * 10 + u128::from(digit - b'0');
                if next > LIMIT {
                    overflow = true;
                    continue;
                }
                fraction = next;
                scale *= 10.0;
            }
            rest = &after_point[digits..];
        }
        if whole.is_empty() && !has_fraction {
            return Err(invalid("no digits"));
        }
        let unit_len = rest
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (unit, after) = rest.split_at(unit_len);
        rest = after;
        let unit: u128 = match unit {
            "" => return Err(invalid("missing unit")),
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            other => return Err(invalid(&format!("unknown unit {other:?}"))),
        };
        if value > LIMIT / unit {
            return Err(out_of_range());
        }
        value *= unit;
        if fraction > 0 {
            // As Go: float64 keeps fractions of an hour nanosecond-accurate.
            value += (fraction as f64 * (unit as f64 / scale)) as u128;
            if value > LIMIT {
                return Err(out_of_range());
            }
        }
        total += value;
        if total > LIMIT {
            return Err(out_of_range());
        }
    }
    if negative {
        return Ok(-(total as i128));
    }
    if total > LIMIT - 1 {
        return Err(out_of_range());
    }
    Ok(total as i128)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_like_kubectl() {
        for (text, seconds) in [
            ("30s", 30),
            ("1h30m", 5400),
            ("1.5h", 5400),
            ("500ms", 1),
            ("1499ms", 1),
            ("1500ms", 2),
            ("+5m", 300),
            ("2h45m0.5s", 9901),
            (".5m", 30),
            ("1.m", 60),
            ("90\u{b5}s1s", 1),
            ("2562047h", 2562047 * 3600),
            ("0", 0),
            ("0s", 0),
            ("-0", 0),
        ] {
            assert_eq!(parse_duration(text), Ok(seconds), "{text}");
        }
        for text in [
            "5", "5d", "", "-", ".s", "1.5", "h", "1h-5m", "-5m", "400ms", "1e3s", "5 m",
        ] {
            assert!(parse_duration(text).is_err(), "{text} accepted");
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
        ] {
            let err = parse_duration(text).unwrap_err();
            assert!(err.contains("out of range"), "{text}: {err}");
        }
        assert_eq!(
            parse_go_duration("2562047h47m16.854775807s"),
            Ok(i64::MAX as i128)
        );
        assert_eq!(
            parse_go_duration("-2562047h47m16.854775808s"),
            Ok(i64::MIN as i128)
        );
    }
}
