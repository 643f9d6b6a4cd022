//! The local lab as a test component: `deployer local` running as a child on its own free
//! port with its own TMPDIR, its output collected line by line, and a Drop guard that kills
//! it and everything it started (found through /proc), so a failing test leaves nothing behind.
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::tools;

/// Generous: a cold V8 start of the module on a busy 2-core machine.
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Lines a child wrote so far, shared with the thread that reads them.
#[derive(Clone, Default)]
pub struct Output(Arc<Mutex<Vec<String>>>);

impl Output {
    fn collect(self, stream: impl Read + Send + 'static) -> std::thread::JoinHandle<()> {
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                self.0.lock().expect("output lock").push(line);
            }
        })
    }

    pub fn lines(&self) -> Vec<String> {
        self.0.lock().expect("output lock").clone()
    }

    pub fn text(&self) -> String {
        self.lines().join("\n")
    }

    /// Waits until `needle` appears on `count` lines (or the timeout passes); returns the count.
    pub fn wait_for(&self, needle: &str, count: usize, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        loop {
            let seen = self.count(needle);
            if seen >= count || Instant::now() >= deadline {
                return seen;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Lines containing `needle`.
    pub fn count(&self, needle: &str) -> usize {
        self.lines()
            .iter()
            .filter(|line| line.contains(needle))
            .count()
    }
}

/// A running `deployer local`.
pub struct Lab {
    child: Child,
    pub port: u16,
    pub stdout: Output,
    pub stderr: Output,
    readers: Vec<std::thread::JoinHandle<()>>,
    /// TMPDIR of the deployer: its work dir (config, func-e state) lives below it.
    pub tmp: tempfile::TempDir,
    /// What the deployer had started once it was ready (func-e, Envoy).
    pub started: Vec<u32>,
}

impl Lab {
    /// Starts `deployer local --port <free port> <args>` and waits for its ready line.
    pub fn start(args: &[&str]) -> Lab {
        Self::start_with(args, &[])
    }

    pub fn start_with(args: &[&str], env: &[(&str, &str)]) -> Lab {
        let mut lab = Self::spawn(args, env);
        lab.wait_ready();
        lab
    }

    /// Starts it without waiting (for tests of start-up failures use `finish`).
    pub fn spawn(args: &[&str], env: &[(&str, &str)]) -> Lab {
        let port = tools::free_port();
        let tmp = tempfile::Builder::new()
            .prefix("lab-test-")
            .tempdir()
            .expect("temp dir");
        let mut command = Command::new(deployer_path());
        command
            .arg("local")
            .arg("--port")
            .arg(port.to_string())
            .args(args)
            .env("TMPDIR", tmp.path())
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("spawn deployer local");
        let stdout = Output::default();
        let stderr = Output::default();
        let readers = vec![
            stdout
                .clone()
                .collect(child.stdout.take().expect("piped stdout")),
            stderr
                .clone()
                .collect(child.stderr.take().expect("piped stderr")),
        ];
        Lab {
            child,
            port,
            stdout,
            stderr,
            readers,
            tmp,
            started: Vec::new(),
        }
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        while self.stdout.count("lab ready") == 0 {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "deployer local exited ({status}) before ready:\n{}",
                    self.stderr.text()
                );
            }
            assert!(
                Instant::now() < deadline,
                "deployer local not ready after {READY_TIMEOUT:?}:\n{}",
                self.stderr.text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        self.started = descendants(self.child.id());
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until `needle` appears `count` times on stdout (or the timeout passes).
    pub fn wait_for(&self, needle: &str, count: usize, timeout: Duration) -> usize {
        self.stdout.wait_for(needle, count, timeout)
    }

    /// Sends `signal` to the deployer and waits for it to exit.
    pub fn signal(&mut self, signal: i32) -> ExitStatus {
        let pid = i32::try_from(self.child.id()).expect("pid fits");
        // SAFETY: plain syscall on our own, unreaped child.
        unsafe { libc::kill(pid, signal) };
        self.finish(Duration::from_secs(30))
    }

    /// Waits for the deployer to exit and for its output to be fully read.
    pub fn finish(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait deployer") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "deployer did not exit within {timeout:?}:\n{}",
                self.stderr.text()
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        for reader in self.readers.drain(..) {
            reader.join().expect("output reader");
        }
        status
    }

    /// Processes still alive that this lab started, or that mention its TMPDIR (work dir,
    /// config path) on their command line.
    pub fn leftovers(&self) -> Vec<String> {
        let mut left: Vec<String> = self
            .started
            .iter()
            .filter_map(|&pid| alive(pid).map(|cmdline| format!("{pid}: {cmdline}")))
            .collect();
        for (pid, cmdline) in processes() {
            if cmdline.contains(&*self.tmp.path().to_string_lossy())
                && !left.iter().any(|l| l.starts_with(&format!("{pid}:")))
            {
                left.push(format!("{pid}: {cmdline}"));
            }
        }
        left
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let mut pids = descendants(self.child.id());
        pids.extend(self.started.iter().copied());
        for pid in pids {
            if alive(pid).is_some() {
                // SAFETY: plain syscall; the pid was seen as a descendant of our child.
                unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn deployer_path() -> PathBuf {
    assert_cmd::cargo::cargo_bin("deployer")
}

/// All processes below `pid` (children, grandchildren, ...), from /proc.
pub fn descendants(pid: u32) -> Vec<u32> {
    let table: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|p| Some((p, parent_of(p)?)))
        .collect();
    let mut found = vec![pid];
    let mut index = 0;
    while index < found.len() {
        let parent = found[index];
        found.extend(
            table
                .iter()
                .filter(|(_, ppid)| *ppid == parent)
                .map(|(p, _)| *p),
        );
        index += 1;
    }
    found.remove(0);
    found
}

fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (2nd field) may contain spaces: the fields after its ')' are fixed.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// The command line of a live (not zombie) process.
pub fn alive(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let state = stat[stat.rfind(')')? + 2..].chars().next()?;
    if state == 'Z' || state == 'X' {
        return None;
    }
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(
        String::from_utf8_lossy(&cmdline)
            .replace('\0', " ")
            .trim()
            .to_string(),
    )
}

fn processes() -> Vec<(u32, String)> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| Some((pid, alive(pid)?)))
        .collect()
}

/// A plain HTTP/1.1 GET on 127.0.0.1:`port`: status and body.
pub fn http_get(port: u16, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the lab listener");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .expect("send request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read response");
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default();
    (status, body)
}

/// One TCP connection: sends `data` and reads as many bytes back (the lab echoes).
pub fn tcp_roundtrip(port: u16, data: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the lab listener");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    stream.write_all(data).expect("send");
    let mut echoed = vec![0; data.len()];
    stream.read_exact(&mut echoed).expect("read the echo");
    echoed
}

/// Writes `text` to `name` in `dir` and returns the path.
pub fn write_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write test file");
    path
}
