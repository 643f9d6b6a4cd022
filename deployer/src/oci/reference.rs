//! Image references as users type them (`localhost:5000/filters/logger:v1`, optionally with
//! `oci://` in front, as in a WasmPlugin url), parsed with Docker's rules before any network call.
use oci_client::Reference;

use super::Error;

#[derive(Debug, Clone)]
pub struct ImageRef {
    /// What the user typed, minus `oci://` and any `@digest`: the base of the pinned url.
    name: String,
    inner: Reference,
}

impl ImageRef {
    pub fn parse(input: &str) -> Result<Self, Error> {
        let invalid = |reason: &str| Error::InvalidReference {
            reference: input.to_string(),
            reason: reason.to_string(),
        };
        let trimmed = input.strip_prefix("oci://").unwrap_or(input);
        if trimmed.is_empty() {
            return Err(invalid("it is empty"));
        }
        if trimmed.contains("://") {
            return Err(invalid(
                "only oci:// urls name images (http(s) urls point at plain files)",
            ));
        }
        let inner: Reference = trimmed
            .parse()
            .map_err(|err: oci_client::ParseError| invalid(&err.to_string()))?;
        let name = trimmed
            .split_once('@')
            .map(|(name, _)| name)
            .unwrap_or(trimmed)
            .to_string();
        Ok(Self { name, inner })
    }

    pub fn inner(&self) -> &Reference {
        &self.inner
    }

    /// The registry host[:port] requests go to (`index.docker.io` for Docker Hub).
    pub fn registry(&self) -> &str {
        self.inner.resolve_registry()
    }

    pub fn repository(&self) -> &str {
        self.inner.repository()
    }

    /// The reference as typed, without `oci://` (and without a digest).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `oci://NAME@sha256:...`: what a WasmPlugin url should say to pin this exact image.
    pub fn pinned_url(&self, digest: &str) -> String {
        format!("oci://{}@{digest}", self.name)
    }

    /// Whether the registry is this machine, where a plain-HTTP registry is common.
    pub fn is_loopback(&self) -> bool {
        let host = self
            .registry()
            .rsplit_once(':')
            .map(|(host, _)| host)
            .unwrap_or(self.registry());
        host == "localhost" || host == "[::1]" || host.starts_with("127.")
    }
}

impl std::fmt::Display for ImageRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.inner.digest() {
            Some(digest) => write!(f, "{}@{digest}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_local_refs_with_and_without_scheme() {
        let plain = ImageRef::parse("localhost:5000/filters/logger:v1").unwrap();
        assert_eq!(plain.registry(), "localhost:5000");
        assert_eq!(plain.repository(), "filters/logger");
        assert!(plain.is_loopback());
        let url = ImageRef::parse("oci://127.0.0.1:5000/logger:v1").unwrap();
        assert_eq!(url.name(), "127.0.0.1:5000/logger:v1");
        assert_eq!(
            url.pinned_url("sha256:ab"),
            "oci://127.0.0.1:5000/logger:v1@sha256:ab"
        );
    }

    #[test]
    fn strips_a_digest_from_the_pinned_base() {
        let digest = format!("sha256:{}", "a".repeat(64));
        let pinned = ImageRef::parse(&format!("reg.example/x:v1@{digest}")).unwrap();
        assert_eq!(pinned.name(), "reg.example/x:v1");
        assert_eq!(pinned.inner().digest(), Some(digest.as_str()));
    }

    #[test]
    fn refuses_bad_refs() {
        for bad in [
            "",
            "oci://",
            "localhost:5000/UPPER/case:v1",
            "https://reg.example/x:v1",
            "reg.example/x:bad tag",
        ] {
            assert!(
                matches!(ImageRef::parse(bad), Err(Error::InvalidReference { .. })),
                "{bad:?} accepted"
            );
        }
    }
}
