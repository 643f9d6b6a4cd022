//! The command line itself, with no cluster or registry: completion scripts, the documented
//! exit statuses, the one duration syntax, rollback's arguments. Runs the real binary.
use assert_cmd::Command;
use predicates::prelude::*;

fn deployer() -> Command {
    let mut command =
        Command::cargo_bin("deployer").expect("deployer binary is built by cargo test");
    // No kubeconfig or docker config of the machine's can change the outcome.
    command
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .env("DOCKER_CONFIG", "/nonexistent/docker")
        .env("CI", "1")
        .env_remove("DEPLOYER_REGISTRY_TIMEOUT")
        .env_remove("DEPLOYER_REGISTRY_BACKOFF");
    command
}

/// Never a panic (101): the binary ends with one of the documented statuses.
fn no_panic() -> impl Predicate<str> {
    predicate::str::contains("panicked").not()
}

#[test]
fn completion_scripts_for_bash_zsh_and_fish() {
    for (shell, marker) in [
        ("bash", "complete -F _deployer"),
        ("zsh", "#compdef deployer"),
        ("fish", "complete -c deployer"),
    ] {
        deployer()
            .args(["completion", shell])
            .assert()
            .success()
            .stdout(predicate::str::contains(marker))
            // Every command and the renamed flags are there.
            .stdout(predicate::str::contains("history"))
            .stdout(predicate::str::contains("output-file"));
    }
    deployer()
        .args(["completion", "tcsh"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("possible values"));
}

#[test]
fn exit_codes_are_documented_in_help() {
    deployer()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("Exit codes:"))
        .stdout(predicate::str::contains("1  checked and found a problem"));
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        vec![],
        vec!["no-such-command"],
        vec!["list", "--no-such-flag"],
        vec!["history", "p", "--context", "a", "--context", "b"],
        vec!["status", "p", "-o", "xml"],
        vec!["rollback", "p", "two"],
        vec!["rollback", "p", "2", "--to", "3"],
        vec!["push", "x.wasm", "r/x:v1", "--format", "oci"],
    ] {
        deployer().args(&args).assert().code(2).stderr(no_panic());
    }
}

#[test]
fn could_not_check_exits_2_and_found_a_problem_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    // No cluster: every cluster command fails to do its work.
    for args in [
        vec!["status", "p"],
        vec!["logs", "p"],
        vec!["logs", "p", "--context", "a", "--context", "b"],
        vec!["history", "p"],
        vec!["rollback", "p", "2", "--dry-run"],
        vec!["list"],
    ] {
        deployer()
            .args(&args)
            .assert()
            .code(2)
            .stderr(predicate::str::contains("kubeconfig"))
            .stderr(no_panic());
    }
    // A missing file cannot be checked; a module Envoy would refuse is a verdict.
    deployer()
        .args(["inspect", "missing.wasm"])
        .current_dir(dir.path())
        .assert()
        .code(2);
    let empty = dir.path().join("empty.wasm");
    std::fs::write(&empty, b"\0asm\x01\0\0\0").unwrap();
    deployer()
        .arg("inspect")
        .arg(&empty)
        .assert()
        .code(1)
        .stdout(predicate::str::contains("loadable by Envoy: no"));
    // Nothing listens on port 1: the registry cannot be asked.
    deployer()
        .args(["verify", "127.0.0.1:1/x:v1", "--key"])
        .arg(&empty)
        .args(["--plain-http", "--attempts", "1", "--timeout", "2s"])
        .assert()
        .code(2)
        .stderr(no_panic());
}

#[test]
fn every_time_flag_takes_the_same_durations() {
    let dir = tempfile::tempdir().unwrap();
    for (args, value) in [
        (vec!["logs", "p", "--since"], "1h30m"),
        (vec!["migrate", "p", "--timeout"], "90s"),
        (
            vec!["pull", "127.0.0.1:1/x:v1", "-O", "x.wasm", "--timeout"],
            "1.5s",
        ),
        (
            vec![
                "local",
                "--print-config",
                "--wasm",
                "x.wasm",
                "--ready-timeout",
            ],
            "2m",
        ),
        (vec!["status", "p", "--retry-backoff"], "500ms"),
    ] {
        // Accepted: whatever fails next, it is not the flag.
        let mut command = deployer();
        command.current_dir(dir.path()).args(&args).arg(value);
        if args[0] == "pull" {
            command.args(["--plain-http", "--attempts", "1"]);
        }
        let output = command.output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !stderr.contains("invalid value"),
            "{args:?} {value}: {stderr}"
        );
        assert_ne!(output.status.code(), Some(101), "{stderr}");
        // Refused the same way everywhere, without a panic.
        for (bad, says) in [
            ("5", "no unit"),
            ("5d", "unknown unit"),
            ("9223372036854775807h9223372036854775807h", "out of range"),
            ("-5s", "greater than 0"),
        ] {
            let flag = format!("{}={bad}", args.last().unwrap());
            let mut bad_args = args.clone();
            *bad_args.last_mut().unwrap() = &flag;
            deployer()
                .current_dir(dir.path())
                .args(&bad_args)
                .assert()
                .code(2)
                .stderr(predicate::str::contains(says))
                .stderr(no_panic());
        }
    }
}
