//! The `--image` location: an OCI reference or a plain url. OCI references are parsed by
//! [`ImageRef`], the one grammar push, pull, inspect and status use too, so `render --image X`
//! accepts exactly the references `push X` accepts.
use crate::oci::{self, ImageRef};

use super::Error;

/// Where a module comes from, as the user wrote it in `--image` (or `spec.url` in `-f`).
#[derive(Debug, Clone)]
pub enum ImageSource {
    /// An OCI image: `[oci://][host[:port]/]repo[:tag][@digest]` (no scheme means OCI, as in
    /// Istio; no host means Docker Hub, as in Docker).
    Oci(ImageRef),
    /// `http://`, `https://` or `file://`: used verbatim; `sha256` only when given.
    Url(String),
}

impl ImageSource {
    pub fn parse(image: &str) -> Result<Self, Error> {
        let bad = |reason: String| Error::Image {
            image: image.to_string(),
            reason,
        };
        if let Some((scheme, _)) = image.split_once("://") {
            match scheme {
                "http" | "https" | "file" => return Ok(Self::Url(image.to_string())),
                "oci" => {}
                other => {
                    return Err(bad(format!(
                        "scheme {other:?} is not one of oci, http, https, file"
                    )));
                }
            }
        }
        match ImageRef::parse(image) {
            Ok(reference) => Ok(Self::Oci(reference)),
            Err(oci::Error::InvalidReference { reason, .. }) => Err(bad(format!(
                "{reason} (expected [REGISTRY/]REPOSITORY[:TAG][@sha256:DIGEST], e.g. registry.example.com/filters/logger:v1)"
            ))),
            Err(other) => Err(bad(other.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oci(image: &str) -> ImageRef {
        match ImageSource::parse(image).unwrap() {
            ImageSource::Oci(r) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parses_tags_ports_and_digests() {
        let r = oci("127.0.0.1:5000/filters/ctx:v1");
        assert_eq!(
            (r.untagged(), r.tag(), r.credential_key()),
            ("127.0.0.1:5000/filters/ctx", Some("v1"), "127.0.0.1:5000")
        );
        assert_eq!(
            r.digest_url("sha256:ab"),
            "oci://127.0.0.1:5000/filters/ctx@sha256:ab"
        );
        assert_eq!(
            oci("oci://localhost:5000/ctx").url(),
            "oci://localhost:5000/ctx:latest"
        );
        let digest = format!("sha256:{}", "0".repeat(64));
        let r = oci(&format!("reg.io/a/b:v2@{digest}"));
        assert_eq!((r.tag(), r.digest()), (Some("v2"), Some(digest.as_str())));
        assert_eq!(r.url(), format!("oci://reg.io/a/b@{digest}"));
    }

    #[test]
    fn urls_and_errors() {
        assert!(matches!(
            ImageSource::parse("https://h/x.wasm").unwrap(),
            ImageSource::Url(url) if url == "https://h/x.wasm"
        ));
        for bad in [
            "ftp://h/x",
            "reg.io/x@sha256:12",
            "reg.io/x@md5:00",
            "reg.io/x:",
            "reg.io/UPPER/x:v1",
        ] {
            let err = ImageSource::parse(bad).unwrap_err().to_string();
            assert!(err.contains("--image"), "{bad}: {err}");
        }
    }
}
