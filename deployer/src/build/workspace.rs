//! Which crate to build, read from `cargo metadata` rather than guessed from paths.
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use super::Error;

/// The toolkit's own filter: built when the workspace has it and no package is named.
pub const BUNDLED_FILTER: &str = "context-logger";

#[derive(Debug, Clone)]
pub struct Workspace {
    pub root: PathBuf,
    pub target_directory: PathBuf,
    packages: Vec<Package>,
}

#[derive(Debug, Clone)]
pub struct Package {
    pub name: String,
    pub manifest_path: PathBuf,
    /// Name of the library target when it builds a cdylib (what becomes the .wasm).
    pub cdylib: Option<String>,
}

impl Workspace {
    pub fn load(mut cargo: Command, manifest_path: &Path) -> Result<Workspace, Error> {
        let output = cargo
            .args([
                "metadata",
                "--no-deps",
                "--format-version",
                "1",
                "--manifest-path",
            ])
            .arg(manifest_path)
            .output()
            .map_err(|source| Error::Spawn {
                program: "cargo".into(),
                source,
            })?;
        if !output.status.success() {
            return Err(Error::Metadata {
                manifest: manifest_path.to_path_buf(),
                message: String::from_utf8_lossy(&output.stderr).trim().to_string(),
            });
        }
        let value: Value =
            serde_json::from_slice(&output.stdout).map_err(|err| Error::Metadata {
                manifest: manifest_path.to_path_buf(),
                message: format!("unreadable cargo metadata: {err}"),
            })?;
        let path = |key: &str| value[key].as_str().map(PathBuf::from).unwrap_or_default();
        let packages = value["packages"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        Ok(Workspace {
            root: path("workspace_root"),
            target_directory: path("target_directory"),
            packages: packages.iter().map(Package::from_metadata).collect(),
        })
    }

    /// `requested` (-p), else the package whose manifest was given (when it is a cdylib or was
    /// named explicitly), else the bundled filter, else the only cdylib crate.
    pub fn select(
        &self,
        requested: Option<&str>,
        manifest_path: &Path,
        explicit: bool,
    ) -> Result<&Package, Error> {
        let names = || {
            self.packages
                .iter()
                .map(|package| package.name.clone())
                .collect::<Vec<_>>()
        };
        if let Some(name) = requested {
            return self
                .packages
                .iter()
                .find(|package| package.name == name)
                .ok_or_else(|| Error::PackageNotFound {
                    package: name.into(),
                    available: names(),
                });
        }
        let manifest = manifest_path
            .canonicalize()
            .unwrap_or_else(|_| manifest_path.to_path_buf());
        let own = self.packages.iter().find(|package| {
            package
                .manifest_path
                .canonicalize()
                .is_ok_and(|path| path == manifest)
        });
        if let Some(package) = own.filter(|package| explicit || package.cdylib.is_some()) {
            return Ok(package);
        }
        if let Some(package) = self
            .packages
            .iter()
            .find(|package| package.name == BUNDLED_FILTER)
        {
            return Ok(package);
        }
        let cdylibs: Vec<&Package> = self
            .packages
            .iter()
            .filter(|package| package.cdylib.is_some())
            .collect();
        match cdylibs.as_slice() {
            [only] => Ok(only),
            _ => Err(Error::AmbiguousPackage {
                workspace: self.root.clone(),
                candidates: cdylibs.iter().map(|package| package.name.clone()).collect(),
            }),
        }
    }

    /// Whether the workspace defines the size-tuned profile itself.
    pub fn defines_profile(&self, profile: &str) -> bool {
        let header = format!("[profile.{profile}]");
        std::fs::read_to_string(self.root.join("Cargo.toml"))
            .is_ok_and(|text| text.lines().any(|line| line.trim() == header))
    }
}

impl Package {
    fn from_metadata(value: &Value) -> Package {
        let targets = value["targets"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        let cdylib = targets
            .iter()
            .find(|target| {
                target["crate_types"]
                    .as_array()
                    .is_some_and(|types| types.iter().any(|t| t == "cdylib"))
            })
            .and_then(|target| target["name"].as_str())
            .map(str::to_string);
        Package {
            name: value["name"].as_str().unwrap_or_default().to_string(),
            manifest_path: value["manifest_path"]
                .as_str()
                .map(PathBuf::from)
                .unwrap_or_default(),
            cdylib,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn package(name: &str, cdylib: bool) -> Package {
        Package {
            name: name.into(),
            manifest_path: PathBuf::from(format!("/nonexistent/{name}/Cargo.toml")),
            cdylib: cdylib.then(|| name.replace('-', "_")),
        }
    }

    fn workspace(packages: Vec<Package>) -> Workspace {
        Workspace {
            root: "/nonexistent".into(),
            target_directory: "/nonexistent/target".into(),
            packages,
        }
    }

    const ROOT: &str = "/nonexistent/Cargo.toml";

    #[test]
    fn named_package_wins_and_unknown_lists_the_others() {
        let ws = workspace(vec![
            package("context-logger", true),
            package("deployer", false),
        ]);
        let selected = ws
            .select(Some("deployer"), Path::new(ROOT), false)
            .expect("found");
        assert_eq!(selected.name, "deployer");
        let err = ws
            .select(Some("nope"), Path::new(ROOT), false)
            .expect_err("unknown");
        assert!(
            err.to_string().contains("context-logger, deployer"),
            "{err}"
        );
    }

    #[test]
    fn bundled_filter_is_the_default() {
        let ws = workspace(vec![
            package("deployer", false),
            package("other", true),
            package(BUNDLED_FILTER, true),
        ]);
        assert_eq!(
            ws.select(None, Path::new(ROOT), false).expect("found").name,
            BUNDLED_FILTER
        );
    }

    #[test]
    fn only_cdylib_is_picked_and_several_are_ambiguous() {
        let ws = workspace(vec![package("tool", false), package("my-filter", true)]);
        assert_eq!(
            ws.select(None, Path::new(ROOT), false).expect("found").name,
            "my-filter"
        );
        let ws = workspace(vec![package("a", true), package("b", true)]);
        let err = ws
            .select(None, Path::new(ROOT), false)
            .expect_err("ambiguous");
        assert!(
            err.to_string().contains("a, b") && err.to_string().contains("-p NAME"),
            "{err}"
        );
    }
}
