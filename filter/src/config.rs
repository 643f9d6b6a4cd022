//! Plugin configuration: the JSON object Envoy (`configuration`) or Istio (`pluginConfig`)
//! hands to `proxy_on_configure`, checked once so the per-stream path never re-validates.

use serde::Deserialize;

/// Longest accepted `prefix`, in bytes: a prefix is a tag, not a payload.
pub const MAX_PREFIX_LEN: usize = 128;
/// Most request headers one line may carry.
pub const MAX_HEADERS: usize = 8;
/// Longest accepted header name, in bytes.
pub const MAX_HEADER_NAME_LEN: usize = 64;

/// The configuration as written by the user. Every field is optional; unknown fields are errors
/// so a typo (`"levle"`) is refused instead of silently ignored.
#[derive(Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct RawConfig {
    /// `false` silences the filter (the module stays loaded; useful to measure its bare cost).
    pub log: Option<bool>,
    /// Envoy log level of the line: trace, debug, info (default), warn, error, critical.
    pub level: Option<String>,
    /// Text put in front of `NewHttpContext` / `NewTcpContext`.
    pub prefix: Option<String>,
    /// Request headers appended to each `NewHttpContext` line as ` name=value`
    /// (`-` when absent), e.g. `[":path", ":authority"]`.
    pub headers: Option<Vec<String>>,
}

/// Log levels of the proxy-wasm ABI, numbered as `proxy_log` expects them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Level {
    Trace = 0,
    Debug = 1,
    Info = 2,
    Warn = 3,
    Error = 4,
    Critical = 5,
}

impl Level {
    const NAMES: [(&'static str, Level); 6] = [
        ("trace", Level::Trace),
        ("debug", Level::Debug),
        ("info", Level::Info),
        ("warn", Level::Warn),
        ("error", Level::Error),
        ("critical", Level::Critical),
    ];

    fn parse(name: &str) -> Option<Level> {
        Self::NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|&(_, level)| level)
    }
}

/// A checked configuration, ready for the per-stream path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub enabled: bool,
    pub level: Level,
    pub prefix: String,
    /// Lower-case header names, as Envoy stores them.
    pub headers: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            enabled: true,
            level: Level::Info,
            prefix: String::new(),
            headers: Vec::new(),
        }
    }
}

/// Why a configuration was refused; the text is what the operator sees in Envoy's log.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error(
        "not valid JSON for this filter: {message} (expected an object with optional fields log, level, prefix, headers)"
    )]
    Json { message: String },
    #[error(
        "field `level`: unknown level {value:?} (use one of trace, debug, info, warn, error, critical)"
    )]
    Level { value: String },
    #[error("field `prefix`: {len} bytes is too long (at most {MAX_PREFIX_LEN})")]
    PrefixTooLong { len: usize },
    #[error("field `prefix`: control characters (newline, tab, ...) are not allowed")]
    PrefixControl,
    #[error("field `headers`: {count} entries is too many (at most {MAX_HEADERS})")]
    TooManyHeaders { count: usize },
    #[error("field `headers`: {name:?} is not usable: {reason}")]
    HeaderName { name: String, reason: &'static str },
    #[error("field `headers`: {name:?} is listed twice")]
    DuplicateHeader { name: String },
}

impl Config {
    /// Parses the bytes Envoy delivers. Empty (or all-whitespace) configuration means defaults.
    pub fn from_bytes(bytes: &[u8]) -> Result<Config, ConfigError> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Config::default());
        }
        let raw: RawConfig = serde_json::from_slice(bytes).map_err(|e| ConfigError::Json {
            message: e.to_string(),
        })?;
        Config::try_from(raw)
    }
}

impl TryFrom<RawConfig> for Config {
    type Error = ConfigError;

    fn try_from(raw: RawConfig) -> Result<Self, Self::Error> {
        let level = match raw.level {
            None => Level::Info,
            Some(value) => Level::parse(&value).ok_or(ConfigError::Level { value })?,
        };
        let prefix = raw.prefix.unwrap_or_default();
        if prefix.len() > MAX_PREFIX_LEN {
            return Err(ConfigError::PrefixTooLong { len: prefix.len() });
        }
        // One log line per stream: a newline in the prefix would forge a second one.
        if prefix.chars().any(char::is_control) {
            return Err(ConfigError::PrefixControl);
        }
        let headers = raw.headers.unwrap_or_default();
        if headers.len() > MAX_HEADERS {
            return Err(ConfigError::TooManyHeaders {
                count: headers.len(),
            });
        }
        for (i, name) in headers.iter().enumerate() {
            if let Some(reason) = header_name_problem(name) {
                return Err(ConfigError::HeaderName {
                    name: name.clone(),
                    reason,
                });
            }
            if headers[..i].contains(name) {
                return Err(ConfigError::DuplicateHeader { name: name.clone() });
            }
        }
        Ok(Config {
            enabled: raw.log.unwrap_or(true),
            level,
            prefix,
            headers,
        })
    }
}

/// RFC 9110 token characters, plus a leading `:` for HTTP/2 pseudo-headers (`:path`).
fn header_name_problem(name: &str) -> Option<&'static str> {
    let body = name.strip_prefix(':').unwrap_or(name);
    if body.is_empty() {
        return Some("a header name cannot be empty");
    }
    if name.len() > MAX_HEADER_NAME_LEN {
        return Some("longer than 64 bytes");
    }
    if body.bytes().any(|b| b.is_ascii_uppercase()) {
        return Some("Envoy stores header names in lower case; write it in lower case");
    }
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if !body.bytes().all(token) {
        return Some("only letters, digits and !#$%&'*+-.^_`|~ are allowed in a header name");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Config, ConfigError> {
        Config::from_bytes(json.as_bytes())
    }

    #[test]
    fn empty_configuration_means_defaults() {
        for empty in ["", "  \n", "{}"] {
            assert_eq!(parse(empty), Ok(Config::default()), "{empty:?}");
        }
    }

    #[test]
    fn full_configuration_is_accepted() {
        let config = parse(
            r#"{"log": true, "level": "debug", "prefix": "[shop] ", "headers": [":path", "x-request-id"]}"#,
        )
        .unwrap();
        assert_eq!(
            config,
            Config {
                enabled: true,
                level: Level::Debug,
                prefix: "[shop] ".into(),
                headers: vec![":path".into(), "x-request-id".into()],
            }
        );
    }

    #[test]
    fn log_false_disables() {
        assert!(!parse(r#"{"log": false}"#).unwrap().enabled);
    }

    #[test]
    fn every_level_name_parses() {
        for (name, level) in Level::NAMES {
            let config = parse(&format!(r#"{{"level": "{name}"}}"#)).unwrap();
            assert_eq!(config.level, level);
        }
    }

    #[test]
    fn unknown_field_names_the_field() {
        let err = parse(r#"{"levle": "info"}"#).unwrap_err().to_string();
        assert!(err.contains("unknown field `levle`"), "{err}");
        assert!(err.contains("`level`"), "{err}");
    }

    #[test]
    fn wrong_types_and_syntax_are_refused() {
        for bad in [
            r#"{"log": "yes"}"#,
            r#"{"headers": ":path"}"#,
            "[1]",
            "\"text\"",
            "{",
            "{}x",
        ] {
            assert!(
                matches!(parse(bad), Err(ConfigError::Json { .. })),
                "{bad} should be refused"
            );
        }
    }

    #[test]
    fn bad_level_names_the_value() {
        let err = parse(r#"{"level": "verbose"}"#).unwrap_err();
        assert_eq!(
            err,
            ConfigError::Level {
                value: "verbose".into()
            }
        );
        assert!(err.to_string().contains("field `level`"));
    }

    #[test]
    fn prefix_rules() {
        let long = "x".repeat(MAX_PREFIX_LEN + 1);
        assert_eq!(
            parse(&format!(r#"{{"prefix": "{long}"}}"#)),
            Err(ConfigError::PrefixTooLong {
                len: MAX_PREFIX_LEN + 1
            })
        );
        assert_eq!(
            parse(r#"{"prefix": "a\nb"}"#),
            Err(ConfigError::PrefixControl)
        );
    }

    #[test]
    fn header_rules() {
        let problem = |json: &str| match parse(json) {
            Err(ConfigError::HeaderName { reason, .. }) => reason,
            other => panic!("{json}: {other:?}"),
        };
        assert!(problem(r#"{"headers": [""]}"#).contains("empty"));
        assert!(problem(r#"{"headers": [":"]}"#).contains("empty"));
        assert!(problem(r#"{"headers": ["X-Id"]}"#).contains("lower case"));
        assert!(problem(r#"{"headers": ["a b"]}"#).contains("allowed"));
        assert!(problem(&format!(r#"{{"headers": ["{}"]}}"#, "a".repeat(65))).contains("64"));
        assert_eq!(
            parse(r#"{"headers": ["a", "a"]}"#),
            Err(ConfigError::DuplicateHeader { name: "a".into() })
        );
        let nine: Vec<String> = (0..9).map(|i| format!("\"h{i}\"")).collect();
        assert_eq!(
            parse(&format!(r#"{{"headers": [{}]}}"#, nine.join(","))),
            Err(ConfigError::TooManyHeaders { count: 9 })
        );
    }
}
