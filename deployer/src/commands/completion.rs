//! `deployer completion SHELL`: the shell completion script, generated from the same clap
//! definitions the binary parses with, so it never lags behind a flag.
use std::process::ExitCode;

use clap::CommandFactory;
use clap_complete::Shell;

#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// bash, zsh, fish, elvish or powershell.
    #[arg(value_enum)]
    pub shell: Shell,
}

const EXAMPLES: &str = "Examples:
  source <(deployer completion bash)                       # this bash session
  deployer completion bash > ~/.local/share/bash-completion/completions/deployer
  deployer completion zsh > \"${fpath[1]}/_deployer\"
  deployer completion fish > ~/.config/fish/completions/deployer.fish";

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut script = Vec::new();
    clap_complete::generate(
        args.shell,
        &mut super::Cli::command(),
        "deployer",
        &mut script,
    );
    std::io::Write::write_all(&mut std::io::stdout().lock(), &script)
        .map_err(deployer::output::Error::Write)?;
    Ok(ExitCode::SUCCESS)
}
