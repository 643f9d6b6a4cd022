//! The module behind an `http(s)://` WasmPlugin url, fetched the way istio-agent fetches it
//! (pkg/wasm/httpfetcher.go: one GET, a success status, at most 256 MiB, gzip/tar unboxed),
//! for `status` to compare its sha256 with the pin.
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::oci::istio::MAX_MODULE_BYTES;
use crate::oci::{self, Transport};

/// The whole download, like the agent's (a module is up to 256 MiB).
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(120);

/// The module at an http(s) `url` and the checksum Istio compares with `sha256` (the sha256 of
/// the module after unboxing), fetched with the registry flags' TLS settings (`--ca-file`,
/// `--insecure`) and Istio's 256 MiB cap; or the agent's own wording of why it could not be.
pub async fn http_module(url: &str, transport: &Transport) -> Result<(Vec<u8>, String), String> {
    let bytes = unbox_if_possible(http_get(url, transport).await?);
    let checksum = hex::encode(Sha256::digest(&bytes));
    Ok((bytes, checksum))
}

async fn http_get(url: &str, transport: &Transport) -> Result<Vec<u8>, String> {
    crate::tls::install_crypto_provider();
    // The registry's TLS settings: an https module server behind a private CA is as common
    // as such a registry. plain_http means nothing for a url that names its scheme.
    let transport = Transport {
        plain_http: false,
        ..transport.clone()
    };
    let client =
        oci::transport::http_client(&transport, DOWNLOAD_TIMEOUT).map_err(|err| err.to_string())?;
    let mut response = client
        .get(url)
        .timeout(DOWNLOAD_TIMEOUT)
        .send()
        .await
        .map_err(|err| {
            format!(
                "wasm module download failed: {}",
                oci::transport::chain(&err)
            )
        })?;
    if !response.status().is_success() {
        return Err(format!(
            "wasm module download request failed: status code {}",
            response.status().as_u16()
        ));
    }
    let too_big = || {
        format!(
            "wasm module at {url} is larger than Istio's {} MiB limit (istio-agent reads only the \
             first {} MiB, so its checksum and module would be wrong)",
            MAX_MODULE_BYTES >> 20,
            MAX_MODULE_BYTES >> 20
        )
    };
    if response
        .content_length()
        .is_some_and(|length| length > MAX_MODULE_BYTES)
    {
        return Err(too_big());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|err| {
        format!(
            "wasm module download failed: {}",
            oci::transport::chain(&err)
        )
    })? {
        if (body.len() + chunk.len()) as u64 > MAX_MODULE_BYTES {
            return Err(too_big());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// istio-agent's `unboxIfPossible` (pkg/wasm/httpfetcher.go): a body that is not a wasm module
/// but a gzip stream or a POSIX tar is unwrapped (a tar's first file), repeatedly, and the
/// checksum is taken of the result; on any failure the original bytes stand.
fn unbox_if_possible(origin: Vec<u8>) -> Vec<u8> {
    use std::io::Read;
    let mut current = origin.clone();
    loop {
        if current.len() >= 8 && current.starts_with(b"\0asm") {
            return current;
        }
        let next = if current.len() > 2 && current.starts_with(&[0x1f, 0x8b]) {
            let mut out = Vec::new();
            flate2::read::MultiGzDecoder::new(&current[..])
                .take(MAX_MODULE_BYTES)
                .read_to_end(&mut out)
                .ok()
                .map(|_| out)
        } else if current.len() > 262 && &current[257..262] == b"ustar" {
            first_tar_file(&current)
        } else {
            None
        };
        match next {
            Some(next) => current = next,
            None => return origin,
        }
    }
}

fn first_tar_file(tar: &[u8]) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut archive = tar::Archive::new(tar);
    let entry = archive.entries().ok()?.next()?.ok()?;
    let size = entry.header().size().ok()?;
    let mut out = Vec::new();
    entry.take(size).read_to_end(&mut out).ok()?;
    (out.len() as u64 == size).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_bodies_are_unboxed_like_istio() {
        let module = b"\0asm\x01\0\0\0payload".to_vec();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &module).unwrap();
        let gz = gz.finish().unwrap();
        assert_eq!(unbox_if_possible(gz.clone()), module);
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_ustar();
        header.set_size(gz.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(&mut header, "anything.wasm.gz", &gz[..])
            .unwrap();
        let tar = builder.into_inner().unwrap();
        assert_eq!(unbox_if_possible(tar), module, "tar of gzip of the module");
        assert_eq!(unbox_if_possible(b"MZ not wasm".to_vec()), b"MZ not wasm");
        let broken_gz = vec![0x1f, 0x8b, 0, 1, 2];
        assert_eq!(unbox_if_possible(broken_gz.clone()), broken_gz);
    }
}
