//! Output formats shared by commands: human text on a terminal, JSON/YAML for scripts. Every
//! command prints through [`print`], so `-o json` and `-o yaml` mean the same everywhere.
use std::io::{IsTerminal, Write};

use serde::Serialize;

pub mod yaml;

/// `-o` of commands with a text report: text (default), json or yaml.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    #[default]
    Text,
    Json,
    Yaml,
}

/// `-o` of commands that print Kubernetes objects (apply, render, rollback, migrate): yaml or
/// json; those objects have no text form of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ObjectFormat {
    Yaml,
    Json,
}

impl From<ObjectFormat> for Format {
    fn from(format: ObjectFormat) -> Self {
        match format {
            ObjectFormat::Yaml => Format::Yaml,
            ObjectFormat::Json => Format::Json,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot serialize the output: {0}")]
    Serialize(#[from] serde_json::Error),
    /// Includes a closed pipe (`deployer list | head`), which the binary ends quietly on.
    #[error("cannot write the output: {0}")]
    Write(#[from] std::io::Error),
}

/// `value` as `format` asks: pretty JSON, YAML that reads back as that JSON under YAML 1.1 and
/// 1.2 alike (see [`yaml`]), or `text()` for people. Always ends with a newline (text: as given).
pub fn render<T: Serialize + ?Sized>(
    format: Format,
    value: &T,
    text: impl FnOnce() -> String,
) -> Result<String, Error> {
    Ok(match format {
        Format::Text => text(),
        Format::Json => serde_json::to_string_pretty(value)? + "\n",
        Format::Yaml => yaml::to_string(&serde_json::to_value(value)?),
    })
}

/// [`render`], written to stdout. A write error is returned, not a panic as with `println!`.
pub fn print<T: Serialize + ?Sized>(
    format: Format,
    value: &T,
    text: impl FnOnce() -> String,
) -> Result<(), Error> {
    let out = render(format, value, text)?;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(out.as_bytes())?;
    stdout.flush()?;
    Ok(())
}

/// An object (or anything) in an object format.
pub fn print_value<T: Serialize + ?Sized>(value: &T, format: ObjectFormat) -> Result<(), Error> {
    print(format.into(), value, String::new)
}

/// One object as itself; several as a `v1 List`, as kubectl prints them.
pub fn print_objects<T: Serialize>(objects: &[T], format: ObjectFormat) -> Result<(), Error> {
    let value = match objects {
        [one] => serde_json::to_value(one)?,
        many => serde_json::json!({ "apiVersion": "v1", "kind": "List", "items": many }),
    };
    print_value(&value, format)
}

/// `812 bytes`, or `61234 bytes (59.8 KiB)`: the exact count, and a size people read.
pub fn human_size(bytes: u64) -> String {
    if bytes < 1024 {
        format!("{bytes} bytes")
    } else {
        format!("{bytes} bytes ({:.1} KiB)", bytes as f64 / 1024.0)
    }
}

/// Progress bars and spinners only when a person is watching.
pub fn interactive() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("CI").is_none()
}

/// A spinner with elapsed time for waits whose size is unknown up front (a pull resolves the
/// manifest before it knows the layer size); `None` when nobody is watching.
pub fn spinner(
    message: impl Into<std::borrow::Cow<'static, str>>,
) -> Option<indicatif::ProgressBar> {
    if !interactive() {
        return None;
    }
    let spinner = indicatif::ProgressBar::new_spinner();
    if let Ok(style) = indicatif::ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
        spinner.set_style(style);
    }
    spinner.set_message(message);
    spinner.enable_steady_tick(std::time::Duration::from_millis(100));
    Some(spinner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_switch_for_every_format() {
        let value = serde_json::json!({"name": "logger", "enabled": "yes", "size": 3});
        let text = || "logger: 3 bytes\n".to_string();
        assert_eq!(
            render(Format::Text, &value, text).unwrap(),
            "logger: 3 bytes\n"
        );
        let json = render(Format::Json, &value, text).unwrap();
        assert!(json.ends_with("}\n"), "{json}");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&json).unwrap(),
            value
        );
        // YAML 1.1 readers would take a plain `yes` for true: the writer quotes it.
        let yaml = render(Format::Yaml, &value, text).unwrap();
        assert!(
            yaml.contains("enabled: \"yes\"") || yaml.contains("enabled: 'yes'"),
            "{yaml}"
        );
        assert_eq!(
            serde_yaml::from_str::<serde_json::Value>(&yaml).unwrap(),
            value
        );
    }

    #[test]
    fn object_formats_are_the_same_switch() {
        assert_eq!(Format::from(ObjectFormat::Json), Format::Json);
        assert_eq!(Format::from(ObjectFormat::Yaml), Format::Yaml);
    }

    #[test]
    fn sizes_read_both_ways() {
        assert_eq!(human_size(812), "812 bytes");
        assert_eq!(human_size(61234), "61234 bytes (59.8 KiB)");
    }
}
