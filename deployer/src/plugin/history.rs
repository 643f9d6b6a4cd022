//! The spec revisions `apply` records on the resource itself (one annotation), so `rollback`
//! works from any machine without extra storage. Bounded in count and bytes because
//! Kubernetes caps all annotations of an object at 256 KiB together.
use serde::{Deserialize, Serialize};

use super::Error;
use super::spec::WasmPluginSpec;

pub const ANNOTATION: &str = "wasm-deployer.io/revisions";
/// Revisions kept, newest last.
pub const MAX_REVISIONS: usize = 10;
/// Leaves room under the API server's 256 KiB annotation limit for everyone else's annotations.
pub const MAX_BYTES: usize = 128 * 1024;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Revision {
    pub revision: u64,
    /// RFC 3339, when this revision was first applied.
    pub applied_at: String,
    pub spec: WasmPluginSpec,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct History {
    pub revisions: Vec<Revision>,
}

impl History {
    /// Reads the annotation value (absent means no history yet).
    pub fn parse(name: &str, annotation: Option<&str>) -> Result<Self, Error> {
        match annotation {
            None => Ok(Self::default()),
            Some(text) => serde_json::from_str(text).map_err(|err| Error::History {
                name: name.to_string(),
                annotation: ANNOTATION,
                message: err.to_string(),
            }),
        }
    }

    pub fn to_annotation(&self) -> String {
        serde_json::to_string(self).expect("revisions serialize to JSON")
    }

    pub fn latest(&self) -> Option<&Revision> {
        self.revisions.last()
    }

    /// Records `spec` as a new revision unless it equals the latest one (so re-applying the
    /// same spec changes nothing on the server). Returns whether a revision was added.
    pub fn record(&mut self, spec: &WasmPluginSpec, now: &str) -> bool {
        if self.latest().is_some_and(|latest| &latest.spec == spec) {
            return false;
        }
        let revision = self.latest().map_or(1, |latest| latest.revision + 1);
        self.revisions.push(Revision {
            revision,
            applied_at: now.to_string(),
            spec: spec.clone(),
        });
        self.trim();
        true
    }

    /// Oldest first, down to nothing: a spec that alone exceeds [`MAX_BYTES`] (a huge
    /// pluginConfig) is applied but not recorded, since an annotation over the API server's
    /// limit would fail the apply itself.
    fn trim(&mut self) {
        while self.revisions.len() > MAX_REVISIONS {
            self.revisions.remove(0);
        }
        while !self.revisions.is_empty() && self.to_annotation().len() > MAX_BYTES {
            self.revisions.remove(0);
        }
    }

    /// The history an apply continues from the live annotation. Never fails: an annotation
    /// that no longer parses (edited by hand, written by a newer version) is replaced by a
    /// fresh history instead of blocking every apply of this plugin; the return says so.
    pub fn recover(name: &str, annotation: Option<&str>) -> (Self, Option<Error>) {
        match Self::parse(name, annotation) {
            Ok(history) => (history, None),
            Err(err) => (Self::default(), Some(err)),
        }
    }

    /// The revision `rollback` re-applies: `to`, or the one before the latest.
    pub fn target(&self, name: &str, to: Option<u64>) -> Result<&Revision, Error> {
        let available = || {
            let list: Vec<String> = self
                .revisions
                .iter()
                .map(|r| r.revision.to_string())
                .collect();
            if list.is_empty() {
                "none (apply it with `deployer apply` first)".to_string()
            } else {
                list.join(", ")
            }
        };
        match to {
            Some(revision) => self
                .revisions
                .iter()
                .find(|r| r.revision == revision)
                .ok_or_else(|| Error::NoRevision {
                    name: name.to_string(),
                    revision,
                    available: available(),
                }),
            None => {
                let len = self.revisions.len();
                if len < 2 {
                    return Err(Error::NoRevision {
                        name: name.to_string(),
                        revision: self.latest().map_or(0, |r| r.revision.saturating_sub(1)),
                        available: available(),
                    });
                }
                Ok(&self.revisions[len - 2])
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(url: &str) -> WasmPluginSpec {
        WasmPluginSpec {
            url: url.into(),
            ..Default::default()
        }
    }

    #[test]
    fn records_only_changes_and_numbers_them() {
        let mut h = History::default();
        assert!(h.record(&spec("a"), "t1"));
        assert!(!h.record(&spec("a"), "t2"));
        assert!(h.record(&spec("b"), "t3"));
        assert!(h.record(&spec("a"), "t4"));
        let numbers: Vec<u64> = h.revisions.iter().map(|r| r.revision).collect();
        assert_eq!(numbers, [1, 2, 3]);
        let back = History::parse("p", Some(&h.to_annotation())).unwrap();
        assert_eq!(back, h);
    }

    #[test]
    fn bounded_by_count() {
        let mut h = History::default();
        for i in 0..25 {
            h.record(&spec(&format!("u{i}")), "t");
        }
        assert_eq!(h.revisions.len(), MAX_REVISIONS);
        assert_eq!(h.revisions[0].revision, 16);
        assert_eq!(h.latest().unwrap().revision, 25);
    }

    #[test]
    fn bounded_by_bytes_but_keeps_the_latest() {
        let mut h = History::default();
        let big = "x".repeat(40 * 1024);
        for i in 0..5 {
            h.record(&spec(&format!("{big}{i}")), "t");
        }
        assert!(h.to_annotation().len() <= MAX_BYTES);
        assert_eq!(h.revisions.len(), 3);
        let mut h = History::default();
        h.record(&spec("small"), "t");
        h.record(&spec(&"y".repeat(MAX_BYTES + 1)), "t");
        assert!(
            h.revisions.is_empty(),
            "a spec over the bound is not recorded"
        );
    }

    /// Whatever is applied, in whatever order, the annotation stays within the bound and
    /// keeps the newest revisions that fit.
    #[test]
    fn annotation_never_exceeds_the_bound() {
        let mut h = History::default();
        let sizes = [
            10,
            70_000,
            5,
            130_000,
            60_000,
            60_000,
            1,
            128 * 1024,
            200,
            90_000,
        ];
        for (i, size) in sizes.iter().cycle().take(40).enumerate() {
            h.record(
                &spec(&format!("{i}{}", "z".repeat(*size))),
                "2026-01-01T00:00:00Z",
            );
            let annotation = h.to_annotation();
            assert!(
                annotation.len() <= MAX_BYTES,
                "{} bytes after {i}",
                annotation.len()
            );
            assert!(h.revisions.len() <= MAX_REVISIONS);
            if let Some(latest) = h.latest() {
                assert!(
                    latest.spec.url.starts_with(&i.to_string()),
                    "the newest is kept"
                );
            }
            let numbers: Vec<u64> = h.revisions.iter().map(|r| r.revision).collect();
            assert!(numbers.windows(2).all(|w| w[1] == w[0] + 1), "{numbers:?}");
        }
    }

    #[test]
    fn a_corrupt_annotation_does_not_block_applies() {
        let (h, problem) = History::recover("p", Some("{not json"));
        assert!(h.revisions.is_empty());
        assert!(problem.is_some());
        let (h, problem) = History::recover("p", None);
        assert!(h.revisions.is_empty() && problem.is_none());
    }

    #[test]
    fn rollback_targets() {
        let mut h = History::default();
        let err = h.target("p", None).unwrap_err().to_string();
        assert!(err.contains("apply it"), "{err}");
        h.record(&spec("a"), "t");
        assert!(h.target("p", None).is_err());
        h.record(&spec("b"), "t");
        assert_eq!(h.target("p", None).unwrap().spec.url, "a");
        assert_eq!(h.target("p", Some(2)).unwrap().spec.url, "b");
        let err = h.target("p", Some(7)).unwrap_err().to_string();
        assert!(
            err.contains("no revision 7") && err.contains("1, 2"),
            "{err}"
        );
        assert!(History::parse("p", Some("{")).is_err());
    }
}
