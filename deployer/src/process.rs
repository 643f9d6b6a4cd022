//! Child processes the deployer (and local-mesh) start: tied to our lifetime, and signalled
//! only through a pid that cannot reach anything but the child. `kill(0)`, `kill(-1)` and
//! `killpg(1)` reach our own group or every process we may signal, so a pid of 0, 1 or below
//! (an unset field, a failed conversion) must never get as far as the syscall.
use std::process::Command;

pub use rustix::process::Signal;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot send signal {signal} to {what} {pid}: {source}")]
    Signal {
        what: &'static str,
        pid: i32,
        signal: i32,
        source: std::io::Error,
    },
}

/// A process id that may be signalled: above 1, so never our group (0), init (1), or "every
/// process" (-1); and a process group id is the same number, signalled through `killpg`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pid(rustix::process::Pid);

impl Pid {
    /// `None` for anything at or below 1, or beyond a pid's range.
    pub fn new(raw: impl TryInto<i32>) -> Option<Self> {
        let raw: i32 = raw.try_into().ok()?;
        if raw <= 1 {
            return None;
        }
        rustix::process::Pid::from_raw(raw).map(Self)
    }

    pub fn raw(self) -> i32 {
        self.0.as_raw_nonzero().get()
    }

    /// `kill(pid, signal)`.
    pub fn signal(self, signal: Signal) -> Result<(), Error> {
        rustix::process::kill_process(self.0, signal).map_err(|errno| Error::Signal {
            what: "process",
            pid: self.raw(),
            signal: signal.as_raw(),
            source: errno.into(),
        })
    }

    /// `killpg(pid, signal)`: the process group this pid leads.
    pub fn signal_group(self, signal: Signal) -> Result<(), Error> {
        rustix::process::kill_process_group(self.0, signal).map_err(|errno| Error::Signal {
            what: "process group",
            pid: self.raw(),
            signal: signal.as_raw(),
            source: errno.into(),
        })
    }
}

impl std::fmt::Display for Pid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.raw().fmt(f)
    }
}

/// Makes the child receive `signal` when the thread that spawned it dies (Linux's
/// PR_SET_PDEATHSIG), so a deployer killed with SIGKILL leaves no cargo holding the target
/// dir's lock, no Envoy on the lab port, no agent in a test stack. A no-op elsewhere. For a
/// `tokio::process::Command`, pass `command.as_std_mut()`.
pub fn die_with_parent(command: &mut Command, signal: Signal) {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: the closure runs between fork and exec; it makes one raw syscall (async-signal
        // safe) and touches no memory of the parent.
        unsafe {
            command.pre_exec(move || {
                rustix::process::set_parent_process_death_signal(Some(signal))
                    .map_err(std::io::Error::from)
            });
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (command, signal);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pids_that_reach_more_than_a_child_are_refused() {
        for raw in [
            0i64,
            1,
            -1,
            -2,
            i64::from(i32::MIN),
            i64::from(i32::MAX) + 1,
        ] {
            assert_eq!(Pid::new(raw), None, "{raw}");
        }
        assert_eq!(Pid::new(2u32).map(Pid::raw), Some(2));
        assert_eq!(Pid::new(u32::MAX), None);
        assert_eq!(
            Pid::new(4242).map(|pid| pid.to_string()),
            Some("4242".into())
        );
    }

    #[test]
    fn signals_reach_the_child_and_its_group() {
        let mut command = Command::new("sleep");
        command.arg("30");
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        die_with_parent(&mut command, Signal::KILL);
        let mut child = command.spawn().expect("spawn sleep");
        let pid = Pid::new(child.id()).expect("a child's pid is above 1");
        pid.signal(Signal::TERM).expect("kill");
        let status = child.wait().expect("wait");
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(15)
        );
        // The group is gone with its only member.
        assert!(pid.signal_group(Signal::KILL).is_err());
    }
}
