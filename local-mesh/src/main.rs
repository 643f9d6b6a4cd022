//! `local-mesh`: a real Istio sidecar (pilot-agent + Envoy) for every pod of the local stack
//! that has an `istio-proxy` container. Started by `scripts/stack up`; see README.md.
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use deployer::cluster::ConnectOptions;

#[derive(Debug, Parser)]
#[command(name = "local-mesh", version)]
struct Args {
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    #[arg(long)]
    context: Option<String>,
    /// Where each pod's working directory goes (`<dir>/<namespace>/<pod>`).
    #[arg(long)]
    dir: PathBuf,
    #[arg(long)]
    pilot_agent: PathBuf,
    #[arg(long)]
    envoy: PathBuf,
    /// The release's envoy_bootstrap.json (the proxy image's envoy_bootstrap_tmpl.json).
    #[arg(long)]
    bootstrap_template: PathBuf,
    /// istiod's XDS/CA address as the agents dial it, e.g. `localhost:15012`.
    #[arg(long)]
    discovery_address: String,
    /// kwok's pod CIDR: pod IPs are added to `lo` from it while their sidecar runs.
    #[arg(long)]
    pod_cidr: String,
    /// Port on 127.0.0.1 of the one HTTP app every sidecar forwards inbound requests to.
    #[arg(long)]
    app_port: u16,
    /// `WASM_INSECURE_REGISTRIES` for the agents (plain-HTTP registries, comma-separated).
    #[arg(long, default_value = "")]
    insecure_registries: String,
    /// How often pods are listed, in milliseconds.
    #[arg(long, default_value_t = 500)]
    poll_ms: u64,
}

// One thread: PR_SET_PDEATHSIG fires when the *thread* that spawned a child exits, so every
// agent must be spawned from a thread that lives as long as the process.
#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = Args::parse();
    let pod_cidr = match args.pod_cidr.parse() {
        Ok(cidr) => cidr,
        Err(err) => {
            eprintln!("error: --pod-cidr {}: {err}", args.pod_cidr);
            return ExitCode::from(2);
        }
    };
    let options = local_mesh::Options {
        connect: ConnectOptions {
            kubeconfig: args.kubeconfig,
            context: args.context,
        },
        dir: args.dir,
        pilot_agent: args.pilot_agent,
        envoy: args.envoy,
        bootstrap_template: args.bootstrap_template,
        discovery_address: args.discovery_address,
        pod_cidr,
        app_port: args.app_port,
        insecure_registries: args.insecure_registries,
        poll: Duration::from_millis(args.poll_ms.max(100)),
    };
    match local_mesh::run(options).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}
