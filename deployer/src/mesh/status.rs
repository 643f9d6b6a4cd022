//! The checks behind `deployer status`: the plugin as stored, its image (reachable, loadable
//! by Istio, matching the pinned sha256), the pods it selects, and the last thing each pod's
//! sidecar said about it. Every failed check becomes a problem; none means all is well.
use futures::{AsyncReadExt, StreamExt};

use super::logline::{self, Kind};
use super::pods::{self, LogWindow};
use super::{Plugin, PodView, select};
use crate::cluster::Cluster;
use crate::oci::{self, ImageRef, Verdict};

/// How far back a pod's log is searched for the latest line about the plugin: its last lines
/// written since the plugin's last change, at most this many. Older lines are about an earlier
/// version, and a bounded read keeps a fleet's status in the time of a pod listing (measured in
/// BENCHMARKS.md: reading 2,000 lines of each of 1,000 pods one by one took two minutes).
pub const SEARCH_LINES: i64 = 300;

#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    pub context: String,
    pub plugin: Plugin,
    pub selector: String,
    pub image: ImageCheck,
    pub pods: Vec<PodCheck>,
    /// Pods of the namespace the selector leaves out.
    pub pods_not_selected: usize,
    /// What is wrong, each with what to do. Empty: all is well.
    pub problems: Vec<String>,
    /// Worth knowing, not wrong.
    pub notes: Vec<String>,
}

impl Report {
    pub fn healthy(&self) -> bool {
        self.problems.is_empty()
    }

    /// Envoy's names for the plugin as the sidecars' lines show them (one, unless the pods
    /// run different Istio versions); empty when no pod logged a line of the module yet.
    pub fn envoy_names_seen(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .pods
            .iter()
            .filter_map(|pod| pod.envoy_name.as_deref())
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    }
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ImageCheck {
    pub url: String,
    pub reachable: Option<bool>,
    /// How Istio would load it, or why it would not.
    pub layout: Option<String>,
    pub istio_compatible: Option<bool>,
    /// `sha256:<hex>` of the manifest (oci) the registry serves now.
    pub digest: Option<String>,
    /// The sha256 the plugin pins (field, or the url's digest), hex.
    pub pinned: Option<String>,
    pub matches_pin: Option<bool>,
    pub error: Option<String>,
}

/// What a pod's check found, problems first (the order a summary lists pods in).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PodState {
    NotMeshed,
    NotRunning,
    LogUnreadable,
    FetchError,
    LoadError,
    /// No line about the plugin since its last change (in the last `SEARCH_LINES` lines).
    NoLine,
    /// The latest line predates the plugin's last change.
    Stale,
    Running,
    /// Running with a sidecar, its log not read: outside the sample of a large fleet.
    NotRead,
}

impl PodState {
    pub fn is_problem(self) -> bool {
        self < PodState::NoLine
    }

    pub fn describe(self) -> &'static str {
        match self {
            PodState::NotMeshed => "without istio-proxy",
            PodState::NotRunning => "not Running",
            PodState::LogUnreadable => "log unreadable",
            PodState::FetchError => "module fetch failed",
            PodState::LoadError => "plugin failed to load",
            PodState::NoLine => "no line since the plugin's last change",
            PodState::Stale => "latest line older than the plugin's last change",
            PodState::Running => "running the plugin",
            PodState::NotRead => "not read (outside the sample)",
        }
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct PodCheck {
    #[serde(flatten)]
    pub pod: PodView,
    pub state: PodState,
    pub wasm_info_logged: bool,
    /// The latest line about the plugin in the pod's istio-proxy log.
    pub latest: Option<Latest>,
    /// Envoy's name for the plugin in this pod, as the module's latest line shows it.
    pub envoy_name: Option<String>,
    /// What the pod's Envoy runs in the plugin's place (its admin, through a port-forward).
    pub envoy: Option<super::admin::Running>,
    /// Why Envoy's admin could not be read (not a problem: it may be unreachable by policy).
    pub envoy_error: Option<String>,
    pub log_error: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Latest {
    pub kind: Kind,
    pub line: String,
    /// Written before the plugin's last change, so about an earlier version of it.
    pub stale: bool,
    /// For a load error: what the module itself said (e.g. why it refused its pluginConfig).
    pub reason: Option<String>,
}

pub async fn check_image(plugin: &Plugin, options: &oci::Options) -> ImageCheck {
    if plugin.is_lua() {
        // A Lua TrafficExtension carries its code inline: there is no image to check.
        return ImageCheck {
            url: "(inline Lua, no image)".into(),
            ..ImageCheck::default()
        };
    }
    let url = plugin.fetch_url();
    let mut check = ImageCheck {
        url: url.clone(),
        pinned: plugin.expected_sha256(),
        ..ImageCheck::default()
    };
    if url.starts_with("file://") {
        check.error = Some(format!(
            "{url} names a file on each node, which is not checked from here"
        ));
        return check;
    }
    if !url.starts_with("oci://") {
        // A plain module: fetched as the agent would, its bytes' sha256 is what is pinned.
        match super::download::http_module(&url, &options.transport).await {
            Ok((module, checksum)) => {
                check.reachable = Some(true);
                let valid = module.len() >= 8 && module.starts_with(b"\0asm");
                check.istio_compatible = Some(valid);
                check.layout = Some(if valid {
                    "a plain wasm module".into()
                } else {
                    "not a wasm module (no \\0asm magic)".into()
                });
                check.digest = Some(format!("sha256:{checksum}"));
                check.matches_pin = check.pinned.as_ref().map(|pinned| *pinned == checksum);
            }
            Err(reason) => {
                check.reachable = Some(false);
                check.error = Some(reason);
            }
        }
        return check;
    }
    let fetched = match ImageRef::parse(&url) {
        Ok(reference) => oci::fetch(&reference, options).await,
        Err(err) => Err(err),
    };
    match fetched {
        Err(err) => {
            check.reachable = Some(false);
            check.error = Some(err.to_string());
        }
        Ok(fetched) => {
            check.reachable = Some(true);
            let hex = fetched
                .manifest_digest
                .strip_prefix("sha256:")
                .unwrap_or(&fetched.manifest_digest)
                .to_string();
            check.digest = Some(fetched.manifest_digest.clone());
            match &fetched.verdict {
                Verdict::Compatible(layout) => {
                    check.istio_compatible = Some(true);
                    check.layout = Some(layout.to_string());
                }
                Verdict::Rejected(reason) => {
                    check.istio_compatible = Some(false);
                    check.layout = Some(reason.clone());
                }
            }
            check.matches_pin = check.pinned.as_ref().map(|pinned| *pinned == hex);
        }
    }
    check
}

/// The latest line about the plugin in the pod's sidecar log.
pub async fn latest_line(
    cluster: &Cluster,
    plugin: &Plugin,
    pod: &str,
) -> Result<Option<Latest>, String> {
    let window = LogWindow {
        tail_lines: Some(SEARCH_LINES),
        since_time: plugin.changed_at,
        ..LogWindow::default()
    };
    let read = async {
        let mut stream = pods::proxy_log(&cluster.client, &plugin.namespace, pod, &window)
            .await
            .map_err(|err| err.to_string())?;
        let mut text = String::new();
        stream
            .read_to_string(&mut text)
            .await
            .map_err(|err| format!("reading the istio-proxy log: {err}"))?;
        Ok::<_, String>(text)
    };
    let text = tokio::time::timeout(crate::cluster::connect::REQUEST_TIMEOUT, read)
        .await
        .map_err(|_| "no answer reading the istio-proxy log".to_string())??;
    Ok(latest_of(&text, plugin))
}

/// The newest entry about the plugin in a log's text (with its continuation lines), and for a
/// load error the module's own reason when it logged one just before.
fn latest_of(text: &str, plugin: &Plugin) -> Option<Latest> {
    let matcher = logline::Matcher::for_plugin(plugin);
    let lines: Vec<&str> = text.lines().collect();
    let at = lines
        .iter()
        .rposition(|line| matcher.classify(line).is_some())?;
    let kind = matcher.classify(lines[at])?;
    let continued = lines[at + 1..]
        .iter()
        .take_while(|line| logline::is_continuation(line))
        .map(|line| line.trim());
    let line = std::iter::once(lines[at].trim_end())
        .chain(continued)
        .collect::<Vec<_>>()
        .join(" ");
    // Envoy's "Plugin <name> failed to load" follows the module's own line saying why.
    let reason = (kind == Kind::LoadError)
        .then(|| {
            lines[..=at].iter().rev().take(20).find_map(|line| {
                line.split_once("wasm log ")
                    .filter(|_| matcher.classify(line) == Some(Kind::LoadError))
                    .and_then(|(_, rest)| rest.split_once(": "))
                    .map(|(_, message)| message.split('\t').next().unwrap_or(message).to_string())
            })
        })
        .flatten();
    Some(Latest {
        kind,
        stale: matches!(
            (logline::line_time(&line), plugin.changed_at),
            (Some(written), Some(changed)) if written < changed
        ),
        line,
        reason,
    })
}

/// `max_log_requests`: how many pods' logs are read at once.
/// How long one pod's Envoy admin may take (a port-forward and a config dump).
const ADMIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// Envoy's admin is read for this many selected pods at most: a port-forward per pod costs
/// far more than a log read, and a few pods answer "what runs there" for a rollout.
pub const ENVOY_READ_LIMIT: usize = 20;

/// What the pod's Envoy runs for the plugin, within [`ADMIN_TIMEOUT`].
async fn envoy_running(
    cluster: &Cluster,
    plugin: &Plugin,
    pod: &str,
) -> Result<super::admin::Running, String> {
    tokio::time::timeout(
        ADMIN_TIMEOUT,
        super::admin::running_in_pod(
            &cluster.client,
            &plugin.namespace,
            pod,
            &plugin.envoy_name(),
        ),
    )
    .await
    .unwrap_or_else(|_| Err("Envoy's admin did not answer in time".into()))
}

/// What is wrong with what a pod's Envoy runs in the plugin's place, if anything.
fn envoy_problem(pod: &str, running: &super::admin::Running, image: &ImageCheck) -> Option<String> {
    use super::admin::Running;
    match running {
        Running::Loaded {
            digest: Some(digest),
            ..
        } => {
            let pinned = image.pinned.as_ref()?;
            let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
            (hex != pinned).then(|| {
                format!(
                    "pod {pod}: Envoy runs the module of {digest}, not the pinned sha256 {pinned}; the sidecar has not taken the change yet, or could not fetch it (see its log)"
                )
            })
        }
        Running::Loaded { .. } | Running::Absent => None,
        Running::DenyAll { .. } => Some(format!(
            "pod {pod}: Envoy has Istio's deny-all filter in the plugin's place (the module could not be fetched, FAIL_CLOSE): every request gets 403"
        )),
        Running::AllowAll { .. } => Some(format!(
            "pod {pod}: Envoy has Istio's allow-all filter in the plugin's place (the module could not be fetched, FAIL_OPEN): requests pass without the plugin"
        )),
    }
}

/// How much of a fleet `report` reads.
#[derive(Debug, Clone, Copy)]
pub struct Reading {
    /// How many pods' logs are read at once.
    pub max_log_requests: usize,
    /// At most this many running pods' logs are read ([`super::sample::choose`]); 0: all.
    pub sample: usize,
}

pub async fn report(
    cluster: &Cluster,
    plugin: Plugin,
    options: &oci::Options,
    reading: Reading,
) -> Report {
    let mut problems = Vec::new();
    let mut notes = Vec::new();
    let image = check_image(&plugin, options).await;
    if let Some(error) = &image.error {
        if image.reachable == Some(false) {
            problems.push(format!("image {}: {error}", image.url));
        } else {
            notes.push(error.clone());
        }
    }
    let oci = image.url.starts_with("oci://");
    if image.istio_compatible == Some(false) {
        problems.push(format!(
            "image {} is not loadable by Istio: {}; re-push it with `deployer push` (or serve a wasm module there)",
            image.url,
            image.layout.clone().unwrap_or_default()
        ));
    }
    if image.matches_pin == Some(false) {
        problems.push(format!(
            "checksum mismatch: the WasmPlugin pins sha256 {} but {} has {} {} ({}, and the sidecars refuse the module); {}",
            image.pinned.clone().unwrap_or_default(),
            image.url,
            if oci { "manifest digest" } else { "module sha256" },
            image.digest.clone().unwrap_or_default(),
            if oci {
                "Istio compares sha256 with the image manifest's digest"
            } else {
                "Istio compares sha256 with the downloaded module's"
            },
            if oci {
                "re-apply with `deployer apply` to pin the image as it is now"
            } else {
                "set --sha256 to the module's, or serve the module that was pinned"
            }
        ));
    }
    let selector = select::describe_selector(&plugin);
    let mut listed = false;
    let (selected, not_selected) = if plugin.targets_workloads() {
        match pods::list_pods(cluster, &plugin.namespace).await {
            Ok(all) => {
                listed = true;
                let selection = select::select(&plugin, &all);
                (selection.selected, selection.not_selected)
            }
            Err(err) => {
                problems.push(format!("cannot list the pods: {err}"));
                (Vec::new(), 0)
            }
        }
    } else {
        notes.push(format!(
            "attached through {selector}: gateways and services, not sidecar pods; their pods are not checked here"
        ));
        (Vec::new(), 0)
    };
    let every_pod = plugin
        .selector
        .as_ref()
        .is_none_or(|labels| labels.is_empty());
    if plugin.targets_workloads() && selected.is_empty() && listed {
        problems.push(if every_pod {
            format!(
                "namespace {} has no pod, and the plugin (no selector) runs on every pod there; deploy the workload there",
                plugin.namespace
            )
        } else {
            format!(
                "no pod in namespace {} matches selector {selector} ({not_selected} pod(s) there); fix the selector (deployer apply --selector) or the pods' labels",
                plugin.namespace
            )
        });
    }
    // The sampled pods' logs (and, for the first of them, Envoy's admin) are read concurrently
    // (bounded), the results handled in pod order.
    let chosen = super::sample::choose(&selected, reading.sample);
    let mut rank: Vec<Option<usize>> = vec![None; selected.len()];
    for (position, &index) in chosen.iter().enumerate() {
        rank[index] = Some(position);
    }
    type Read = (
        Result<Option<Latest>, String>,
        Option<Result<super::admin::Running, String>>,
    );
    let reads: Vec<Option<Read>> = futures::stream::iter(selected.iter().zip(&rank))
        .map(|(pod, rank)| {
            let plugin = &plugin;
            async move {
                let position = (*rank)?;
                let latest = latest_line(cluster, plugin, &pod.name).await;
                let envoy = if position < ENVOY_READ_LIMIT {
                    Some(envoy_running(cluster, plugin, &pod.name).await)
                } else {
                    None
                };
                Some((latest, envoy))
            }
        })
        .buffered(reading.max_log_requests.max(1))
        .collect()
        .await;
    let running_pods = selected
        .iter()
        .filter(|pod| pod.has_proxy && pod.phase == "Running")
        .count();
    if chosen.len() < running_pods {
        notes.push(format!(
            "the sidecar logs of {} of {running_pods} running pods were read: a sample with pods of every controller, node, proxy image and log level, restarted or unready sidecars first (--sample 0 reads every pod)",
            chosen.len()
        ));
    }
    if chosen.len() > ENVOY_READ_LIMIT {
        notes.push(format!(
            "Envoy's admin was read for {ENVOY_READ_LIMIT} of the {} pods whose logs were read",
            chosen.len()
        ));
    }
    let mut checks = Vec::new();
    for ((pod, read), rank) in selected.into_iter().zip(reads).zip(rank) {
        let (read, envoy) = match read {
            Some((latest, envoy)) => (Some(latest), envoy),
            None => (None, None),
        };
        if let Some(Ok(running)) = &envoy
            && let Some(problem) = envoy_problem(&pod.name, running, &image)
        {
            problems.push(problem);
        }
        let mut check = PodCheck {
            wasm_info_logged: pod.logs_wasm_info(),
            state: PodState::NoLine,
            pod,
            latest: None,
            envoy_name: None,
            envoy: None,
            envoy_error: None,
            log_error: None,
        };
        match envoy {
            Some(Ok(running)) => check.envoy = Some(running),
            Some(Err(err)) => check.envoy_error = Some(err),
            None => {}
        }
        if !check.pod.has_proxy {
            problems.push(format!(
                "pod {} has no istio-proxy container: it is not in the mesh, so the plugin does not run there (label the namespace istio-injection=enabled and restart the pod)",
                check.pod.name
            ));
        } else if check.pod.phase != "Running" {
            problems.push(format!(
                "pod {} is {}, not Running",
                check.pod.name, check.pod.phase
            ));
        } else if rank.is_some() {
            match read.unwrap_or(Ok(None)) {
                Ok(latest) => {
                    check.envoy_name = latest
                        .as_ref()
                        .filter(|l| l.kind == Kind::WasmLog)
                        .and_then(|l| logline::logged_plugin_name(&l.line))
                        .map(str::to_string);
                    check.latest = latest;
                }
                Err(err) => {
                    problems.push(format!(
                        "cannot read the istio-proxy log of pod {}, so whether the plugin runs there is unknown: {err}",
                        check.pod.name
                    ));
                    check.log_error = Some(err);
                }
            }
            match &check.latest {
                Some(Latest { stale: true, .. }) => notes.push(format!(
                    "pod {}: its latest line about the plugin predates the plugin's last change{}; send traffic through the pod for news",
                    check.pod.name,
                    plugin
                        .changed_at
                        .map(|t| format!(" ({})", logline::istio_time(t)))
                        .unwrap_or_default()
                )),
                Some(Latest {
                    kind: Kind::FetchError,
                    line,
                    ..
                }) => problems.push(format!(
                    "pod {}: the sidecar could not fetch the module: {}",
                    check.pod.name,
                    line.split(logline::FETCH_ERROR_PREFIX).nth(1).unwrap_or(line)
                )),
                Some(Latest {
                    kind: Kind::LoadError,
                    line,
                    reason,
                    ..
                }) => problems.push(format!(
                    "pod {}: Envoy could not load the plugin: {}{}",
                    check.pod.name,
                    line.split('\t').nth(3).unwrap_or(line),
                    reason
                        .as_ref()
                        .map(|r| format!(" (the module said: {r})"))
                        .unwrap_or_default()
                )),
                None if !check.wasm_info_logged && check.log_error.is_none() => notes.push(format!(
                    "pod {}: no wasm log line seen; its sidecar logs wasm below info (add the pod annotation sidecar.istio.io/componentLogLevel: wasm:info, or `istioctl proxy-config log {} --level wasm:info`)",
                    check.pod.name, check.pod.name
                )),
                _ => {}
            }
        }
        check.state = if !check.pod.has_proxy {
            PodState::NotMeshed
        } else if check.pod.phase != "Running" {
            PodState::NotRunning
        } else if rank.is_none() {
            PodState::NotRead
        } else if check.log_error.is_some() {
            PodState::LogUnreadable
        } else {
            match &check.latest {
                None => PodState::NoLine,
                Some(Latest { stale: true, .. }) => PodState::Stale,
                Some(Latest {
                    kind: Kind::FetchError,
                    ..
                }) => PodState::FetchError,
                Some(Latest {
                    kind: Kind::LoadError,
                    ..
                }) => PodState::LoadError,
                Some(_) => PodState::Running,
            }
        };
        checks.push(check);
    }
    Report {
        context: cluster.context.clone(),
        plugin,
        selector,
        image,
        pods: checks,
        pods_not_selected: not_selected,
        problems,
        notes,
    }
}
