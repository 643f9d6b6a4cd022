//! YAML that every reader reads back as the JSON it came from. Kubernetes objects and Helm
//! values are read by YAML 1.1 parsers (kubectl and helm through sigs.k8s.io/yaml, PyYAML)
//! as well as YAML 1.2 ones, and they disagree on plain scalars: `yes`, `on`, `y`, `1_000`,
//! `0o17`, `1:20` and `2001-12-14` are strings to one and booleans, numbers or dates to the
//! other. `apply` sends JSON, so `render` must print what reads back as that same JSON
//! everywhere: a string is left plain only when it cannot be anything but a string under
//! either version, and quoted otherwise.
use serde_json::{Map, Number, Value};

/// Block-style YAML for `value`, ending with a newline.
pub fn to_string(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(map) if !map.is_empty() => write_map(&mut out, map, 0, false),
        Value::Array(items) if !items.is_empty() => write_seq(&mut out, items, 0),
        other => {
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
    out
}

fn pad(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

/// `first_inline`: the first key goes right after a sequence's `- `.
fn write_map(out: &mut String, map: &Map<String, Value>, indent: usize, first_inline: bool) {
    for (i, (key, value)) in map.iter().enumerate() {
        if i > 0 || !first_inline {
            pad(out, indent);
        }
        out.push_str(&string(key));
        out.push(':');
        match value {
            Value::Object(inner) if !inner.is_empty() => {
                out.push('\n');
                write_map(out, inner, indent + 2, false);
            }
            // Sequences under a key at the key's own indent, as kubectl prints them.
            Value::Array(items) if !items.is_empty() => {
                out.push('\n');
                write_seq(out, items, indent);
            }
            other => {
                out.push(' ');
                out.push_str(&scalar(other));
                out.push('\n');
            }
        }
    }
}

fn write_seq(out: &mut String, items: &[Value], indent: usize) {
    for item in items {
        pad(out, indent);
        out.push('-');
        match item {
            Value::Object(map) if !map.is_empty() => {
                out.push(' ');
                write_map(out, map, indent + 2, true);
            }
            Value::Array(inner) if !inner.is_empty() => {
                out.push('\n');
                write_seq(out, inner, indent + 2);
            }
            other => {
                out.push(' ');
                out.push_str(&scalar(other));
                out.push('\n');
            }
        }
    }
}

fn scalar(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => number(n),
        Value::String(s) => string(s),
        Value::Array(_) => "[]".into(),
        Value::Object(_) => "{}".into(),
    }
}

/// Integers as they are; floats in the one exponent form both versions resolve as a float:
/// YAML 1.1 wants a `.` in the mantissa and a sign in the exponent (`1e300` is a string
/// there), so `1e300` is written `1.0e+300`.
fn number(n: &Number) -> String {
    let text = n.to_string();
    if n.is_f64() {
        if let Some((mantissa, exponent)) = text.split_once(['e', 'E']) {
            let mantissa = if mantissa.contains('.') {
                mantissa.to_string()
            } else {
                format!("{mantissa}.0")
            };
            let exponent = if exponent.starts_with(['-', '+']) {
                exponent.to_string()
            } else {
                format!("+{exponent}")
            };
            return format!("{mantissa}e{exponent}");
        }
        if !text.contains('.') {
            return format!("{text}.0");
        }
    }
    text
}

/// Words YAML 1.1 resolves to booleans or null, in any case the resolvers accept.
const RESERVED_WORDS: &[&str] = &["y", "yes", "n", "no", "true", "false", "on", "off", "null"];

/// Plain only when no YAML version can read it as anything but this string: it starts with
/// a letter (so it is no number, date, `.inf`, indicator or sexagesimal), holds only letters,
/// digits and `_ . / - : @` plus inner single spaces (no `: `, ` #`, flow or quote
/// characters), and is none of the reserved words.
fn plain_is_safe(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    if !first.is_ascii_alphabetic() || s.ends_with([' ', ':']) || s.contains("  ") {
        return false;
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || "_./-:@ ".contains(c);
    if !s.chars().all(allowed) || s.contains(": ") {
        return false;
    }
    !RESERVED_WORDS
        .iter()
        .any(|word| word.eq_ignore_ascii_case(s))
}

fn string(s: &str) -> String {
    if plain_is_safe(s) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if needs_escape(c) => {
                let code = u32::from(c);
                if code <= 0xFFFF {
                    out.push_str(&format!("\\u{code:04X}"));
                } else {
                    out.push_str(&format!("\\U{code:08X}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Outside YAML's printable set, or a line break to YAML 1.1 (NEL, U+2028, U+2029), or a BOM:
/// written as an escape so no reader folds or drops it.
fn needs_escape(c: char) -> bool {
    let code = u32::from(c);
    !matches!(code, 0x20..=0x7E | 0xA0..=0xD7FF | 0xE000..=0xFFFD | 0x10000..=0x10FFFF)
        || matches!(code, 0x2028 | 0x2029 | 0xFEFF)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Strings YAML 1.1 or 1.2 readers turn into something else when written plain.
    pub(crate) const TRICKY: &[&str] = &[
        "yes",
        "Yes",
        "YES",
        "no",
        "No",
        "on",
        "On",
        "off",
        "OFF",
        "y",
        "Y",
        "n",
        "N",
        "true",
        "False",
        "null",
        "Null",
        "~",
        "",
        " ",
        "1",
        "-1",
        "+1",
        "1_000",
        "0x1F",
        "0o17",
        "017",
        "1:20",
        "1:20:30",
        "190:20:30",
        "1e3",
        "1.5",
        ".5",
        "1.",
        ".inf",
        "-.Inf",
        ".NaN",
        "2001-12-14",
        "2001-12-14t21:59:43.10-05:00",
        "<<",
        "=",
        "-",
        "- x",
        "? x",
        ": x",
        "a: b",
        "a #c",
        "#c",
        "[a]",
        "{a: 1}",
        "*ref",
        "&anchor",
        "!tag",
        "%dir",
        "@at",
        "`bt",
        "|",
        ">",
        "'q'",
        "\"dq\"",
        "a\nb",
        "a\n\nb",
        "trailing ",
        " leading",
        "a  b",
        "tab\tx",
        "line\u{2028}sep",
        "para\u{2029}sep",
        "nel\u{85}x",
        "bom\u{feff}x",
        "bell\u{7}",
        "del\u{7f}",
        "café",
        "emoji 😀",
        "oci://reg:5000/f@sha256:ab",
        "a:",
        "key:value",
    ];

    #[test]
    fn round_trips_through_serde_yaml() {
        let mut config = Map::new();
        for (i, text) in TRICKY.iter().enumerate() {
            config.insert(format!("v{i}"), json!(text));
            config.insert((*text).to_string(), json!(i));
        }
        let value = json!({
            "apiVersion": "extensions.istio.io/v1alpha1",
            "metadata": {"name": "x", "annotations": {}},
            "spec": {
                "pluginConfig": config,
                "list": TRICKY,
                "nested": [[1, 2], [], {}, [{"a": "yes", "b": [{"c": "on"}]}]],
                "numbers": [0, -7, 1.5, 1e300, -2.5e-8, 123456789012_i64, 0.1],
                "flags": [true, false, null],
            }
        });
        let text = to_string(&value);
        let back: Value = serde_yaml::from_str(&text).unwrap();
        assert_eq!(back, value, "\n{text}");
    }

    #[test]
    fn leaves_ordinary_strings_plain() {
        for text in [
            "httpbin",
            "AUTHN",
            "demo.ctx-logger",
            "oci://reg:5000/f@sha256:ab",
            "hello world",
        ] {
            assert_eq!(string(text), text);
        }
        assert_eq!(string("yes"), "\"yes\"");
        assert_eq!(string("1_000"), "\"1_000\"");
        assert_eq!(string("l\u{2028}"), "\"l\\u2028\"");
        assert_eq!(number(&Number::from_f64(1e300).unwrap()), "1.0e+300");
    }

    #[test]
    fn layout_is_kubectl_like() {
        let value = json!({"a": {"b": [{"c": 1, "d": "x"}, "z", "y"]}, "e": []});
        assert_eq!(
            to_string(&value),
            "a:\n  b:\n  - c: 1\n    d: x\n  - z\n  - \"y\"\ne: []\n"
        );
    }
}
