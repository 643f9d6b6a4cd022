//! The process-wide rustls crypto provider. reqwest (OCI registries) and kube (API servers) are
//! built without a default provider so only ring is compiled in; one must be installed before
//! the first TLS client is built. Every library function that builds a client calls this, so
//! commands and library users never have to remember it.

/// Installs ring as the process default. Idempotent and cheap after the first call.
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Err means another part of the process installed one first, which is just as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}
