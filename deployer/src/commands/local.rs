use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use deployer::build;
use deployer::local::{self, Event, LabConfig, Launch, LocalError, Mode, Running};
use deployer::output;
use tokio::signal::unix::{SignalKind, signal};

/// How long Envoy gets to stop after SIGTERM before its process group is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Run a proxy-wasm module in a local Envoy (started with func-e) and stream its `wasm log`
/// lines until Ctrl+C.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// Port of the lab listener on 127.0.0.1.
    #[arg(long, default_value_t = 18000, value_parser = clap::value_parser!(u16).range(1..))]
    pub port: u16,
    /// The module to load [default: build the crate `deployer build` would, and load that].
    #[arg(long, value_name = "FILE", conflicts_with_all = ["manifest_path", "package"])]
    pub wasm: Option<PathBuf>,
    /// Without --wasm: Cargo.toml of the proxy-wasm crate to build and load.
    #[arg(long, value_name = "PATH")]
    pub manifest_path: Option<PathBuf>,
    /// Without --wasm: package to build in that workspace.
    #[arg(short, long, value_name = "NAME")]
    pub package: Option<String>,
    /// Plugin configuration (JSON or YAML), passed to the module's on_configure as JSON.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Load the module as a network filter in front of a TCP echo (one context per connection).
    #[arg(long)]
    pub tcp: bool,
    /// Print the Envoy configuration (YAML) and exit.
    #[arg(long)]
    pub print_config: bool,
    /// Show all of Envoy's output on stderr, not just the `wasm log` lines.
    #[arg(short = 'v', long = "all-logs", visible_alias = "verbose")]
    pub all_logs: bool,
    /// Root context id, for modules that register several root contexts.
    #[arg(long, default_value = "")]
    pub root_id: String,
    /// func-e binary [default: the set-up cache's, else PATH's; Envoy alone when there is none].
    #[arg(long = "func-e", value_name = "PATH")]
    pub func_e: Option<PathBuf>,
    /// Envoy binary [default: the set-up cache's (Envoy 1.40), else PATH's].
    #[arg(long, value_name = "PATH")]
    pub envoy: Option<PathBuf>,
    /// How long to wait for Envoy to become ready (e.g. 30s, 2m).
    #[arg(long, default_value = "30s", value_name = "DURATION",
          value_parser = deployer::duration::positive)]
    pub ready_timeout: Duration,
}

const EXAMPLES: &str = "Examples:
  deployer local                                   # build the filter, run it, stream its logs
  deployer local --wasm logger.wasm --config config.yaml --port 18080
  deployer local --wasm logger.wasm --print-config > envoy.yaml";

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let module = match &args.wasm {
        Some(path) => existing_module(path)?,
        None => build_module(&args).await?,
    };
    let plugin_config = args
        .config
        .as_deref()
        .map(local::plugin_config_from_file)
        .transpose()?;
    let lab = LabConfig {
        port: args.port,
        module,
        mode: if args.tcp { Mode::Tcp } else { Mode::Http },
        plugin_config,
        root_id: args.root_id.clone(),
    };
    let yaml = lab.render()?;
    if args.print_config {
        print!("{yaml}");
        return Ok(ExitCode::SUCCESS);
    }

    local::ensure_port_free(args.port)?;
    let tools = local::tools::find(args.envoy.as_deref(), args.func_e.as_deref())?;
    if tools.func_e.is_none() {
        eprintln!(
            "func-e not found in {}: running {} directly (`scripts/setup func-e` installs func-e)",
            tools.func_e_searched,
            tools.envoy.display()
        );
    }

    // Registered before anything starts, so a Ctrl+C during start-up still stops Envoy.
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot listen for Ctrl+C")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;

    let work = tempfile::Builder::new()
        .prefix("deployer-local-")
        .tempdir()
        .map_err(|source| LocalError::WorkDir { source })?;
    let config_path = work.path().join("envoy.yaml");
    std::fs::write(&config_path, &yaml).map_err(|source| LocalError::WorkDir { source })?;
    let admin_file = work.path().join("admin-address");
    let launch = Launch::new(&tools, &config_path, &admin_file, work.path());

    let started = Instant::now();
    eprintln!("{}", starting_banner(&launch, &lab, &tools.envoy));
    let mut running = Running::start(&launch, admin_file, args.port, args.ready_timeout)?;
    loop {
        tokio::select! {
            event = running.next() => match event {
                Event::Ready { admin } => {
                    let elapsed = started.elapsed().as_millis();
                    if emit(&ready_text(&lab, admin, elapsed)).is_err() {
                        break;
                    }
                }
                Event::Line(line) if line.is_wasm_log() => {
                    // A closed stdout (`deployer local | head`) ends the lab like Ctrl+C.
                    if emit(&line.text).is_err() {
                        break;
                    }
                }
                Event::Line(line) => {
                    if args.all_logs {
                        eprintln!("{}", line.text);
                    }
                }
                Event::Failed(err) => {
                    // Already gone, or never got ready: either way nothing may stay behind.
                    running.stop(STOP_GRACE).await?;
                    return Err(err.into());
                }
            },
            _ = interrupt.recv() => break,
            _ = terminate.recv() => break,
        }
    }
    eprintln!(
        "stopping Envoy (pid {}); Ctrl+C again kills it",
        running.pid()
    );
    tokio::select! {
        stopped = running.stop(STOP_GRACE) => stopped?,
        // Dropping the unfinished stop drops `Running`, which kills the process group.
        _ = interrupt.recv() => eprintln!("killed Envoy"),
    }
    Ok(ExitCode::SUCCESS)
}

fn existing_module(path: &Path) -> anyhow::Result<PathBuf> {
    if !path.is_file() {
        return Err(LocalError::ModuleMissing {
            path: path.to_path_buf(),
        }
        .into());
    }
    // Envoy resolves relative paths against its own working directory; be explicit.
    std::path::absolute(path).with_context(|| format!("cannot resolve {}", path.display()))
}

/// The freshly built module, exactly as `deployer build` makes it.
async fn build_module(args: &Args) -> anyhow::Result<PathBuf> {
    let request = build::Request {
        manifest_path: args.manifest_path.clone(),
        package: args.package.clone(),
        quiet: !output::interactive(),
    };
    if !args.print_config {
        eprintln!("building the module (pass --wasm FILE to load another one)");
    }
    let built = tokio::task::spawn_blocking(move || build::build(&request))
        .await
        .context("build task panicked")?
        .context("cannot build the module for the lab (or pass --wasm FILE)")?;
    Ok(built.module)
}

fn starting_banner(launch: &Launch, lab: &LabConfig, envoy: &Path) -> String {
    let runner = if launch.via_func_e {
        format!(
            "func-e ({}) with Envoy {}",
            launch.program.display(),
            envoy.display()
        )
    } else {
        format!("Envoy {}", envoy.display())
    };
    format!("starting {runner}, module {}", lab.module.display())
}

fn emit(text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{text}")?;
    stdout.flush()
}

fn ready_text(lab: &LabConfig, admin: std::net::SocketAddr, elapsed_ms: u128) -> String {
    let port = lab.port;
    let (what, try_it) = match lab.mode {
        Mode::Http => (
            format!("http://127.0.0.1:{port}/"),
            format!("curl -s http://127.0.0.1:{port}/"),
        ),
        Mode::Tcp => (
            format!("tcp echo on 127.0.0.1:{port}"),
            format!("echo hello | nc -q1 127.0.0.1 {port}"),
        ),
    };
    format!(
        "lab ready in {elapsed_ms} ms: {what} (admin http://{admin})\ntry: {try_it}\nstreaming `wasm log` lines; Ctrl+C stops Envoy"
    )
}
