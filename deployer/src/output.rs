//! Output formats shared by commands: human text on a terminal, JSON/YAML for scripts.
use std::io::IsTerminal;

pub mod yaml;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    #[default]
    Text,
    Json,
    Yaml,
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
