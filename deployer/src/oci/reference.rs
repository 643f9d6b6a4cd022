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
        let inner = grammar::parse(trimmed).map_err(invalid)?;
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

    /// The registry as Docker normalises it (`docker.io` for Docker Hub, whatever was typed
    /// otherwise): the key for docker config credentials, so `user/logger` finds Docker Hub's
    /// login and never an `auths` entry named `user`.
    pub fn credential_key(&self) -> &str {
        self.inner.registry()
    }

    /// The tag: `latest` when neither a tag nor a digest was typed, as Docker reads it.
    pub fn tag(&self) -> Option<&str> {
        self.inner.tag()
    }

    pub fn digest(&self) -> Option<&str> {
        self.inner.digest()
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

    /// The reference as typed without `oci://`, tag or digest (`localhost:5000/filters/logger`).
    pub fn untagged(&self) -> &str {
        let last_slash = self.name.rfind('/').map_or(0, |at| at + 1);
        match self.name[last_slash..].rfind(':') {
            Some(at) => &self.name[..last_slash + at],
            None => &self.name,
        }
    }

    /// `oci://REPO@DIGEST`, the tag dropped: how apply and render pin a url (the digest alone
    /// names the image, and a tag next to it would only suggest otherwise).
    pub fn digest_url(&self, digest: &str) -> String {
        format!("oci://{}@{digest}", self.untagged())
    }

    /// The url apply and render write when they do not pin: the typed digest if any
    /// (`oci://REPO@DIGEST`), else the tag, `latest` spelled out when none was typed.
    pub fn url(&self) -> String {
        match (self.digest(), self.tag()) {
            (Some(digest), _) => self.digest_url(digest),
            (None, tag) => format!("oci://{}:{}", self.untagged(), tag.unwrap_or("latest")),
        }
    }

    /// Another tag in the same repository (cosign's `sha256-<hex>.sig` signature images).
    pub fn with_tag(&self, tag: &str) -> ImageRef {
        let repository = match self.inner.tag() {
            Some(old) => self
                .name
                .strip_suffix(&format!(":{old}"))
                .unwrap_or(&self.name),
            None => &self.name,
        };
        ImageRef {
            name: format!("{repository}:{tag}"),
            inner: Reference::with_tag(
                self.inner.registry().to_string(),
                self.inner.repository().to_string(),
                tag.to_string(),
            ),
        }
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

/// Docker's reference grammar (distribution/reference), by hand: oci-spec's parser compiles a
/// large regex on first use, which costs a short CLI run more than all of its network I/O.
mod grammar {
    use oci_client::Reference;

    const MAX_REPOSITORY: usize = 255;

    pub fn parse(input: &str) -> Result<Reference, &'static str> {
        let (name_tag, digest) = match input.split_once('@') {
            Some((name_tag, digest)) => (name_tag, Some(check_digest(digest)?)),
            None => (input, None),
        };
        let last_slash = name_tag.rfind('/').map_or(0, |at| at + 1);
        let (name, tag) = match name_tag[last_slash..].rfind(':') {
            Some(at) => (
                &name_tag[..last_slash + at],
                Some(check_tag(&name_tag[last_slash + at + 1..])?),
            ),
            None => (name_tag, None),
        };
        let mut components: Vec<&str> = name.split('/').collect();
        let domain = match components.first() {
            Some(first)
                if components.len() > 1
                    && (first.contains(['.', ':']) || *first == "localhost") =>
            {
                let domain = components.remove(0);
                check_domain(domain)?;
                Some(domain)
            }
            _ => None,
        };
        if components
            .iter()
            .any(|component| !is_path_component(component))
        {
            return Err(
                "repository names are lowercase letters, digits and separators (. _ __ -), split by /",
            );
        }
        let mut repository = components.join("/");
        let registry = match domain {
            Some(domain) => domain.to_string(),
            None => {
                if components.len() == 1 {
                    repository = format!("library/{repository}");
                }
                "docker.io".to_string()
            }
        };
        if repository.len() > MAX_REPOSITORY {
            return Err("the repository name is longer than 255 characters");
        }
        Ok(match (tag, digest) {
            (Some(tag), Some(digest)) => {
                Reference::with_tag_and_digest(registry, repository, tag, digest)
            }
            (None, Some(digest)) => Reference::with_digest(registry, repository, digest),
            (tag, None) => {
                Reference::with_tag(registry, repository, tag.unwrap_or_else(|| "latest".into()))
            }
        })
    }

    fn check_tag(tag: &str) -> Result<String, &'static str> {
        let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
        let mut chars = tag.chars();
        let valid = tag.len() <= 128
            && chars.next().is_some_and(word)
            && chars.all(|c| word(c) || c == '.' || c == '-');
        valid
            .then(|| tag.to_string())
            .ok_or("a tag is 1-128 of letters, digits, _ . - (not starting with . or -)")
    }

    fn check_digest(digest: &str) -> Result<String, &'static str> {
        let (algorithm, hex) = digest
            .split_once(':')
            .ok_or("a digest looks like sha256:<64 hex digits>")?;
        let length = match algorithm {
            "sha256" => 64,
            "sha384" => 96,
            "sha512" => 128,
            _ => return Err("unsupported digest algorithm (sha256, sha384 or sha512)"),
        };
        if hex.len() != length || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err("a digest looks like sha256:<64 hex digits>");
        }
        Ok(digest.to_string())
    }

    fn check_domain(domain: &str) -> Result<(), &'static str> {
        let (host, port) = match domain.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (domain, None),
        };
        let label_ok = |label: &str| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        };
        let port_ok =
            port.is_none_or(|port| !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()));
        (host.split('.').all(label_ok) && port_ok)
            .then_some(())
            .ok_or("the registry must be host[:port]")
    }

    /// `[a-z0-9]+` runs joined by `.`, `_`, `__` or any number of `-`.
    fn is_path_component(component: &str) -> bool {
        let bytes = component.as_bytes();
        let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
        if bytes.is_empty() || !alnum(&bytes[0]) || !alnum(&bytes[bytes.len() - 1]) {
            return false;
        }
        let mut at = 0;
        while at < bytes.len() {
            if alnum(&bytes[at]) {
                at += 1;
                continue;
            }
            let start = at;
            while at < bytes.len() && !alnum(&bytes[at]) {
                at += 1;
            }
            let separator = &component[start..at];
            if !(separator == "."
                || separator == "_"
                || separator == "__"
                || separator.bytes().all(|b| b == b'-'))
            {
                return false;
            }
        }
        true
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
    fn agrees_with_the_reference_grammar() {
        let digest = format!("sha256:{}", "ab".repeat(32));
        let inputs = [
            "localhost:5000/filters/logger:v1".to_string(),
            "localhost/x".into(),
            "logger".into(),
            "user/logger:1.0".into(),
            "reg.example.com/a/b/c:tag_1".into(),
            "reg.example.com:443/a__b/c-d--e/f.g".into(),
            format!("reg.example/x:v1@{digest}"),
            format!("reg.example/x@{digest}"),
            "Reg.Example.com/x".into(),
            "reg.example/X".into(),
            "reg.example/x:".into(),
            "reg.example/x:-bad".into(),
            "reg.example/x@sha256:abc".into(),
            "reg.example/-x".into(),
            "reg.example/x_".into(),
            "reg.example/a___b".into(),
            "reg.example//x".into(),
            "reg.example:port/x".into(),
            format!("reg.example/{}", "a".repeat(256)),
        ];
        for input in inputs {
            let ours = grammar::parse(&input).ok().map(|r| r.whole());
            let theirs = input.parse::<Reference>().ok().map(|r| r.whole());
            assert_eq!(ours, theirs, "{input}");
        }
    }

    /// The one grammar, as a table: what each input means (registry requests go to, docker
    /// config key, repository, tag, digest) or that it is refused. push, pull, inspect, status,
    /// apply and render all parse with [`ImageRef::parse`], so this is what each of them takes.
    #[test]
    fn the_grammar_as_a_table() {
        let digest = format!("sha256:{}", "ab".repeat(32));
        struct Valid {
            input: String,
            registry: &'static str,
            credential_key: &'static str,
            repository: &'static str,
            tag: Option<&'static str>,
            digest: bool,
        }
        let valid = |input: &str, registry, credential_key, repository, tag, digest| Valid {
            input: input.to_string(),
            registry,
            credential_key,
            repository,
            tag,
            digest,
        };
        let hub = "index.docker.io";
        let cases = [
            // No registry: Docker Hub, single names under library/.
            valid(
                "logger",
                hub,
                "docker.io",
                "library/logger",
                Some("latest"),
                false,
            ),
            valid(
                "logger:v1",
                hub,
                "docker.io",
                "library/logger",
                Some("v1"),
                false,
            ),
            // A first component without `.` or `:` that is not localhost is a Hub namespace.
            valid(
                "user/logger",
                hub,
                "docker.io",
                "user/logger",
                Some("latest"),
                false,
            ),
            valid(
                "user/team/logger:1.0",
                hub,
                "docker.io",
                "user/team/logger",
                Some("1.0"),
                false,
            ),
            valid(
                "docker.io/user/logger",
                hub,
                "docker.io",
                "user/logger",
                Some("latest"),
                false,
            ),
            valid(
                "localhost/x",
                "localhost",
                "localhost",
                "x",
                Some("latest"),
                false,
            ),
            valid(
                "localhost:5000/filters/logger:v1",
                "localhost:5000",
                "localhost:5000",
                "filters/logger",
                Some("v1"),
                false,
            ),
            valid(
                "oci://127.0.0.1:5000/logger:v1",
                "127.0.0.1:5000",
                "127.0.0.1:5000",
                "logger",
                Some("v1"),
                false,
            ),
            valid(
                "reg.io/a__b/c-d--e/f.g_h:T_1.x-y",
                "reg.io",
                "reg.io",
                "a__b/c-d--e/f.g_h",
                Some("T_1.x-y"),
                false,
            ),
            // Host names are case-insensitive, so upper case is allowed there only.
            valid(
                "Reg.Example.com:443/x",
                "Reg.Example.com:443",
                "Reg.Example.com:443",
                "x",
                Some("latest"),
                false,
            ),
            valid(
                &format!("reg.io/x@{digest}"),
                "reg.io",
                "reg.io",
                "x",
                None,
                true,
            ),
            valid(
                &format!("reg.io/x:v1@{digest}"),
                "reg.io",
                "reg.io",
                "x",
                Some("v1"),
                true,
            ),
            valid(
                &format!("oci://logger@{digest}"),
                hub,
                "docker.io",
                "library/logger",
                None,
                true,
            ),
        ];
        for case in &cases {
            let parsed = ImageRef::parse(&case.input)
                .unwrap_or_else(|err| panic!("{} refused: {err}", case.input));
            assert_eq!(
                (
                    parsed.registry(),
                    parsed.credential_key(),
                    parsed.repository(),
                    parsed.tag(),
                    parsed.digest().is_some()
                ),
                (
                    case.registry,
                    case.credential_key,
                    case.repository,
                    case.tag,
                    case.digest
                ),
                "{}",
                case.input
            );
        }
        let refused = [
            "".to_string(),
            "oci://".into(),
            "https://reg.io/x:v1".into(),
            "oci://oci://reg.io/x".into(),
            // Repository components are lower case, in every position.
            "reg.io/UPPER/x:v1".into(),
            "User/logger".into(),
            "localhost:5000/filters/Logger".into(),
            "reg.io/-x".into(),
            "reg.io/x_".into(),
            "reg.io/a___b".into(),
            "reg.io//x".into(),
            "reg.io/x/".into(),
            format!("reg.io/{}", "a".repeat(256)),
            // Tags: 1-128 of [A-Za-z0-9_.-], not starting with . or -.
            "reg.io/x:".into(),
            "reg.io/x:-v1".into(),
            "reg.io/x:bad tag".into(),
            format!("reg.io/x:{}", "t".repeat(129)),
            // Registries: host[:port].
            "reg.io:port/x".into(),
            "reg.io:/x".into(),
            "-reg.io/x".into(),
            // Digests: a known algorithm and its full hex.
            "reg.io/x@".into(),
            "reg.io/x@sha256:abc".into(),
            "reg.io/x@md5:00".into(),
            format!("reg.io/x@sha256:{}", "g".repeat(64)),
        ];
        for input in &refused {
            assert!(
                matches!(ImageRef::parse(input), Err(Error::InvalidReference { .. })),
                "{input:?} accepted"
            );
        }
    }

    #[test]
    fn urls_keep_what_was_typed() {
        let digest = format!("sha256:{}", "ab".repeat(32));
        let tagged = ImageRef::parse("oci://reg.io/a/b:v1").unwrap();
        assert_eq!(tagged.untagged(), "reg.io/a/b");
        assert_eq!(tagged.url(), "oci://reg.io/a/b:v1");
        assert_eq!(
            tagged.digest_url(&digest),
            format!("oci://reg.io/a/b@{digest}")
        );
        // Docker Hub references stay short: Istio normalises them the same way.
        assert_eq!(
            ImageRef::parse("logger").unwrap().url(),
            "oci://logger:latest"
        );
        let port = ImageRef::parse("localhost:5000/x").unwrap();
        assert_eq!(
            (port.untagged(), port.url().as_str()),
            ("localhost:5000/x", "oci://localhost:5000/x:latest")
        );
        let both = ImageRef::parse(&format!("reg.io/x:v1@{digest}")).unwrap();
        assert_eq!(both.url(), format!("oci://reg.io/x@{digest}"));
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
