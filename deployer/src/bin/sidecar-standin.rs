//! `sidecar-standin`: plays istio-agent + Envoy for one pod of the local stack, whose kwok
//! pods have no containers. Test and demo infrastructure, not part of the `deployer` CLI; the
//! work is in `deployer::mesh::sidecar`.
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use deployer::cluster::ConnectOptions;
use deployer::mesh::sidecar;

/// Stand in for the istio-proxy sidecar of POD: fetch the WasmPlugins that select it, run them
/// in a real Envoy on 127.0.0.1, and write the container log kwok serves to `kubectl logs`.
#[derive(Debug, Parser)]
#[command(name = "sidecar-standin", version)]
struct Args {
    /// The pod to stand in for.
    pod: String,
    #[arg(short = 'n', long, default_value = "default")]
    namespace: String,
    /// Working directory (container log, modules, Envoy configs, state.json with the url).
    #[arg(long)]
    dir: PathBuf,
    /// Inbound port on 127.0.0.1 (0: a free one; state.json and stdout say which).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// How often the pod and the WasmPlugins are re-read, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    poll_ms: u64,
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    #[arg(long)]
    context: Option<String>,
    /// The Envoy binary (default: the one `scripts/setup envoy` installed, then PATH).
    #[arg(long)]
    envoy: Option<PathBuf>,
    /// Also trust this PEM CA bundle for registries; a loopback registry is then tried over
    /// TLS before plain HTTP.
    #[arg(long, value_name = "CA.pem")]
    ca_file: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let options = sidecar::Options {
        connect: ConnectOptions {
            kubeconfig: args.kubeconfig,
            context: args.context,
        },
        namespace: args.namespace,
        pod: args.pod,
        dir: args.dir,
        port: args.port,
        poll: Duration::from_millis(args.poll_ms.max(100)),
        envoy: args.envoy,
        ca_file: args.ca_file,
    };
    match sidecar::run(options).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}
