//! `deployer migrate NAME`: replace a WasmPlugin with the equivalent TrafficExtension.
//!
//! Make-before-break (the default): the TrafficExtension is applied next to the WasmPlugin,
//! the sidecars the plugin selects are watched until each runs it, and only then is the
//! WasmPlugin deleted, so no request skips the filter; while both run a request passes both
//! (the window is measured from the sidecars' lines and reported). `--break-before-make`
//! deletes first and reports the gap instead. Every step that can be refused (validation, the
//! API server's dry runs of the apply and of the delete, RBAC) is tried before the first write,
//! and a step that fails later leaves the WasmPlugin in place.
//!
//! "Runs it" is read from the sidecars' own logs (the module's `wasm log <ns>.<name>` lines,
//! which need traffic and `wasm:info`): the API server is the only way into a pod this tool
//! has, and Envoy's config dump is not reachable through it.
use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use deployer::cluster::{Cluster, DryRun};
use deployer::mesh::migrate::{self, PodLines};
use deployer::mesh::pods::{self, LogWindow};
use deployer::mesh::{Plugin, PodView};
use deployer::plugin::spec::Kind;
use futures::AsyncReadExt;
use k8s_openapi::jiff::Timestamp;

use deployer::output::{ObjectFormat, print_value};

use super::args::{ClusterArgs, one_context};

#[derive(Debug, clap::Args)]
#[command(mut_arg("contexts", one_context), after_long_help = EXAMPLES)]
pub struct Args {
    /// The WasmPlugin's name (the TrafficExtension gets the same).
    pub name: String,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Delete the WasmPlugin first, then apply the TrafficExtension: never two filters on a
    /// request, but requests in the gap skip the filter (the gap is reported).
    #[arg(long)]
    pub break_before_make: bool,
    /// Show the plan and the TrafficExtension, check it with the API server, change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// How long to wait for every selected sidecar to run the TrafficExtension (e.g. 90s, 5m).
    #[arg(long, value_name = "DURATION", default_value = "2m",
          value_parser = deployer::duration::positive)]
    pub timeout: Duration,
    /// Take over fields another field manager owns (server-side apply conflicts).
    #[arg(long)]
    pub force_conflicts: bool,
    /// Print the result as yaml or json (measured windows in seconds per pod).
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<ObjectFormat>,
}

const EXAMPLES: &str = "Examples:
  deployer migrate context-logger -n demo --dry-run
  deployer migrate context-logger -n demo --timeout 5m
  deployer migrate context-logger -n demo --break-before-make -o json";

/// How often the sidecars' logs are read while waiting.
const POLL: Duration = Duration::from_millis(500);
/// After the delete, how long without a line from the WasmPlugin before its last line counts
/// as the last: ECDS removes it within about a second here.
const SETTLE: Duration = Duration::from_secs(3);
/// The last line of the WasmPlugin is looked for at most this long after the delete.
const SETTLE_MAX: Duration = Duration::from_secs(30);

#[derive(Debug, serde::Serialize)]
struct Report {
    namespace: String,
    name: String,
    mode: &'static str,
    /// Seconds from the apply (make-before-break) or the delete (break-before-make) until the
    /// last selected sidecar logged the TrafficExtension.
    switch_seconds: f64,
    /// Per pod: make-before-break, seconds both ran; break-before-make, seconds neither ran.
    per_pod: BTreeMap<String, Option<f64>>,
    /// The largest of `per_pod`.
    window_seconds: Option<f64>,
    /// Requests logged by the WasmPlugin / the TrafficExtension since the migration started.
    lines: BTreeMap<String, (usize, usize)>,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let cluster = args.cluster.connect_one().await?;
    let namespace = args.cluster.namespace_in(&cluster);
    let name = args.name.as_str();
    cluster.ensure_crd_of(Kind::WasmPlugin).await?;
    cluster.ensure_crd_of(Kind::TrafficExtension).await?;
    let Some(wasm_plugin) = cluster
        .get_object(Kind::WasmPlugin, &namespace, name)
        .await?
    else {
        anyhow::bail!(
            "wasmplugin {namespace}/{name} not found (context {}): nothing to migrate",
            cluster.context
        );
    };
    let manifest = migrate::traffic_extension_for(&wasm_plugin)?;
    if let Some(existing) = cluster
        .get_object(Kind::TrafficExtension, &namespace, name)
        .await?
    {
        // A re-run after an interrupted migration finds its own TrafficExtension; anything
        // else of that name is someone else's and is not overwritten.
        let same = existing.data.get("spec") == serde_json::to_value(&manifest)?.get("spec");
        if !same {
            anyhow::bail!(
                "trafficextension {namespace}/{name} already exists with another spec; delete or rename it first (nothing was changed)"
            );
        }
    }
    let plugin = Plugin::from_object(&wasm_plugin);
    let mode = if args.break_before_make {
        "break-before-make"
    } else {
        "make-before-break"
    };

    // Everything the API server could refuse, before anything is written.
    cluster
        .apply_plugin_from(
            &manifest,
            args.force_conflicts,
            DryRun::Server,
            Some(&wasm_plugin),
        )
        .await?;
    cluster
        .delete_object(Kind::WasmPlugin, &namespace, name, DryRun::Server)
        .await?;
    let pods = meshed_pods(&cluster, &plugin).await?;
    if args.dry_run {
        let steps = if args.break_before_make {
            [
                "delete the WasmPlugin",
                "apply the TrafficExtension",
                "wait until every selected sidecar logs it; requests in between skip the filter",
            ]
        } else {
            [
                "apply the TrafficExtension",
                "wait until every selected sidecar logs it (both filters run meanwhile)",
                "delete the WasmPlugin",
            ]
        };
        match args.output {
            Some(format) => print_value(&serde_json::to_value(&manifest)?, format)?,
            None => {
                println!(
                    "migrate {namespace}/{name}: WasmPlugin -> TrafficExtension ({mode}; dry run, the API server accepted both steps, nothing changed)"
                );
                for (i, step) in steps.iter().enumerate() {
                    println!("  {}. {step}", i + 1);
                }
                println!(
                    "  sidecars to watch: {}",
                    if pods.is_empty() {
                        "none (no selected pod has istio-proxy)".to_string()
                    } else {
                        pods.iter()
                            .map(|p| p.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                );
                print!(
                    "{}",
                    deployer::output::yaml::to_string(&serde_json::to_value(&manifest)?)
                );
            }
        }
        return Ok(ExitCode::SUCCESS);
    }

    let say = |line: String| {
        if args.output.is_none() {
            println!("{line}");
        }
    };
    let started = Timestamp::now();
    if args.break_before_make {
        cluster
            .delete_object(Kind::WasmPlugin, &namespace, name, DryRun::Off)
            .await?;
        say(format!(
            "wasmplugin.extensions.istio.io/{name} deleted (namespace {namespace})"
        ));
    }
    let applied = cluster
        .apply_plugin_from(
            &manifest,
            args.force_conflicts,
            DryRun::Off,
            Some(&wasm_plugin),
        )
        .await;
    let applied = match applied {
        Ok(applied) => applied,
        Err(err) if args.break_before_make => {
            // The WasmPlugin is gone: put it back as it was rather than leave nothing.
            restore(&cluster, &wasm_plugin).await;
            return Err(anyhow::anyhow!(err)
                .context("applying the TrafficExtension failed; the WasmPlugin was re-applied"));
        }
        Err(err) => return Err(err.into()),
    };
    say(format!(
        "trafficextension.extensions.istio.io/{name} {} (namespace {namespace}{})",
        applied.outcome,
        applied
            .revision
            .map(|r| format!(", revision {r}"))
            .unwrap_or_default()
    ));
    if !pods.is_empty() {
        say(format!(
            "waiting for {} sidecar(s) to run the TrafficExtension (its `wasm log {namespace}.{name}` lines; needs traffic and wasm:info)",
            pods.len()
        ));
    }
    let deadline = tokio::time::Instant::now() + args.timeout;
    let mut seen = loop {
        let seen = read_lines(&cluster, &plugin, &pods, started).await?;
        if let Some((pod, lines)) = seen.iter().find(|(_, l)| !l.errors.is_empty()) {
            let keep = if args.break_before_make {
                restore(&cluster, &wasm_plugin).await;
                "the WasmPlugin was re-applied"
            } else {
                "the WasmPlugin stays"
            };
            anyhow::bail!(
                "pod {pod} cannot run the TrafficExtension ({keep}; delete trafficextension {namespace}/{name} or fix it and re-run):\n  {}",
                lines.errors.join("\n  ")
            );
        }
        if seen.values().all(|l| l.first_traffic_extension().is_some()) {
            break seen;
        }
        if tokio::time::Instant::now() >= deadline {
            let waiting: Vec<&str> = seen
                .iter()
                .filter(|(_, l)| l.first_traffic_extension().is_none())
                .map(|(pod, _)| pod.as_str())
                .collect();
            let state = if args.break_before_make {
                "the WasmPlugin is deleted and the TrafficExtension applied"
            } else {
                "both are applied and the WasmPlugin stays until you delete it (`deployer delete --kind wp`)"
            };
            anyhow::bail!(
                "no `wasm log {namespace}.{name}` line from {} after {} ({state}); send traffic to those pods and check they log wasm at info (`deployer status {name} -n {namespace} --kind te`)",
                waiting.join(", "),
                jiff::SignedDuration::try_from(args.timeout)
                    .map(|duration| format!("{duration:#}"))
                    .unwrap_or_default()
            );
        }
        tokio::time::sleep(POLL).await;
    };
    let switched = seen
        .values()
        .filter_map(PodLines::first_traffic_extension)
        .max()
        .map(|at| seconds(started, at))
        .unwrap_or(0.0);
    for (pod, lines) in &seen {
        if let Some(first) = lines.first_traffic_extension() {
            say(format!(
                "  pod/{pod}: runs the TrafficExtension ({:.2}s after the {})",
                seconds(started, first),
                if args.break_before_make {
                    "delete"
                } else {
                    "apply"
                }
            ));
        }
    }
    if !args.break_before_make {
        cluster
            .delete_object(Kind::WasmPlugin, &namespace, name, DryRun::Off)
            .await?;
        say(format!(
            "wasmplugin.extensions.istio.io/{name} deleted (namespace {namespace})"
        ));
        // The last line of the WasmPlugin comes when its removal reaches each Envoy.
        let deleted = tokio::time::Instant::now();
        let mut last_change = tokio::time::Instant::now();
        let mut last = seen.clone();
        loop {
            tokio::time::sleep(POLL).await;
            seen = read_lines(&cluster, &plugin, &pods, started).await?;
            let moved = seen.iter().any(|(pod, l)| {
                last.get(pod).map(PodLines::last_wasm_plugin) != Some(l.last_wasm_plugin())
            });
            if moved {
                last_change = tokio::time::Instant::now();
            }
            last = seen.clone();
            let quiet = last_change.elapsed() >= SETTLE;
            if (quiet && deleted.elapsed() >= SETTLE) || deleted.elapsed() >= SETTLE_MAX {
                break;
            }
        }
    }
    let per_pod: BTreeMap<String, Option<f64>> = seen
        .iter()
        .map(|(pod, l)| {
            let window = if args.break_before_make {
                l.gap()
            } else {
                l.both_ran()
            };
            (pod.clone(), window)
        })
        .collect();
    let window = per_pod
        .values()
        .flatten()
        .copied()
        .fold(None, |max: Option<f64>, w| {
            Some(max.map_or(w, |m| m.max(w)))
        });
    let report = Report {
        namespace: namespace.clone(),
        name: name.to_string(),
        mode,
        switch_seconds: switched,
        window_seconds: window,
        lines: seen
            .iter()
            .map(|(pod, l)| {
                (
                    pod.clone(),
                    (l.wasm_plugin.len(), l.traffic_extension.len()),
                )
            })
            .collect(),
        per_pod,
    };
    match args.output {
        Some(format) => print_value(&serde_json::to_value(&report)?, format)?,
        None => {
            let what = if args.break_before_make {
                "neither ran (requests then skipped the filter)"
            } else {
                "both ran (requests then passed the filter twice)"
            };
            let each: Vec<String> = report
                .per_pod
                .iter()
                .map(|(pod, w)| match w {
                    Some(w) => format!("pod/{pod} {w:.2}s"),
                    None => format!("pod/{pod} not measured (no lines of both)"),
                })
                .collect();
            match window {
                Some(w) => println!("{what} for {w:.2}s at most: {}", each.join(", ")),
                None if pods.is_empty() => println!("no selected sidecar to measure {what}"),
                None => println!("how long {what} is not measured: {}", each.join(", ")),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The selected pods that have a sidecar: where the switch has to happen.
async fn meshed_pods(cluster: &Cluster, plugin: &Plugin) -> anyhow::Result<Vec<PodView>> {
    if !plugin.targets_workloads() {
        // Gateways and services attached through targetRefs: their pods are not selected by
        // labels here, so there is nothing to watch.
        return Ok(Vec::new());
    }
    Ok(pods::list_selected(cluster, plugin)
        .await?
        .into_iter()
        .filter(|pod| pod.has_proxy)
        .collect())
}

/// Each pod's lines about the two since `since`.
async fn read_lines(
    cluster: &Cluster,
    plugin: &Plugin,
    pods: &[PodView],
    since: Timestamp,
) -> anyhow::Result<BTreeMap<String, PodLines>> {
    let window = LogWindow {
        follow: false,
        // Whole seconds, rounded up; the lines are filtered by their own time.
        since_seconds: Some((Timestamp::now().as_second() - since.as_second()).max(0) + 2),
        tail_lines: None,
        ..LogWindow::default()
    };
    let mut out = BTreeMap::new();
    for pod in pods {
        let mut reader =
            pods::proxy_log(&cluster.client, &plugin.namespace, &pod.name, &window).await?;
        let mut log = String::new();
        reader.read_to_string(&mut log).await?;
        let url = plugin.fetch_url();
        out.insert(
            pod.name.clone(),
            PodLines::scan(&log, &plugin.namespace, &plugin.name, &url, since),
        );
    }
    Ok(out)
}

/// Re-applies the deleted WasmPlugin (break-before-make failed after the delete).
async fn restore(cluster: &Cluster, object: &kube::api::DynamicObject) {
    let namespace = object.metadata.namespace.clone().unwrap_or_default();
    let name = object.metadata.name.clone().unwrap_or_default();
    let spec = object.data.get("spec").cloned().unwrap_or_default();
    // What was deleted passed `traffic_extension_for`'s strict read, so nothing is lost here.
    let restored = deployer::plugin::read::strict(Kind::WasmPlugin, &spec).map(|spec| {
        deployer::plugin::spec::WasmPluginManifest::new(&name, &namespace, spec)
            .with_labels(object.metadata.labels.as_ref())
    });
    let result = match restored {
        Ok(manifest) => cluster
            .apply_plugin_from(&manifest, true, DryRun::Off, Some(object))
            .await
            .map(|_| ())
            .map_err(|err| err.to_string()),
        Err(err) => Err(err),
    };
    if let Err(err) = result {
        eprintln!("error: could not re-apply wasmplugin {namespace}/{name}: {err}");
    }
}

fn seconds(from: Timestamp, to: Timestamp) -> f64 {
    (to.as_nanosecond() - from.as_nanosecond()) as f64 / 1e9
}
