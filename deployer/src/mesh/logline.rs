//! The lines an Istio sidecar writes and how to tell which concern one plugin.
//!
//! Envoy in a sidecar is started by istio-agent with the log format below, so its lines read
//! `<RFC3339 time>\t<level>\tenvoy <logger> <file:line>\t<message>\tthread=N`; a module's lines
//! have the `wasm` logger and read `wasm log <ns>.<name> <root_id>: <message>`. The agent's own
//! lines are `<time>\t<level>\t<scope>\t<message>`; a module it cannot fetch gives
//! `error in converting the wasm config to local: cannot fetch Wasm module <url>: <reason>`.
use k8s_openapi::jiff::Timestamp;

/// Envoy `--log-format` as istio-agent passes it (spdlog flags: time, level, logger, source
/// file:line, message, thread).
pub const ENVOY_LOG_FORMAT: &str = "%Y-%m-%dT%T.%fZ\t%l\tenvoy %n %g:%#\t%v\tthread=%t";

/// How the agent prefixes a failed module fetch (the rest is the url and the reason).
pub const FETCH_ERROR_PREFIX: &str =
    "error in converting the wasm config to local: cannot fetch Wasm module ";

/// Istio 1.31 and later translate every WasmPlugin into a TrafficExtension, and Envoy's name
/// for the plugin gains this suffix: `<ns>.<name>~istio-translated-wasmplugin` (released Istio
/// versions before that use `<ns>.<name>`). Verbatim from a real sidecar (istio.io/istio
/// v0.0.0-20260827124520-eed52ebb66ad): `wasm log demo.context-logger~istio-translated-wasmplugin: NewHttpContext`.
pub const TRANSLATED_SUFFIX: &str = "~istio-translated-wasmplugin";

/// Whether `word` is Envoy's name for the WasmPlugin `<namespace>.<name>` (`envoy_name`), in
/// either of Istio's naming forms.
pub fn names_plugin(word: &str, envoy_name: &str) -> bool {
    word == envoy_name || word.strip_suffix(TRANSLATED_SUFFIX) == Some(envoy_name)
}

/// What a line says about a plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// The module logged it (`wasm log <ns>.<name> ...`).
    WasmLog,
    /// The agent could not fetch the plugin's module.
    FetchError,
    /// Envoy could not load it (an error or critical line naming `<ns>.<name>`, e.g. a module
    /// whose on_configure refused its pluginConfig).
    LoadError,
}

/// Whether `name` occurs in `text` as a whole name (not inside a longer one).
fn mentions(text: &str, name: &str) -> bool {
    let part = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_');
    text.match_indices(name).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + name.len()..].chars().next();
        !before.is_some_and(part) && !after.is_some_and(part)
    })
}

/// Whether `line` is about the plugin `<namespace>.<name>` with `url`, and how.
pub fn classify(line: &str, envoy_name: &str, url: &str) -> Option<Kind> {
    if let Some(rest) = line.split("wasm log ").nth(1) {
        // The name is a whole word: `demo.ctx` must not match `demo.ctx-other`.
        let word = rest.split([' ', ':']).next().unwrap_or_default();
        if names_plugin(word, envoy_name) {
            return Some(Kind::WasmLog);
        }
    }
    if (line.contains("\terror\t") || line.contains("\tcritical\t"))
        && line.contains("\tenvoy ")
        && mentions(line, envoy_name)
    {
        return Some(Kind::LoadError);
    }
    if let Some(rest) = line.split(FETCH_ERROR_PREFIX).nth(1) {
        let fetched = rest.split(": ").next().unwrap_or_default();
        // Istio accepts urls without a scheme (oci); compare both spellings.
        let bare = |u: &str| u.strip_prefix("oci://").unwrap_or(u).to_string();
        if bare(fetched) == bare(url) {
            return Some(Kind::FetchError);
        }
    }
    None
}

/// The time an Istio-format line starts with, when it has one.
pub fn line_time(line: &str) -> Option<Timestamp> {
    line.split('\t').next()?.trim().parse().ok()
}

/// Istio's time format: RFC 3339 in UTC with microseconds.
pub fn istio_time(at: Timestamp) -> String {
    at.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// An istio-agent line: `<time>\t<level>\t<scope>\t<message>`.
pub fn agent_line(at: Timestamp, level: &str, scope: &str, message: &str) -> String {
    format!("{}\t{level}\t{scope}\t{message}", istio_time(at))
}

/// The agent's message for a module it could not fetch.
pub fn fetch_error(url: &str, reason: &str) -> String {
    format!("{FETCH_ERROR_PREFIX}{url}: {reason}")
}

/// The kubelet's CRI log line that kwok reads back for `kubectl logs`:
/// `<RFC3339Nano time> <stream> F <text>` (F: a full line, not a partial one).
pub fn cri_line(at: Timestamp, stream: &str, text: &str) -> String {
    format!(
        "{} {stream} F {}\n",
        at.strftime("%Y-%m-%dT%H:%M:%S%.9fZ"),
        text.trim_end_matches(['\n', '\r'])
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "oci://127.0.0.1:5000/ctx@sha256:ab";

    #[test]
    fn module_lines_match_the_whole_plugin_name() {
        let line = "2026-01-01T00:00:00.000000Z\tinfo\tenvoy wasm context.cc:1151\twasm log demo.ctx root: NewHttpContext\tthread=20";
        assert_eq!(classify(line, "demo.ctx", URL), Some(Kind::WasmLog));
        assert_eq!(classify(line, "demo.ct", URL), None);
        let root = "\tinfo\tenvoy wasm x:1\twasm log demo.ctx: configured";
        assert_eq!(classify(root, "demo.ctx", URL), Some(Kind::WasmLog));
        assert_eq!(classify(root, "demo.ctx-other", URL), None);
    }

    #[test]
    fn fetch_errors_match_the_url_with_or_without_scheme() {
        let line = agent_line(
            Timestamp::UNIX_EPOCH,
            "error",
            "wasm",
            &fetch_error(
                URL,
                "module downloaded from x has checksum a, which does not match: b",
            ),
        );
        assert_eq!(
            line,
            "1970-01-01T00:00:00.000000Z\terror\twasm\terror in converting the wasm config to local: cannot fetch Wasm module oci://127.0.0.1:5000/ctx@sha256:ab: module downloaded from x has checksum a, which does not match: b"
        );
        assert_eq!(classify(&line, "demo.ctx", URL), Some(Kind::FetchError));
        assert_eq!(
            classify(&line, "demo.ctx", "127.0.0.1:5000/ctx@sha256:ab"),
            Some(Kind::FetchError)
        );
        assert_eq!(classify(&line, "demo.ctx", "oci://other/x"), None);
    }

    #[test]
    fn envoy_errors_naming_the_plugin_are_load_errors() {
        let line = "2026-01-01T00:00:00.000000Z\tcritical\tenvoy wasm wasm.cc:626\tPlugin demo.ctx failed to load\tthread=1";
        assert_eq!(classify(line, "demo.ctx", URL), Some(Kind::LoadError));
        assert_eq!(classify(line, "demo.c", URL), None);
        assert_eq!(classify(line, "emo.ctx", URL), None);
        let info = line.replace("\tcritical\t", "\tinfo\t");
        assert_eq!(classify(&info, "demo.ctx", URL), None);
    }

    #[test]
    fn istio_lines_carry_their_time() {
        let line = agent_line(Timestamp::UNIX_EPOCH, "info", "wasm", "x");
        assert_eq!(line_time(&line), Some(Timestamp::UNIX_EPOCH));
        assert_eq!(line_time("no time here"), None);
    }

    #[test]
    fn cri_lines_are_full_stdout_lines_with_nanoseconds() {
        assert_eq!(
            cri_line(Timestamp::UNIX_EPOCH, "stdout", "hello\n"),
            "1970-01-01T00:00:00.000000000Z stdout F hello\n"
        );
    }
}
