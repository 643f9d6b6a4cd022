//! Which pods `deployer logs -f` reads while pods come and go (a rollout, a scale-up): the
//! command lists the selected pods now and then and this tells it which logs to start reading
//! and which to stop. Pods are told apart by uid, so each pod's log is read once (no line twice)
//! and a pod re-created under the same name is a new pod.
use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::jiff::Timestamp;

use super::PodView;

/// Where a pod's log stream got to, so that reading it again after the server closed the
/// stream (`sinceTime` = the last line's time, with `timestamps=true`) neither repeats nor
/// loses a line. The API takes whole seconds and returns lines at or after that second, so the
/// lines older than the last one seen, and as many lines of exactly its time as were already
/// printed, are dropped on the way back in.
#[derive(Debug, Clone, Default)]
pub struct Resume {
    last: Option<Timestamp>,
    /// Lines accepted whose time is exactly `last`.
    at_last: usize,
    /// After a reconnect: lines of time `last` still to drop (already printed).
    skip: usize,
}

impl Resume {
    /// Splits a line read with `timestamps=true` into its time and its text. A line without
    /// a time (not expected from the API) is passed through as it is.
    pub fn split(line: &str) -> (Option<Timestamp>, &str) {
        match line.split_once(' ') {
            Some((time, text)) => match time.parse::<Timestamp>() {
                Ok(at) => (Some(at), text),
                Err(_) => (None, line),
            },
            None => match line.parse::<Timestamp>() {
                Ok(at) => (Some(at), ""),
                Err(_) => (None, line),
            },
        }
    }

    /// Whether a line written at `at` is new (to be printed); records it when it is.
    pub fn accept(&mut self, at: Option<Timestamp>) -> bool {
        let Some(at) = at else { return true };
        if let Some(last) = self.last {
            if at < last {
                return false;
            }
            if at == last && self.skip > 0 {
                self.skip -= 1;
                return false;
            }
        }
        if self.last == Some(at) {
            self.at_last += 1;
        } else {
            self.last = Some(at);
            self.at_last = 1;
            self.skip = 0;
        }
        true
    }

    /// Whether any line was accepted: a reconnect resumes from it, else starts over.
    pub fn started(&self) -> bool {
        self.last.is_some()
    }

    /// Prepares for reading again: the `sinceTime` to ask for (the last line's time).
    pub fn reconnect(&mut self) -> Option<Timestamp> {
        self.skip = self.at_last;
        self.last
    }
}

/// What to do after a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Start reading the pod's log. `from_start`: the pod appeared after the command began,
    /// so every line it has is new (no `--since`/`--tail` window).
    // Boxed: a pod view is large next to the other variants.
    Read { pod: Box<PodView>, from_start: bool },
    /// Stop reading: the pod is gone.
    Stop { uid: String, name: String },
    /// Selected, but without an `istio-proxy` container: nothing to read (said once per pod).
    NotMeshed { name: String },
}

/// How a pod's log stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Closed,
    /// `status`: the API server's HTTP status, when it answered.
    Failed {
        status: Option<u16>,
    },
}

/// What the command does about an ended stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ended {
    /// Read the pod again at the next listing.
    pub retry: bool,
    /// Tell the user (a pod that keeps failing the same way is reported once).
    pub report: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Reading,
    /// Failed before its first line (its container is not logging yet): read it again.
    Waiting,
    Closed,
    Failed,
}

#[derive(Debug)]
struct Pod {
    name: String,
    from_start: bool,
    state: State,
    reported: bool,
}

#[derive(Debug)]
pub struct Tracker {
    follow: bool,
    pods: BTreeMap<String, Pod>,
    /// uids of selected pods without `istio-proxy`, already reported.
    not_meshed: BTreeSet<String>,
}

impl Tracker {
    /// `reading`: the pods whose logs the command started with; `not_meshed`: the selected
    /// pods it already warned about. Without `follow` nothing is read twice.
    pub fn new(follow: bool, reading: &[PodView], not_meshed: &[PodView]) -> Self {
        let pods = reading
            .iter()
            .map(|pod| {
                let state = Pod {
                    name: pod.name.clone(),
                    from_start: false,
                    state: State::Reading,
                    reported: false,
                };
                (pod.uid.clone(), state)
            })
            .collect();
        Tracker {
            follow,
            pods,
            not_meshed: not_meshed.iter().map(|pod| pod.uid.clone()).collect(),
        }
    }

    /// Compares a fresh listing of the selected pods with what is being read.
    pub fn observe(&mut self, selected: &[PodView]) -> Vec<Action> {
        let present: BTreeMap<&str, &PodView> =
            selected.iter().map(|pod| (pod.uid.as_str(), pod)).collect();
        let mut actions = Vec::new();
        let mut gone = Vec::new();
        for (uid, pod) in &self.pods {
            if !present.contains_key(uid.as_str()) {
                gone.push(uid.clone());
                if pod.state == State::Reading {
                    actions.push(Action::Stop {
                        uid: uid.clone(),
                        name: pod.name.clone(),
                    });
                }
            }
        }
        for uid in gone {
            self.pods.remove(&uid);
        }
        self.not_meshed
            .retain(|uid| present.contains_key(uid.as_str()));
        for pod in selected {
            if !pod.has_proxy {
                if self.not_meshed.insert(pod.uid.clone()) {
                    actions.push(Action::NotMeshed {
                        name: pod.name.clone(),
                    });
                }
                continue;
            }
            // Before Running its containers have no log to read yet.
            if pod.phase != "Running" {
                continue;
            }
            match self.pods.get_mut(&pod.uid) {
                None => {
                    self.pods.insert(
                        pod.uid.clone(),
                        Pod {
                            name: pod.name.clone(),
                            from_start: true,
                            state: State::Reading,
                            reported: false,
                        },
                    );
                    actions.push(Action::Read {
                        pod: Box::new(pod.clone()),
                        from_start: true,
                    });
                }
                Some(known) if known.state == State::Waiting => {
                    known.state = State::Reading;
                    actions.push(Action::Read {
                        pod: Box::new(pod.clone()),
                        from_start: known.from_start,
                    });
                }
                Some(_) => {}
            }
        }
        actions
    }

    /// A pod's log stream ended, after `read_any` line(s). Only a stream that failed before
    /// its first line is read again (nothing of it was printed, so nothing can repeat); one
    /// the API server refused for lack of rights is not.
    pub fn ended(&mut self, uid: &str, read_any: bool, end: End) -> Ended {
        let Some(pod) = self.pods.get_mut(uid) else {
            // Stopped already: the pod is gone.
            return Ended {
                retry: false,
                report: false,
            };
        };
        let retry = self.follow
            && !read_any
            && matches!(end, End::Failed { status } if !matches!(status, Some(401 | 403)));
        pod.state = match (end, retry) {
            (_, true) => State::Waiting,
            (End::Closed, false) => State::Closed,
            (End::Failed { .. }, false) => State::Failed,
        };
        let report = matches!(end, End::Failed { .. }) && !pod.reported;
        if retry {
            pod.reported |= report;
        }
        Ended { retry, report }
    }

    /// Pods whose log is being read now.
    pub fn reading(&self) -> usize {
        self.pods
            .values()
            .filter(|pod| pod.state == State::Reading)
            .count()
    }

    /// Every pod seen failed for good: nothing will ever be read.
    pub fn all_failed(&self) -> bool {
        !self.pods.is_empty() && self.pods.values().all(|pod| pod.state == State::Failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resumed_stream_repeats_and_loses_no_line() {
        let log = [
            "2026-01-01T10:00:00.100000000Z a",
            "2026-01-01T10:00:00.500Z b",
            "2026-01-01T10:00:00.500Z c",
            "2026-01-01T10:00:01Z d",
        ];
        let mut resume = Resume::default();
        assert!(!resume.started());
        let mut printed = Vec::new();
        let mut read = |resume: &mut Resume, lines: &[&str]| {
            for line in lines {
                let (at, text) = Resume::split(line);
                if resume.accept(at) {
                    printed.push(text.to_string());
                }
            }
        };
        // The server closes the stream after `b`, between two lines of the same time.
        read(&mut resume, &log[..2]);
        let since = resume.reconnect().unwrap();
        assert_eq!(since.to_string(), "2026-01-01T10:00:00.5Z");
        assert_eq!(
            crate::mesh::pods::whole_second(since).to_string(),
            "2026-01-01T10:00:00Z"
        );
        // sinceTime in whole seconds: the server sends the whole second again.
        read(&mut resume, &log);
        // Closed again right after `d`: nothing is repeated.
        resume.reconnect();
        read(&mut resume, &log[3..]);
        read(&mut resume, &["2026-01-01T10:00:01Z e", "no time f"]);
        assert_eq!(printed, ["a", "b", "c", "d", "e", "no time f"]);
        assert_eq!(
            Resume::split("2026-01-01T10:00:01Z "),
            (Some("2026-01-01T10:00:01Z".parse().unwrap()), "")
        );
    }

    fn pod(name: &str, uid: &str) -> PodView {
        PodView {
            name: name.into(),
            uid: uid.into(),
            phase: "Running".into(),
            labels: Default::default(),
            has_proxy: true,
            component_log_level: None,
            log_level: None,
            placement: Default::default(),
        }
    }

    #[test]
    fn new_pods_are_read_from_their_start_once_and_gone_ones_stopped() {
        let a = pod("a", "1");
        let mut tracker = Tracker::new(true, std::slice::from_ref(&a), &[]);
        assert_eq!(tracker.observe(std::slice::from_ref(&a)), vec![]);
        let b = pod("b", "2");
        let listing = [a.clone(), b.clone()];
        assert_eq!(
            tracker.observe(&listing),
            vec![Action::Read {
                pod: Box::new(b.clone()),
                from_start: true
            }]
        );
        assert_eq!(tracker.observe(&listing), vec![], "read once");
        assert_eq!(tracker.reading(), 2);
        // a deleted, then a new pod under the same name.
        assert_eq!(
            tracker.observe(std::slice::from_ref(&b)),
            vec![Action::Stop {
                uid: "1".into(),
                name: "a".into()
            }]
        );
        let a2 = pod("a", "3");
        assert_eq!(
            tracker.observe(&[a2.clone(), b]),
            vec![Action::Read {
                pod: Box::new(a2),
                from_start: true
            }]
        );
    }

    #[test]
    fn pods_wait_for_running_and_a_sidecar() {
        let mut tracker = Tracker::new(true, &[], &[]);
        let mut pending = pod("p", "1");
        pending.phase = "Pending".into();
        let mut plain = pod("plain", "2");
        plain.has_proxy = false;
        let listing = [pending.clone(), plain.clone()];
        assert_eq!(
            tracker.observe(&listing),
            vec![Action::NotMeshed {
                name: "plain".into()
            }]
        );
        assert_eq!(tracker.observe(&listing), vec![], "said once");
        pending.phase = "Running".into();
        assert_eq!(tracker.observe(&[pending.clone(), plain]).len(), 1);
    }

    #[test]
    fn only_a_stream_that_failed_before_its_first_line_is_read_again() {
        let (a, b, c) = (pod("a", "1"), pod("b", "2"), pod("c", "3"));
        let listing = [a.clone(), b.clone(), c.clone()];
        let mut tracker = Tracker::new(true, &listing, &[]);
        let not_yet = End::Failed { status: Some(400) };
        assert_eq!(
            tracker.ended("1", false, not_yet),
            Ended {
                retry: true,
                report: true
            }
        );
        assert_eq!(
            tracker.ended("2", true, not_yet),
            Ended {
                retry: false,
                report: true
            },
            "lines were printed: reading again would repeat them"
        );
        assert_eq!(
            tracker.ended("3", false, End::Failed { status: Some(403) }),
            Ended {
                retry: false,
                report: true
            }
        );
        assert_eq!(
            tracker.observe(&listing),
            vec![Action::Read {
                pod: Box::new(a),
                from_start: false
            }],
            "the user's window again"
        );
        assert_eq!(
            tracker.ended("1", false, not_yet),
            Ended {
                retry: true,
                report: false
            },
            "reported once"
        );
        assert!(!tracker.all_failed());
        let mut once = Tracker::new(false, std::slice::from_ref(&c), &[]);
        assert!(!once.ended("3", false, not_yet).retry, "no -f: read once");
        assert!(once.all_failed());
        assert_eq!(once.reading(), 0);
    }
}
