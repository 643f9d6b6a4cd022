//! Finding func-e and Envoy, and the command line that starts the lab with them.
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::LocalError;

/// Where `scripts/setup` caches what it installs (scripts/lib.sh computes the same path).
pub fn cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("WASM_DEPLOYER_CACHE").filter(|dir| !dir.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
    Some(base.join("wasm-deployer"))
}

/// The binaries the lab runs. `func_e` is `None` when only Envoy was found.
#[derive(Debug, Clone)]
pub struct Tools {
    pub envoy: PathBuf,
    pub func_e: Option<PathBuf>,
    /// Where func-e was looked for, to say so when it is missing.
    pub func_e_searched: String,
}

/// Finds the tools: explicit paths first, then the set-up cache, then PATH.
pub fn find(envoy: Option<&Path>, func_e: Option<&Path>) -> Result<Tools, LocalError> {
    let cache_bin = cache_dir().map(|dir| dir.join("bin"));
    let envoy = match envoy {
        Some(path) => explicit(path, "--envoy")?,
        None => search("envoy", cache_bin.as_deref()).ok_or_else(|| LocalError::ToolMissing {
            tool: "envoy",
            searched: searched_places(cache_bin.as_deref()),
        })?,
    };
    let func_e = match func_e {
        Some(path) => Some(explicit(path, "--func-e")?),
        None => search("func-e", cache_bin.as_deref()),
    };
    Ok(Tools {
        envoy,
        func_e,
        func_e_searched: searched_places(cache_bin.as_deref()),
    })
}

fn explicit(path: &Path, flag: &'static str) -> Result<PathBuf, LocalError> {
    if is_executable(path) {
        Ok(path.to_path_buf())
    } else {
        Err(LocalError::NotExecutable {
            path: path.to_path_buf(),
            flag,
        })
    }
}

fn search(name: &str, cache_bin: Option<&Path>) -> Option<PathBuf> {
    let path_dirs =
        std::env::var_os("PATH").map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>());
    cache_bin
        .into_iter()
        .map(Path::to_path_buf)
        .chain(path_dirs.unwrap_or_default())
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn searched_places(cache_bin: Option<&Path>) -> String {
    match cache_bin {
        Some(dir) => format!("{} and PATH", dir.display()),
        None => "PATH".to_string(),
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// A program, its arguments and the environment it needs.
#[derive(Debug, Clone)]
pub struct Launch {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub env: Vec<(&'static str, OsString)>,
    pub via_func_e: bool,
}

/// The flags every Envoy the deployer runs gets: its bootstrap `config`, and where to write the
/// admin address (the port is picked by Envoy, read back from `admin_address_file`).
pub fn envoy_args(config: &Path, admin_address_file: &Path) -> Vec<OsString> {
    vec![
        "-c".into(),
        config.into(),
        // Several Envoys (labs, parallel tests) may run at once: no
        // shared-memory hot restart.
        "--disable-hot-restart".into(),
        // One worker: one V8 instance to start, and none of them needs more.
        "--concurrency".into(),
        "1".into(),
        "--admin-address-path".into(),
        admin_address_file.into(),
    ]
}

impl Launch {
    /// `func-e run -c CONFIG <envoy flags>` when func-e is there, else Envoy itself.
    /// `work` holds func-e's state and the admin address file; it is removed after the run.
    pub fn new(tools: &Tools, config: &Path, admin_address_file: &Path, work: &Path) -> Self {
        let envoy_args = envoy_args(config, admin_address_file);
        match &tools.func_e {
            Some(func_e) => {
                let mut args: Vec<OsString> = vec!["run".into()];
                args.extend(envoy_args);
                Launch {
                    program: func_e.clone(),
                    args,
                    env: vec![
                        // Run exactly this Envoy: no version lookup, nothing downloaded.
                        ("ENVOY_PATH", tools.envoy.clone().into()),
                        ("FUNC_E_CONFIG_HOME", work.join("func-e/config").into()),
                        ("FUNC_E_DATA_HOME", work.join("func-e/data").into()),
                        ("FUNC_E_STATE_HOME", work.join("func-e/state").into()),
                        ("FUNC_E_RUNTIME_DIR", work.join("func-e/run").into()),
                    ],
                    via_func_e: true,
                }
            }
            None => Launch {
                program: tools.envoy.clone(),
                args: envoy_args,
                env: Vec::new(),
                via_func_e: false,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The launch for Envoy at /opt/envoy, with func-e at `func_e` if given.
    fn launch_with(func_e: Option<&str>) -> Launch {
        let tools = Tools {
            envoy: PathBuf::from("/opt/envoy"),
            func_e: func_e.map(PathBuf::from),
            func_e_searched: String::new(),
        };
        Launch::new(
            &tools,
            Path::new("/w/envoy.yaml"),
            Path::new("/w/admin"),
            Path::new("/w"),
        )
    }

    #[test]
    fn func_e_gets_the_envoy_path_and_private_dirs() {
        let launch = launch_with(Some("/opt/func-e"));
        assert_eq!(launch.program, PathBuf::from("/opt/func-e"));
        assert_eq!(
            launch.args[..3],
            [OsString::from("run"), "-c".into(), "/w/envoy.yaml".into()]
        );
        assert!(
            launch
                .env
                .contains(&("ENVOY_PATH", OsString::from("/opt/envoy")))
        );
        assert!(
            launch
                .env
                .iter()
                .all(|(_, value)| value.to_string_lossy().starts_with('/'))
        );
    }

    #[test]
    fn without_func_e_envoy_runs_directly() {
        let launch = launch_with(None);
        assert_eq!(launch.program, PathBuf::from("/opt/envoy"));
        assert_eq!(launch.args[0], OsString::from("-c"));
        assert!(!launch.via_func_e);
    }

    #[test]
    fn an_explicit_path_must_be_an_executable() {
        let err = explicit(Path::new("/nonexistent/func-e"), "--func-e").unwrap_err();
        assert!(err.to_string().contains("/nonexistent/func-e"), "{err}");
    }
}
