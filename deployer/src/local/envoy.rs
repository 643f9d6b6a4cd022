//! Supervising the lab's Envoy (through func-e or directly): start it in its own process
//! group, turn its output into lines, notice when it is ready or gone, and stop it.
use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::Child;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep, timeout};

use super::LocalError;
use super::tools::Launch;
use crate::process::{self, Pid, Signal};

/// How many of the most recent lines are kept to explain an exit.
const RECENT_LINES: usize = 400;
/// How long output is still collected after the process exited, for the explanation.
const DRAIN: Duration = Duration::from_secs(2);
const POLL: Duration = Duration::from_millis(20);

/// One line Envoy or func-e wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub text: String,
}

impl Line {
    /// A line a module logged through proxy_log (Envoy's `wasm` logger).
    pub fn is_wasm_log(&self) -> bool {
        self.text.contains("wasm log")
    }
}

/// What happened next in the lab.
#[derive(Debug)]
pub enum Event {
    /// Envoy's admin says the server is live and the lab listener is bound.
    Ready {
        admin: SocketAddr,
    },
    Line(Line),
    /// The process is gone (or never got ready); the error explains with Envoy's own words.
    Failed(LocalError),
}

type ReadyFuture = Pin<Box<dyn Future<Output = Option<SocketAddr>> + Send>>;

/// A running lab process (func-e, or Envoy when func-e is missing), leader of its own
/// process group so that stopping it reaches Envoy too.
pub struct Running {
    child: Child,
    pid: Option<Pid>,
    program: PathBuf,
    lines: mpsc::UnboundedReceiver<Line>,
    lines_open: bool,
    recent: VecDeque<String>,
    ready: Option<ReadyFuture>,
    ready_timeout: Duration,
    became_ready: bool,
    exited: Option<(ExitStatus, Instant)>,
}

impl Running {
    /// Starts the launch; `admin_address_file` is where Envoy writes its admin address,
    /// `listener_port` is the port that must be bound before the lab counts as ready.
    pub fn start(
        launch: &Launch,
        admin_address_file: PathBuf,
        listener_port: u16,
        ready_timeout: Duration,
    ) -> Result<Self, LocalError> {
        let mut command = tokio::process::Command::new(&launch.program);
        command
            .args(&launch.args)
            .envs(launch.env.iter().map(|(key, value)| (key, value)))
            // FUNC_E_HOME switches func-e to legacy paths that would override the dirs above.
            .env_remove("FUNC_E_HOME")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own group: a terminal's Ctrl+C reaches only us, and we decide the order.
            .process_group(0)
            .kill_on_drop(true);
        // If the deployer dies without cleaning up (kill -9), the child goes too; func-e does
        // the same for Envoy.
        process::die_with_parent(command.as_std_mut(), Signal::KILL);
        let mut child = command.spawn().map_err(|source| LocalError::Spawn {
            program: launch.program.clone(),
            source,
        })?;
        // A freshly spawned child always has an id; `None` (no pid we may signal) is
        // "nothing to signal" in stop() and Drop.
        let pid = child.id().and_then(Pid::new);
        let (sender, lines) = mpsc::unbounded_channel();
        if let Some(stdout) = child.stdout.take() {
            tokio::spawn(forward_lines(stdout, sender.clone()));
        }
        if let Some(stderr) = child.stderr.take() {
            tokio::spawn(forward_lines(stderr, sender));
        }
        Ok(Running {
            child,
            pid,
            program: launch.program.clone(),
            lines,
            lines_open: true,
            recent: VecDeque::with_capacity(RECENT_LINES),
            ready: Some(Box::pin(timeout_ready(
                admin_address_file,
                listener_port,
                ready_timeout,
            ))),
            ready_timeout,
            became_ready: false,
            exited: None,
        })
    }

    /// The process id, 0 when there is none to signal.
    pub fn pid(&self) -> i32 {
        self.pid.map_or(0, Pid::raw)
    }

    /// The next thing that happened. After `Event::Failed` the process is gone.
    pub async fn next(&mut self) -> Event {
        loop {
            if let Some((status, since)) = self.exited {
                // Collect what it said last, but not forever: a grandchild may hold the pipe.
                let line = if self.lines_open {
                    tokio::time::timeout_at(since + DRAIN, self.lines.recv())
                        .await
                        .ok()
                        .flatten()
                } else {
                    None
                };
                match line {
                    Some(line) => return self.remember(line),
                    None => {
                        self.lines_open = false;
                        return Event::Failed(self.exit_error(status));
                    }
                }
            }
            tokio::select! {
                line = self.lines.recv(), if self.lines_open => match line {
                    Some(line) => return self.remember(line),
                    None => self.lines_open = false,
                },
                status = self.child.wait() => {
                    let status = status.unwrap_or_else(|_| std::os::unix::process::ExitStatusExt::from_raw(0));
                    self.exited = Some((status, Instant::now()));
                }
                ready = poll_ready(&mut self.ready), if self.ready.is_some() => {
                    self.ready = None;
                    match ready {
                        Some(admin) => {
                            self.became_ready = true;
                            return Event::Ready { admin };
                        }
                        None => return Event::Failed(LocalError::NotReady {
                            within: crate::duration::format(self.ready_timeout),
                            reason: self.reason(),
                        }),
                    }
                }
            }
        }
    }

    /// Stops the process: SIGTERM to the leader (func-e stops Envoy; Envoy shuts down),
    /// then SIGKILL to the whole group if it is still there after `grace`.
    pub async fn stop(mut self, grace: Duration) -> Result<(), LocalError> {
        let (None, Some(pid)) = (self.exited, self.pid) else {
            return Ok(());
        };
        // A pid we spawned and have not reaped: no other process can have it. Failing to
        // signal means it is already gone, which wait() then reports.
        let _ = pid.signal(Signal::TERM);
        let status = match timeout(grace, self.child.wait()).await {
            Ok(status) => status,
            Err(_) => {
                // The unreaped leader keeps the group id ours.
                let _ = pid.signal_group(Signal::KILL);
                self.child.wait().await
            }
        };
        let status = status.map_err(|source| LocalError::Wait {
            program: self.program.clone(),
            source,
        })?;
        self.exited = Some((status, Instant::now()));
        Ok(())
    }

    fn remember(&mut self, line: Line) -> Event {
        if self.recent.len() == RECENT_LINES {
            self.recent.pop_front();
        }
        self.recent.push_back(line.text.clone());
        Event::Line(line)
    }

    fn exit_error(&self, status: ExitStatus) -> LocalError {
        let status = describe(status);
        if self.became_ready {
            LocalError::EnvoyStopped {
                status,
                reason: self.reason(),
            }
        } else {
            LocalError::EnvoyRefused {
                status,
                reason: self.reason(),
            }
        }
    }

    /// Envoy's explanation: its error and critical lines and what the module logged, else
    /// the last lines it wrote.
    fn reason(&self) -> String {
        explain(self.recent.iter().map(String::as_str))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let (None, Some(pid)) = (self.exited, self.pid) {
            // Whatever path led here (error, panic), leave no Envoy behind. The leader is
            // unreaped, so the group id cannot belong to anyone else.
            let _ = pid.signal_group(Signal::KILL);
        }
    }
}

pub fn explain<'a>(lines: impl Iterator<Item = &'a str> + Clone) -> String {
    const KEEP: usize = 20;
    let telling: Vec<&str> = lines
        .clone()
        .filter(|line| {
            line.contains("][error][")
                || line.contains("][critical][")
                || line.contains("wasm log")
                // func-e's own messages (not Envoy's bracketed log lines), minus its banner.
                || (!line.starts_with('[')
                    && !line.starts_with("starting:")
                    // func-e's own admin poller losing the race with Envoy's exit.
                    && !line.contains("Envoy admin URL")
                    && !line.trim().is_empty())
        })
        .collect();
    let chosen: Vec<&str> = if telling.is_empty() {
        lines.collect()
    } else {
        telling
    };
    let skip = chosen.len().saturating_sub(KEEP);
    let text = chosen[skip..]
        .iter()
        .map(|line| format!("  {}", tidy(line)))
        .collect::<Vec<_>>()
        .join("\n");
    if text.is_empty() {
        "  (Envoy printed nothing)".to_string()
    } else {
        text
    }
}

/// Envoy's `[time][thread][level][logger] [file:line] message` as `[level][logger] message`:
/// time and source location say nothing to someone reading why Envoy refused.
fn tidy(line: &str) -> String {
    fn group(text: &str) -> Option<(&str, &str)> {
        let (inside, rest) = text.strip_prefix('[')?.split_once(']')?;
        Some((inside, rest))
    }
    let parsed = (|| {
        let (_time, rest) = group(line)?;
        let (_thread, rest) = group(rest)?;
        let (level, rest) = group(rest)?;
        let (logger, rest) = group(rest)?;
        let message = rest.trim_start();
        let message = group(message).map_or(message, |(_source, after)| after.trim_start());
        Some(format!("[{level}][{logger}] {message}"))
    })();
    parsed.unwrap_or_else(|| line.to_string())
}

fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => status.to_string(),
    }
}

async fn poll_ready(ready: &mut Option<ReadyFuture>) -> Option<SocketAddr> {
    match ready {
        Some(future) => future.await,
        None => std::future::pending().await,
    }
}

async fn forward_lines(stream: impl AsyncRead + Unpin, sender: mpsc::UnboundedSender<Line>) {
    let mut reader = BufReader::new(stream);
    let mut buffer = Vec::new();
    loop {
        buffer.clear();
        match reader.read_until(b'\n', &mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let text = String::from_utf8_lossy(&buffer)
                    .trim_end_matches(['\n', '\r'])
                    .to_string();
                if sender.send(Line { text }).is_err() {
                    return;
                }
            }
        }
    }
}

async fn timeout_ready(
    admin_address_file: PathBuf,
    port: u16,
    limit: Duration,
) -> Option<SocketAddr> {
    timeout(limit, wait_ready(admin_address_file, port))
        .await
        .ok()
}

/// Ready means: Envoy wrote its admin address, the admin says LIVE (listeners are bound and
/// workers started), and the lab listener is among the bound ones. Nothing is sent to the lab
/// listener itself, so no request or connection reaches the module before the user's.
async fn wait_ready(admin_address_file: PathBuf, port: u16) -> SocketAddr {
    let bound = format!(":{port}");
    loop {
        if let Some(admin) = read_admin_address(&admin_address_file).await {
            let live = matches!(http_get(admin, "/ready").await, Some((200, _)));
            if live
                && let Some((200, listeners)) = http_get(admin, "/listeners").await
                && listeners
                    .lines()
                    .any(|line| line.trim_end().ends_with(&bound))
            {
                return admin;
            }
        }
        sleep(POLL).await;
    }
}

async fn read_admin_address(path: &std::path::Path) -> Option<SocketAddr> {
    let text = tokio::fs::read_to_string(path).await.ok()?;
    text.trim().parse().ok()
}

/// A minimal HTTP/1.1 GET for Envoy's admin endpoint (loopback, `Connection: close`).
pub async fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.ok()?;
        let response = String::from_utf8_lossy(&response).into_owned();
        let status = response.split_whitespace().nth(1)?.parse().ok()?;
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, body)| body.to_string())
            .unwrap_or_default();
        Some((status, body))
    };
    timeout(Duration::from_secs(2), exchange)
        .await
        .ok()
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explanation_keeps_errors_and_module_lines() {
        let lines = [
            "starting: /bin/envoy with logs in /tmp/x",
            "[2026-01-01 00:00:00.000][1][info][main] [server.cc:1] loading",
            "[2026-01-01 00:00:00.000][1][error][wasm] [context.cc:1157] wasm log: bad config",
            "[2026-01-01 00:00:00.000][1][critical][main] [server.cc:449] error initializing config",
            "Unable to create Wasm plugin lab",
            "error Envoy admin URL http://127.0.0.1:1/ready: connection refused",
        ];
        let text = explain(lines.iter().copied());
        assert!(text.contains("wasm log: bad config"), "{text}");
        assert!(text.contains("Unable to create Wasm plugin lab"), "{text}");
        assert!(!text.contains("loading"), "{text}");
        assert!(!text.contains("admin URL"), "{text}");
        assert!(!text.contains("starting:"), "{text}");
        assert!(
            text.contains("  [error][wasm] wasm log: bad config\n"),
            "{text}"
        );
    }

    #[test]
    fn explanation_falls_back_to_the_last_lines() {
        let lines = ["[x][1][info][main] one", "[x][1][info][main] two"];
        assert!(explain(lines.iter().copied()).contains("two"));
        assert!(explain(std::iter::empty()).contains("nothing"));
    }

    fn shell(script: &str) -> Launch {
        Launch {
            program: PathBuf::from("/bin/sh"),
            args: vec!["-c".into(), script.into()],
            env: Vec::new(),
            via_func_e: false,
        }
    }

    fn never_ready() -> PathBuf {
        PathBuf::from("/nonexistent/admin-address")
    }

    #[tokio::test]
    async fn an_exit_before_ready_is_a_refusal_with_what_was_said() {
        let launch = shell("echo '[t][1][critical][main] [server.cc:1] boom' >&2; exit 3");
        let mut running =
            Running::start(&launch, never_ready(), 1, Duration::from_secs(30)).unwrap();
        let mut lines = Vec::new();
        let err = loop {
            match running.next().await {
                Event::Line(line) => lines.push(line.text),
                Event::Failed(err) => break err,
                Event::Ready { .. } => panic!("not ready"),
            }
        };
        assert_eq!(lines.len(), 1);
        match err {
            LocalError::EnvoyRefused { status, reason } => {
                assert_eq!(status, "exit status 3");
                assert_eq!(reason, "  [critical][main] boom");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[tokio::test]
    async fn not_ready_in_time_is_reported() {
        let launch = shell("sleep 30");
        let mut running =
            Running::start(&launch, never_ready(), 1, Duration::from_millis(50)).unwrap();
        assert!(matches!(
            running.next().await,
            Event::Failed(LocalError::NotReady { .. })
        ));
        running.stop(Duration::from_secs(5)).await.unwrap();
    }

    #[tokio::test]
    async fn stop_kills_the_whole_group_when_sigterm_is_ignored() {
        // The leader ignores SIGTERM and has a child: both must be gone after stop.
        let launch = shell("trap '' TERM; sleep 30 & echo $!; wait");
        let mut running =
            Running::start(&launch, never_ready(), 1, Duration::from_secs(30)).unwrap();
        let grandchild: i32 = match running.next().await {
            Event::Line(line) => line.text.trim().parse().unwrap(),
            other => panic!("unexpected {other:?}"),
        };
        running.stop(Duration::from_millis(200)).await.unwrap();
        // SIGKILL is delivered asynchronously: give the kernel a moment to end the sleep, which
        // is then reaped by init (or is a zombie awaiting it).
        let process_state = || {
            let stat =
                std::fs::read_to_string(format!("/proc/{grandchild}/stat")).unwrap_or_default();
            stat.rsplit(')')
                .next()
                .unwrap_or_default()
                .trim_start()
                .chars()
                .next()
        };
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut state = process_state();
        while !matches!(state, None | Some('Z') | Some('X')) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
            state = process_state();
        }
        assert!(
            matches!(state, None | Some('Z') | Some('X')),
            "sleep {grandchild} still running: {state:?}"
        );
    }

    #[test]
    fn wasm_log_lines_are_recognised() {
        let line = Line {
            text: "[t][1][info][wasm] [context.cc:1151] wasm log lab: NewHttpContext".into(),
        };
        assert!(line.is_wasm_log());
        assert!(
            !Line {
                text: "[t][1][info][main] starting main dispatch loop".into()
            }
            .is_wasm_log()
        );
    }
}
