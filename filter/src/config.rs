//! Plugin configuration: the JSON object Envoy (`configuration`) or Istio (`pluginConfig`)
//! hands to `proxy_on_configure`, checked once so the per-stream path never re-validates.

use crate::json::{self, Value};
use serde::Deserialize;

/// Longest accepted `prefix`, in bytes: a prefix is a tag, not a payload.
pub const MAX_PREFIX_LEN: usize = 128;
/// Most request headers one line may carry.
pub const MAX_HEADERS: usize = 8;
/// Longest accepted header name, in bytes.
pub const MAX_HEADER_NAME_LEN: usize = 64;
/// Most characters of a user-supplied string an error message repeats: a 1 MB field name is
/// named by its start and its length, not copied whole into Envoy's log.
pub const MAX_ECHOED_CHARS: usize = 64;

/// Characters that end or break a log line for whoever reads it: control characters (newline,
/// tab, NEL) and the Unicode line and paragraph separators, which JSON allows unescaped and
/// many log viewers (and JavaScript) treat as newlines.
pub fn breaks_line(c: char) -> bool {
    c.is_control() || c == '\u{2028}' || c == '\u{2029}'
}

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
#[derive(Debug, PartialEq, Eq)]
pub enum ConfigError {
    Syntax {
        offset: usize,
        problem: &'static str,
    },
    NotAnObject {
        found: &'static str,
    },
    UnknownField {
        name: String,
    },
    DuplicateField {
        name: &'static str,
    },
    WrongType {
        field: &'static str,
        expected: &'static str,
        found: &'static str,
    },
    Level {
        value: String,
    },
    PrefixTooLong {
        len: usize,
    },
    PrefixControl,
    TooManyHeaders {
        count: usize,
    },
    HeaderName {
        name: String,
        reason: &'static str,
    },
    DuplicateHeader {
        name: String,
    },
}

impl ConfigError {
    /// The message, built without `core::fmt`: this runs inside the wasm module, where the
    /// formatting machinery alone would cost more than the rest of the filter.
    pub fn message(&self) -> String {
        let mut m = String::new();
        match self {
            ConfigError::Syntax { offset, problem } => {
                m += "not valid JSON at byte ";
                push_number(&mut m, *offset);
                m += ": ";
                m += problem;
            }
            ConfigError::NotAnObject { found } => {
                m += "expected a JSON object with optional fields ";
                m += FIELD_LIST;
                m += ", found ";
                m += found;
            }
            ConfigError::UnknownField { name } => {
                m += "unknown field ";
                push_quoted(&mut m, name);
                m += ", expected one of ";
                m += FIELD_LIST;
            }
            ConfigError::DuplicateField { name } => {
                m += "field `";
                m += name;
                m += "` is given twice";
            }
            ConfigError::WrongType {
                field,
                expected,
                found,
            } => {
                m += "field `";
                m += field;
                m += "`: expected ";
                m += expected;
                m += ", found ";
                m += found;
            }
            ConfigError::Level { value } => {
                m += "field `level`: unknown level ";
                push_quoted(&mut m, value);
                m += " (use one of trace, debug, info, warn, error, critical)";
            }
            ConfigError::PrefixTooLong { len } => {
                m += "field `prefix`: ";
                push_number(&mut m, *len);
                m += " bytes is too long (at most ";
                push_number(&mut m, MAX_PREFIX_LEN);
                m += ")";
            }
            ConfigError::PrefixControl => {
                m += "field `prefix`: control characters and line separators (newline, tab, U+2028, U+2029, ...) are not allowed";
            }
            ConfigError::TooManyHeaders { count } => {
                m += "field `headers`: ";
                push_number(&mut m, *count);
                m += " entries is too many (at most ";
                push_number(&mut m, MAX_HEADERS);
                m += ")";
            }
            ConfigError::HeaderName { name, reason } => {
                m += "field `headers`: ";
                push_quoted(&mut m, name);
                m += " is not usable: ";
                m += reason;
            }
            ConfigError::DuplicateHeader { name } => {
                m += "field `headers`: ";
                push_quoted(&mut m, name);
                m += " is listed twice";
            }
        }
        m
    }
}

/// Decimal digits of `n`, without `core::fmt`.
fn push_number(out: &mut String, n: usize) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut n = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in digits.get(i..).unwrap_or_default() {
        out.push(char::from(d));
    }
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for ConfigError {}

const FIELD_LIST: &str = "`log`, `level`, `prefix`, `headers`";

/// A user-supplied string in a message: quoted, line breakers replaced, so the message stays
/// one log line whatever the configuration holds; cut after [`MAX_ECHOED_CHARS`] characters
/// (with its length in bytes), so the message stays short whatever its size.
fn push_quoted(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars().take(MAX_ECHOED_CHARS) {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if breaks_line(c) => out.push('?'),
            c => out.push(c),
        }
    }
    out.push('"');
    if s.chars().nth(MAX_ECHOED_CHARS).is_some() {
        out.push_str("... (");
        push_number(out, s.len());
        out.push_str(" bytes)");
    }
}

impl Config {
    /// Parses the bytes Envoy delivers. Empty (or all-whitespace) configuration means defaults.
    pub fn from_bytes(bytes: &[u8]) -> Result<Config, ConfigError> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Config::default());
        }
        let value = json::parse(bytes).map_err(|e| ConfigError::Syntax {
            offset: e.offset,
            problem: e.problem,
        })?;
        Config::try_from(RawConfig::from_value(value)?)
    }
}

impl RawConfig {
    /// The same mapping serde's derive gives (`deny_unknown_fields`, `null` = absent,
    /// duplicates refused), done by hand to keep serde's formatting code out of the module.
    pub fn from_value(value: Value) -> Result<RawConfig, ConfigError> {
        let Value::Object(members) = value else {
            return Err(ConfigError::NotAnObject {
                found: value.kind(),
            });
        };
        let mut raw = RawConfig::default();
        let mut seen: Vec<&'static str> = Vec::new();
        for (name, value) in members {
            let field = match name.as_str() {
                "log" => "log",
                "level" => "level",
                "prefix" => "prefix",
                "headers" => "headers",
                _ => return Err(ConfigError::UnknownField { name }),
            };
            if seen.contains(&field) {
                return Err(ConfigError::DuplicateField { name: field });
            }
            seen.push(field);
            if value == Value::Null {
                continue;
            }
            let wrong = |expected, found: &Value| ConfigError::WrongType {
                field,
                expected,
                found: found.kind(),
            };
            match (field, value) {
                ("log", Value::Bool(b)) => raw.log = Some(b),
                ("log", other) => return Err(wrong("true or false", &other)),
                ("level", Value::String(s)) => raw.level = Some(s),
                ("prefix", Value::String(s)) => raw.prefix = Some(s),
                ("level" | "prefix", other) => return Err(wrong("a string", &other)),
                (_, Value::Array(items)) => {
                    let mut headers = Vec::with_capacity(items.len());
                    for item in items {
                        match item {
                            Value::String(s) => headers.push(s),
                            other => return Err(wrong("an array of strings", &other)),
                        }
                    }
                    raw.headers = Some(headers);
                }
                (_, other) => return Err(wrong("an array of strings", &other)),
            }
        }
        Ok(raw)
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
        // One log line per stream: a newline (or U+2028) in the prefix would forge a second one.
        if prefix.chars().any(breaks_line) {
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
    fn numbers_render_without_fmt() {
        for n in [0, 7, 10, 129, 4096, usize::MAX] {
            let mut s = String::new();
            push_number(&mut s, n);
            assert_eq!(s, n.to_string());
        }
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
        assert!(err.contains("unknown field \"levle\""), "{err}");
        assert!(err.contains("`level`"), "{err}");
    }

    #[test]
    fn wrong_types_and_syntax_are_refused() {
        let cases = [
            (
                r#"{"log": "yes"}"#,
                "field `log`: expected true or false, found a string",
            ),
            (
                r#"{"level": 3}"#,
                "field `level`: expected a string, found a number",
            ),
            (
                r#"{"headers": ":path"}"#,
                "field `headers`: expected an array of strings, found a string",
            ),
            (
                r#"{"headers": [1]}"#,
                "field `headers`: expected an array of strings, found a number",
            ),
            (
                "[1]",
                "expected a JSON object with optional fields `log`, `level`, `prefix`, `headers`, found an array",
            ),
            ("\"text\"", "found a string"),
            (
                "{",
                "not valid JSON at byte 1: expected a quoted field name",
            ),
            (
                "{}x",
                "not valid JSON at byte 2: trailing characters after the JSON value",
            ),
            (
                r#"{"log": true, "log": false}"#,
                "field `log` is given twice",
            ),
            (r#"{"a\nb": 1}"#, "unknown field \"a?b\", expected one of"),
        ];
        for (bad, want) in cases {
            let err = parse(bad).unwrap_err().to_string();
            assert!(err.contains(want), "{bad}: got {err:?}, want {want:?}");
        }
    }

    /// The serde derive on `RawConfig` is the schema of record; the hand mapping used in the
    /// module must accept and refuse exactly what serde_json does.
    #[test]
    fn hand_mapping_agrees_with_serde() {
        let corpus = [
            "{}",
            r#"{"log": false}"#,
            r#"{"log": null, "level": null, "prefix": null, "headers": null}"#,
            r#"{"level": "warn", "prefix": "p", "headers": ["a", ":b"]}"#,
            r#"{"headers": []}"#,
            r#"{"log": 1}"#,
            r#"{"log": "true"}"#,
            r#"{"level": ["info"]}"#,
            r#"{"prefix": {}}"#,
            r#"{"headers": [null]}"#,
            r#"{"headers": "a"}"#,
            r#"{"other": 1}"#,
            r#"{"Log": true}"#,
            r#"{"log": true, "log": true}"#,
            "null",
            "7",
        ];
        for text in corpus {
            let ours = RawConfig::from_value(json::parse(text.as_bytes()).unwrap());
            let theirs: Result<RawConfig, _> = serde_json::from_str(text);
            match (ours, theirs) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "{text}"),
                (Err(_), Err(_)) => {}
                (a, b) => panic!("{text}: hand mapping {a:?}, serde {b:?}"),
            }
        }
        // Deliberately stricter: serde's derive also reads a struct from a positional array.
        assert!(serde_json::from_str::<RawConfig>("[true]").is_ok());
        assert!(parse("[true]").is_err());
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
    fn prefix_line_separators_are_refused() {
        for prefix in ["a\u{2028}b", "a\u{2029}b", "a\u{85}b", "a\tb", "a\rb"] {
            let json = serde_json::json!({ "prefix": prefix }).to_string();
            assert_eq!(parse(&json), Err(ConfigError::PrefixControl), "{prefix:?}");
        }
        // Other non-ASCII text is a fine prefix.
        assert!(parse(r#"{"prefix": "[caf\u00e9 \u2026] "}"#).is_ok());
    }

    /// Every limit accepts exactly the value its message names and refuses one more.
    #[test]
    fn limits_are_exact() {
        let prefix = |n: usize| serde_json::json!({ "prefix": "p".repeat(n) }).to_string();
        assert!(parse(&prefix(MAX_PREFIX_LEN)).is_ok());
        let err = parse(&prefix(MAX_PREFIX_LEN + 1)).unwrap_err().message();
        assert!(err.contains(&format!("at most {MAX_PREFIX_LEN}")), "{err}");
        let headers = |n: usize| {
            let names: Vec<String> = (0..n).map(|i| format!("h{i}")).collect();
            serde_json::json!({ "headers": names }).to_string()
        };
        assert!(parse(&headers(MAX_HEADERS)).is_ok());
        let err = parse(&headers(MAX_HEADERS + 1)).unwrap_err().message();
        assert!(err.contains(&format!("at most {MAX_HEADERS}")), "{err}");
        let name = |n: usize| serde_json::json!({ "headers": ["h".repeat(n)] }).to_string();
        assert!(parse(&name(MAX_HEADER_NAME_LEN)).is_ok());
        let err = parse(&name(MAX_HEADER_NAME_LEN + 1)).unwrap_err().message();
        assert!(err.contains(&MAX_HEADER_NAME_LEN.to_string()), "{err}");
        let depth = |n: usize| format!(r#"{{"prefix": {}1{}}}"#, "[".repeat(n), "]".repeat(n));
        // The object itself is one level.
        let err = parse(&depth(crate::json::MAX_DEPTH)).unwrap_err().message();
        assert!(
            err.contains(&format!("more than {} levels", crate::json::MAX_DEPTH)),
            "{err}"
        );
        assert!(matches!(
            parse(&depth(crate::json::MAX_DEPTH - 1)),
            Err(ConfigError::WrongType { .. })
        ));
    }

    /// Whatever a refused configuration holds (1 MB names and values, newlines, U+2028), the
    /// message Envoy logs is one short line.
    #[test]
    fn messages_are_one_bounded_line() {
        let huge = "k".repeat(1 << 20);
        let breakers = "a\nb\rc\u{2028}d\u{2029}e\u{85}f";
        let mut configs = Vec::new();
        for text in [huge.as_str(), breakers, &format!("{breakers}{huge}")] {
            configs.push(serde_json::json!({ text: true }).to_string());
            configs.push(serde_json::json!({ "level": text }).to_string());
            configs.push(serde_json::json!({ "prefix": text }).to_string());
            configs.push(serde_json::json!({ "headers": [text] }).to_string());
            configs.push(serde_json::json!({ "headers": [format!("X{text}")] }).to_string());
            configs.push(serde_json::json!({ "log": text }).to_string());
        }
        for config in &configs {
            let message = parse(config).unwrap_err().message();
            assert!(
                message.len() < 400,
                "{} bytes: {}...",
                message.len(),
                &message[..200]
            );
            assert!(!message.chars().any(breaks_line), "{message:?}");
        }
        let message = parse(&configs[0]).unwrap_err().message();
        assert!(message.contains("(1048576 bytes)"), "{message}");
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
