//! The module behind an `http(s)://` WasmPlugin url, fetched the way istio-agent fetches it
//! (one GET, success status required), for `status` to compare its sha256 with the pin.
use std::time::Duration;

use sha2::{Digest, Sha256};

/// The module's bytes and their hex sha256 (what Istio compares for http(s) urls), or the
/// agent's own wording of why it could not be downloaded.
pub async fn http_module(url: &str) -> Result<(Vec<u8>, String), String> {
    crate::tls::install_crypto_provider();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|err| err.to_string())?;
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|err| format!("wasm module download failed: {err}"))?;
    if !response.status().is_success() {
        return Err(format!(
            "wasm module download request failed: status code {}",
            response.status().as_u16()
        ));
    }
    let bytes = response
        .bytes()
        .await
        .map(|bytes| bytes.to_vec())
        .map_err(|err| format!("wasm module download failed: {err}"))?;
    let checksum = hex::encode(Sha256::digest(&bytes));
    Ok((bytes, checksum))
}
