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

/// The plugin name in a module's line (`wasm log <plugin name> [root_id]: message`): Envoy's
/// name for the plugin, as Istio configured it.
pub fn logged_plugin_name(line: &str) -> Option<&str> {
    let rest = line.split("wasm log ").nth(1)?;
    rest.split([' ', ':'])
        .next()
        .filter(|word| !word.is_empty())
}

/// Tells which sidecar lines concern one plugin.
#[derive(Debug, Clone)]
pub struct Matcher {
    /// `<namespace>.<name>`: Envoy's name for it, in either of Istio's forms.
    envoy_name: String,
    /// `pluginName`: the module's root context logs as `wasm log <root_id>: ...`.
    root_id: String,
    /// The url the agent fetches (`oci://` added when it has no scheme).
    url: String,
    /// A TrafficExtension: Envoy's name is exactly `<ns>.<name>`; the translated form
    /// `<ns>.<name>~istio-translated-wasmplugin` is a WasmPlugin of the same name (both exist
    /// while `deployer migrate` runs), so it is not this plugin's.
    exact: bool,
    /// A Lua TrafficExtension: Envoy's Lua filter logs `script log: <message>` under the `lua`
    /// logger without naming the extension, so every such line of a selected pod is taken.
    lua: bool,
}

impl Matcher {
    pub fn new(envoy_name: &str, root_id: &str, url: &str) -> Self {
        Matcher {
            envoy_name: envoy_name.into(),
            root_id: root_id.into(),
            url: url.into(),
            exact: false,
            lua: false,
        }
    }

    /// Matches only Envoy's name for a native TrafficExtension (`<ns>.<name>`).
    pub fn traffic_extension(envoy_name: &str, root_id: &str, url: &str) -> Self {
        Matcher {
            exact: true,
            ..Self::new(envoy_name, root_id, url)
        }
    }

    pub fn for_plugin(plugin: &crate::mesh::Plugin) -> Self {
        // A Lua TrafficExtension has no url: match no fetch error.
        let url = if plugin.url.is_empty() {
            String::new()
        } else {
            plugin.fetch_url()
        };
        match plugin.kind {
            crate::plugin::spec::Kind::WasmPlugin if plugin.shares_name => Matcher {
                envoy_name: format!("{}{TRANSLATED_SUFFIX}", plugin.envoy_name()),
                exact: true,
                ..Self::new(&plugin.envoy_name(), &plugin.plugin_name, &url)
            },
            crate::plugin::spec::Kind::WasmPlugin => {
                Self::new(&plugin.envoy_name(), &plugin.plugin_name, &url)
            }
            crate::plugin::spec::Kind::TrafficExtension => Matcher {
                lua: plugin.is_lua(),
                ..Self::traffic_extension(&plugin.envoy_name(), &plugin.plugin_name, &url)
            },
        }
    }

    fn names(&self, word: &str) -> bool {
        if self.exact {
            word == self.envoy_name
        } else {
            names_plugin(word, &self.envoy_name)
        }
    }

    /// Whether `line` is about the plugin, and how.
    pub fn classify(&self, line: &str) -> Option<Kind> {
        if self.lua && line.contains("\tenvoy lua ") && line.contains("script log: ") {
            return Some(Kind::WasmLog);
        }
        let logged = logged_plugin_name(line);
        // The name is a whole word: `demo.ctx` must not match `demo.ctx-other`.
        if logged.is_some_and(|word| self.names(word)) {
            return Some(Kind::WasmLog);
        }
        let failed = line.contains("\terror\t") || line.contains("\tcritical\t");
        let other_kind = self.exact
            && line.contains(&format!("{}{TRANSLATED_SUFFIX}", self.envoy_name))
            && !line
                .replace(&format!("{}{TRANSLATED_SUFFIX}", self.envoy_name), "")
                .contains(&self.envoy_name);
        if failed && line.contains("\tenvoy ") && mentions(line, &self.envoy_name) && !other_kind {
            return Some(Kind::LoadError);
        }
        // The module's root context refusing its configuration names no plugin, only the
        // root_id: `wasm log context_logger: ...: invalid plugin configuration: ...`.
        if failed
            && !self.root_id.is_empty()
            && logged == Some(self.root_id.as_str())
            && line.contains(&format!("wasm log {}:", self.root_id))
        {
            return Some(Kind::LoadError);
        }
        if let Some(rest) = line.split(FETCH_ERROR_PREFIX).nth(1) {
            let fetched = rest.split(": ").next().unwrap_or_default();
            // Istio accepts urls without a scheme (oci); compare both spellings. Some errors
            // (a missing pull secret) name the resource instead of the url.
            let bare = |u: &str| u.strip_prefix("oci://").unwrap_or(u).to_string();
            if (!self.url.is_empty() && bare(fetched) == bare(&self.url)) || self.names(fetched) {
                return Some(Kind::FetchError);
            }
        }
        None
    }
}

/// Whether `line` continues the entry above it: Envoy and the agent start every entry with
/// its time, and a message with a newline goes on in lines that do not (e.g. a rejected
/// listener's `\tthread=N`).
pub fn is_continuation(line: &str) -> bool {
    !line.is_empty() && line_time(line).is_none()
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
        assert_eq!(
            Matcher::new("demo.ctx", "root", URL).classify(line),
            Some(Kind::WasmLog)
        );
        assert_eq!(Matcher::new("demo.ct", "root", URL).classify(line), None);
        let root = "\tinfo\tenvoy wasm x:1\twasm log demo.ctx: configured";
        assert_eq!(
            Matcher::new("demo.ctx", "root", URL).classify(root),
            Some(Kind::WasmLog)
        );
        assert_eq!(
            Matcher::new("demo.ctx-other", "root", URL).classify(root),
            None
        );
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
        assert_eq!(
            Matcher::new("demo.ctx", "root", URL).classify(&line),
            Some(Kind::FetchError)
        );
        assert_eq!(
            Matcher::new("demo.ctx", "root", "127.0.0.1:5000/ctx@sha256:ab").classify(&line),
            Some(Kind::FetchError)
        );
        assert_eq!(
            Matcher::new("demo.ctx", "root", "oci://other/x").classify(&line),
            None
        );
    }

    #[test]
    fn envoy_errors_naming_the_plugin_are_load_errors() {
        let line = "2026-01-01T00:00:00.000000Z\tcritical\tenvoy wasm wasm.cc:626\tPlugin demo.ctx failed to load\tthread=1";
        assert_eq!(
            Matcher::new("demo.ctx", "root", URL).classify(line),
            Some(Kind::LoadError)
        );
        assert_eq!(Matcher::new("demo.c", "root", URL).classify(line), None);
        assert_eq!(Matcher::new("emo.ctx", "root", URL).classify(line), None);
        let info = line.replace("\tcritical\t", "\tinfo\t");
        assert_eq!(Matcher::new("demo.ctx", "root", URL).classify(&info), None);
    }

    #[test]
    fn a_traffic_extension_is_only_its_native_name() {
        // Verbatim forms from a real sidecar while `deployer migrate` runs: the WasmPlugin
        // (translated) and the TrafficExtension of the same name side by side.
        let te = Matcher::traffic_extension("demo.ctx", "", "oci://r/x:1");
        let native = "2026-11-29T17:00:00.000000Z\tinfo\tenvoy wasm context.cc:1151\twasm log demo.ctx: NewHttpContext\tthread=20";
        let translated = "2026-11-29T17:00:00.000000Z\tinfo\tenvoy wasm context.cc:1151\twasm log demo.ctx~istio-translated-wasmplugin: NewHttpContext\tthread=20";
        assert_eq!(te.classify(native), Some(Kind::WasmLog));
        assert_eq!(te.classify(translated), None);
        let wp = Matcher::new("demo.ctx", "", "oci://r/x:1");
        assert_eq!(wp.classify(translated), Some(Kind::WasmLog));
        let lua = Matcher {
            lua: true,
            ..Matcher::traffic_extension("demo.ctx", "", "")
        };
        let other = format!("x\terror\twasm\t{FETCH_ERROR_PREFIX}oci://r/y:1: boom");
        assert_eq!(lua.classify(&other), None);
        // Verbatim from a real sidecar running a Lua TrafficExtension.
        let script = "2026-11-29T17:56:43.910419Z\tinfo\tenvoy lua source/extensions/filters/common/lua/lua.cc:28\tscript log: lua saw a response\tthread=23008";
        assert_eq!(lua.classify(script), Some(Kind::WasmLog));
        assert_eq!(te.classify(script), None);
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

    /// Lines captured verbatim from a real sidecar: istio-agent and istiod built from
    /// istio.io/istio v0.0.0-20260827124520-eed52ebb66ad (1.31-dev), upstream Envoy 1.40.0,
    /// WasmPlugin demo/ctx with pluginName context_logger (local stack, 2026-11-29).
    mod real_istio {
        use super::*;

        const NEW_HTTP_CONTEXT: &str = "2026-11-29T17:15:44.506482Z\tinfo\tenvoy wasm source/extensions/common/wasm/context.cc:1151\twasm log demo.ctx~istio-translated-wasmplugin context_logger: NewHttpContext\tthread=8123";
        const CHECKSUM: &str = "2026-11-29T17:15:49.208914Z\terror\twasm\terror in converting the wasm config to local: cannot fetch Wasm module oci://127.0.0.1:43217/demo/ctx:v1: module downloaded from oci://127.0.0.1:43217/demo/ctx:v1 has checksum ba0934b317e59d0dcbb07f8243399f2a08054e5415fde5f208b8baa4f44f087f, which does not match: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa. applying deny RBAC filter";
        const UNREACHABLE: &str = "2026-11-29T17:16:09.653338Z\terror\twasm\terror in converting the wasm config to local: cannot fetch Wasm module oci://127.0.0.1:1/demo/ctx:v1: could not fetch Wasm OCI image: could not fetch manifest: Get \"https://127.0.0.1:1/v2/\": dial tcp 127.0.0.1:1: connect: connection refused; Get \"http://127.0.0.1:1/v2/\": dial tcp 127.0.0.1:1: connect: connection refused. applying deny RBAC filter";
        const MODULE_REFUSED: &str = "2026-11-29T17:15:56.712834Z\terror\tenvoy wasm source/extensions/common/wasm/context.cc:1157\twasm log context_logger: context-logger: invalid plugin configuration: unknown field \"bogus\", expected one of `log`, `level`, `prefix`, `headers`\tthread=8115";
        const FAILED_TO_LOAD: &str = "2026-11-29T17:15:56.713576Z\tcritical\tenvoy wasm source/extensions/common/wasm/wasm.cc:626\tPlugin demo.ctx~istio-translated-wasmplugin failed to load\tthread=8115";
        const FAIL_CLOSED: &str = "2026-11-29T17:15:56.713630Z\tcritical\tenvoy wasm source/extensions/common/wasm/wasm.cc:479\tPlugin configured to fail closed failed to load\tthread=8115";
        const LISTENER_REJECTED: &str = "2026-11-29T17:16:09.657443Z\twarning\tenvoy config source/extensions/config_subscription/grpc/delta_subscription_state.cc:282\tdelta config for type.googleapis.com/envoy.config.listener.v3.Listener rejected: Error adding/updating listener(s) 10.244.0.1_8080: Unable to create Wasm plugin demo.ctx~istio-translated-wasmplugin";
        const CONTINUATION: &str = "\tthread=8115";
        const MISSING_PULL_SECRET: &str = "2026-11-29T17:28:11.910352Z\terror\twasm\terror in converting the wasm config to local: cannot fetch Wasm module pull-secret-missing-2904-0-ec4.ctx~istio-translated-wasmplugin: missing image pulling secret. applying deny RBAC filter";
        const AGENT_READY: &str = "2026-11-29T17:14:18.411917Z\tinfo\tEnvoy proxy is ready";

        fn ctx(url: &str) -> Matcher {
            Matcher::new("demo.ctx", "context_logger", url)
        }

        #[test]
        fn the_translated_name_is_this_plugins() {
            assert_eq!(ctx(URL).classify(NEW_HTTP_CONTEXT), Some(Kind::WasmLog));
            assert_eq!(
                logged_plugin_name(NEW_HTTP_CONTEXT),
                Some("demo.ctx~istio-translated-wasmplugin")
            );
            assert_eq!(
                Matcher::new("demo.ct", "context_logger", URL).classify(NEW_HTTP_CONTEXT),
                None
            );
            assert_eq!(
                Matcher::new("demo.ctx~istio", "x", URL).classify(NEW_HTTP_CONTEXT),
                None
            );
        }

        #[test]
        fn fetch_errors_end_with_the_fallback_sentence() {
            let tag = "oci://127.0.0.1:43217/demo/ctx:v1";
            assert_eq!(ctx(tag).classify(CHECKSUM), Some(Kind::FetchError));
            assert!(CHECKSUM.ends_with(". applying deny RBAC filter"));
            assert_eq!(
                ctx("127.0.0.1:1/demo/ctx:v1").classify(UNREACHABLE),
                Some(Kind::FetchError)
            );
            assert_eq!(ctx(tag).classify(UNREACHABLE), None);
            // A missing imagePullSecret names the resource, not the url.
            let plugin = Matcher::new("pull-secret-missing-2904-0-ec4.ctx", "context_logger", tag);
            assert_eq!(plugin.classify(MISSING_PULL_SECRET), Some(Kind::FetchError));
            assert_eq!(ctx(tag).classify(MISSING_PULL_SECRET), None);
        }

        #[test]
        fn a_refused_configuration_is_a_load_error_with_the_modules_reason() {
            assert_eq!(ctx(URL).classify(MODULE_REFUSED), Some(Kind::LoadError));
            // Another plugin's root_id: not ours.
            assert_eq!(
                Matcher::new("demo.ctx", "other", URL).classify(MODULE_REFUSED),
                None
            );
            assert_eq!(ctx(URL).classify(FAILED_TO_LOAD), Some(Kind::LoadError));
            assert_eq!(ctx(URL).classify(FAIL_CLOSED), None);
            // A warning, not an error: shown with --all only.
            assert_eq!(ctx(URL).classify(LISTENER_REJECTED), None);
        }

        #[test]
        fn continuation_lines_have_no_time() {
            assert!(is_continuation(CONTINUATION));
            for line in [NEW_HTTP_CONTEXT, CHECKSUM, LISTENER_REJECTED, AGENT_READY] {
                assert!(!is_continuation(line), "{line}");
            }
            assert_eq!(ctx(URL).classify(AGENT_READY), None);
        }
    }
}
