//! The `--image` reference: which kind of location it is and how it is pinned to a digest.
use super::Error;

/// Where a module comes from, as the user wrote it in `--image`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageSource {
    /// An OCI image: `[oci://]host/repo[:tag][@sha256:hex]` (no scheme means OCI, as in Istio).
    Oci(OciRef),
    /// `http://`, `https://` or `file://`: used verbatim; `sha256` only when given.
    Url(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OciRef {
    /// `host/path`, exactly as written (no scheme, tag or digest).
    pub repository: String,
    pub tag: Option<String>,
    /// `sha256:<64 hex>`
    pub digest: Option<String>,
}

impl OciRef {
    /// The reference a registry client resolves (`host/repo:tag` or `host/repo@digest`).
    pub fn reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(digest), _) => format!("{}@{digest}", self.repository),
            (None, Some(tag)) => format!("{}:{tag}", self.repository),
            (None, None) => format!("{}:latest", self.repository),
        }
    }

    /// The registry host (`host[:port]`), which also keys docker config credentials.
    pub fn registry(&self) -> &str {
        self.repository.split('/').next().unwrap_or_default()
    }

    /// The url written to the spec when the tag is kept.
    pub fn tagged_url(&self) -> String {
        format!("oci://{}", self.reference())
    }

    pub fn pinned_url(&self, digest: &str) -> String {
        format!("oci://{}@{digest}", self.repository)
    }
}

impl ImageSource {
    pub fn parse(image: &str) -> Result<Self, Error> {
        let bad = |reason: &str| Error::Image {
            image: image.to_string(),
            reason: reason.to_string(),
        };
        if let Some((scheme, _)) = image.split_once("://") {
            match scheme {
                "http" | "https" | "file" => return Ok(Self::Url(image.to_string())),
                "oci" => {}
                other => {
                    return Err(bad(&format!(
                        "scheme {other:?} is not one of oci, http, https, file"
                    )));
                }
            }
        }
        let bare = image.strip_prefix("oci://").unwrap_or(image);
        let (name, digest) = match bare.split_once('@') {
            Some((name, digest)) => {
                let hex = digest
                    .strip_prefix("sha256:")
                    .ok_or_else(|| bad("the digest must be sha256:<64 hex>"))?;
                if !super::validate::is_sha256_hex(hex) {
                    return Err(bad("the digest must be sha256:<64 lower-case hex>"));
                }
                (name, Some(digest.to_string()))
            }
            None => (bare, None),
        };
        // A ':' after the last '/' is a tag; one before it is a registry port.
        let last_slash = name.rfind('/');
        let (repository, tag) = match name.rfind(':') {
            Some(colon) if last_slash.is_none_or(|slash| colon > slash) => {
                (&name[..colon], Some(name[colon + 1..].to_string()))
            }
            _ => (name, None),
        };
        if repository.is_empty() || !repository.contains('/') {
            return Err(bad(
                "expected REGISTRY/REPOSITORY[:TAG][@sha256:DIGEST], e.g. registry.example.com/filters/logger:v1",
            ));
        }
        if tag.as_deref() == Some("") {
            return Err(bad("empty tag after ':'"));
        }
        Ok(Self::Oci(OciRef {
            repository: repository.to_string(),
            tag,
            digest,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oci(image: &str) -> OciRef {
        match ImageSource::parse(image).unwrap() {
            ImageSource::Oci(r) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parses_tags_ports_and_digests() {
        let r = oci("127.0.0.1:5000/filters/ctx:v1");
        assert_eq!(
            (r.repository.as_str(), r.tag.as_deref(), r.registry()),
            ("127.0.0.1:5000/filters/ctx", Some("v1"), "127.0.0.1:5000")
        );
        assert_eq!(
            r.pinned_url("sha256:ab"),
            "oci://127.0.0.1:5000/filters/ctx@sha256:ab"
        );
        let r = oci("oci://localhost:5000/ctx");
        assert_eq!(
            (r.tag.as_deref(), r.reference().as_str()),
            (None, "localhost:5000/ctx:latest")
        );
        let digest = format!("sha256:{}", "0".repeat(64));
        let r = oci(&format!("reg.io/a/b:v2@{digest}"));
        assert_eq!(
            (r.tag.as_deref(), r.digest.as_deref()),
            (Some("v2"), Some(digest.as_str()))
        );
        assert_eq!(r.reference(), format!("reg.io/a/b@{digest}"));
    }

    #[test]
    fn urls_and_errors() {
        assert_eq!(
            ImageSource::parse("https://h/x.wasm").unwrap(),
            ImageSource::Url("https://h/x.wasm".into())
        );
        for bad in [
            "ftp://h/x",
            "justaname",
            "reg.io/x@sha256:12",
            "reg.io/x@md5:00",
            "reg.io/x:",
        ] {
            assert!(ImageSource::parse(bad).is_err(), "{bad}");
        }
    }
}
