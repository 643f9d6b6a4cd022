//! The `deployer` binary: parse arguments, run one command, print the error chain.
//! Exit statuses (`commands::EXIT_CODES`): 0 fine, 1 a check found a problem (the command
//! returns that itself), 2 usage errors (clap) and every error that reaches here.
use std::process::ExitCode;

use clap::Parser;

mod commands;

fn main() -> ExitCode {
    let cli = commands::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::from(commands::FAILED);
        }
    };
    // `println!` panics when stdout's reader has gone (`deployer list | head`): that is not a
    // bug to report, so its message is not printed.
    let report_panic = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !is_closed_stdout_panic(info.payload()) {
            report_panic(info);
        }
    }));
    // A panic is a bug, but it still ends with the documented status rather than 101; the
    // hook has printed where it happened.
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        runtime.block_on(commands::run(cli))
    }));
    match outcome {
        Ok(Ok(code)) => code,
        Ok(Err(err)) if closed_stdout(&err) => {
            // `deployer list | head`: the reader has what it wanted.
            ExitCode::SUCCESS
        }
        Ok(Err(err)) => {
            eprintln!("error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::from(commands::FAILED)
        }
        Err(payload) if is_closed_stdout_panic(payload.as_ref()) => ExitCode::SUCCESS,
        Err(_) => {
            eprintln!(
                "error: internal error (a bug in deployer; please report it with the lines above)"
            );
            ExitCode::from(commands::FAILED)
        }
    }
}

/// Whether the command stopped because stdout's reader went away.
fn closed_stdout(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        matches!(
            cause.downcast_ref::<deployer::output::Error>(),
            Some(deployer::output::Error::Write(io)) if io.kind() == std::io::ErrorKind::BrokenPipe
        )
    })
}

/// The panic of `println!` on a closed stdout (std's message, which names the io error).
fn is_closed_stdout_panic(payload: &(dyn std::any::Any + Send)) -> bool {
    let message = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or_default();
    message.starts_with("failed printing to stdout") && message.contains("Broken pipe")
}
