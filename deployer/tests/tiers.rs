//! The test tiers (README "Tests") stay consistent: every `#[ignore]` in the workspace names a
//! tier `scripts/test` runs, and a test that starts a component itself is in that component's
//! tier, so plain `cargo test` never starts the stack, a registry or Envoy.
use std::path::{Path, PathBuf};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("deployer/ has a parent")
        .to_path_buf()
}

/// The tiers `scripts/test` knows (its `TIERS=(...)` line).
fn script_tiers() -> Vec<String> {
    let script =
        std::fs::read_to_string(repo_root().join("scripts/test")).expect("read scripts/test");
    let line = script
        .lines()
        .find_map(|line| line.strip_prefix("TIERS=("))
        .expect("scripts/test has a TIERS=(...) line");
    line.trim_end_matches(')')
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display())) {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            found.push(path);
        }
    }
}

/// `(file, test name, tier or None, body)` for every `#[test]` in `files`.
fn tests(files: &[PathBuf]) -> Vec<(String, String, Option<String>, String)> {
    let mut found = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file).expect("read a source file");
        let lines: Vec<&str> = text.lines().collect();
        for (at, line) in lines.iter().enumerate() {
            if !line.trim().starts_with("#[test]") {
                continue;
            }
            let mut tier = None;
            let mut next = at + 1;
            while let Some(attribute) = lines.get(next).map(|l| l.trim()) {
                if !attribute.starts_with("#[") && !attribute.starts_with("///") {
                    break;
                }
                if let Some(reason) = attribute.strip_prefix("#[ignore = \"tier ") {
                    tier = reason.split(':').next().map(str::to_string);
                }
                next += 1;
            }
            let signature = lines.get(next).copied().unwrap_or_default();
            let name = signature
                .split("fn ")
                .nth(1)
                .and_then(|rest| rest.split(['(', '<']).next())
                .unwrap_or_else(|| panic!("{}:{}: no fn after #[test]", file.display(), at + 1))
                .to_string();
            // The body: up to the closing brace at the fn's own indentation.
            let indent = signature.len() - signature.trim_start().len();
            let close = format!("{}}}", " ".repeat(indent));
            let body: Vec<&str> = lines[next..]
                .iter()
                .take_while(|line| **line != close)
                .copied()
                .collect();
            found.push((file.display().to_string(), name, tier, body.join("\n")));
        }
    }
    found
}

#[test]
fn every_ignore_names_a_tier_scripts_test_runs() {
    let root = repo_root();
    let tiers = script_tiers();
    assert_eq!(tiers[0], "default", "the first tier is plain `cargo test`");
    let mut files = Vec::new();
    for dir in [
        "deployer/src",
        "deployer/tests",
        "filter/src",
        "local-mesh/src",
    ] {
        rust_files(&root.join(dir), &mut files);
    }
    let mut bad = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read a source file");
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if !line.starts_with("#[ignore") {
                continue;
            }
            let tier = line
                .strip_prefix("#[ignore = \"tier ")
                .and_then(|rest| rest.split_once(':'))
                .map(|(tier, _)| tier);
            match tier {
                Some(tier) if tier != "default" && tiers.iter().any(|known| known == tier) => {}
                _ => bad.push(format!("{}:{}: {line}", file.display(), number + 1)),
            }
        }
    }
    assert!(
        bad.is_empty(),
        "every #[ignore] must read `#[ignore = \"tier NAME: ...\"]` with NAME one of {:?} \
         (scripts/test runs those; anything else would be skipped silently):\n{}",
        &tiers[1..],
        bad.join("\n")
    );
    let readme = std::fs::read_to_string(root.join("README.md")).expect("read README.md");
    for tier in &tiers {
        assert!(
            readme.contains(&format!("| `{tier}` |")),
            "README's Tests table has no row for tier `{tier}`"
        );
    }
}

/// A test that starts a component itself (not through a helper: those are checked by running
/// `cargo test` without the components) must be in that component's tier or the stack's.
#[test]
fn tests_that_start_a_component_are_in_its_tier() {
    let mut files = Vec::new();
    rust_files(&repo_root().join("deployer/tests"), &mut files);
    files.retain(|file| !file.ends_with("tests/tiers.rs"));
    let starts: &[(&str, &[&str])] = &[
        ("stack()", &["stack"]),
        ("Registry::plain()", &["registry", "stack"]),
        ("Registry::secure(", &["registry", "stack"]),
        ("TokenRegistry::start(", &["registry", "stack"]),
        ("Lab::start", &["envoy", "stack"]),
        ("Lab::spawn", &["envoy", "stack"]),
        ("require(\"envoy\")", &["envoy", "stack"]),
        ("helm()", &["tools", "stack"]),
        ("require(\"skopeo\")", &["registry", "stack"]),
    ];
    let mut bad = Vec::new();
    for (file, name, tier, body) in tests(&files) {
        for (call, allowed) in starts {
            let in_tier = tier.as_deref().is_some_and(|tier| allowed.contains(&tier));
            if body.contains(call) && !in_tier {
                bad.push(format!(
                    "{file}: {name} calls {call} but is in tier {}, not one of {allowed:?}",
                    tier.as_deref().unwrap_or("default")
                ));
            }
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}
