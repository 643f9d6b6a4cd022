//! Keys in the formats cosign reads and writes: PEM PKCS#8 / SEC1 ECDSA P-256 private keys,
//! cosign's encrypted private key (scrypt + NaCl secretbox around PKCS#8 DER, the format of
//! go-securesystemslib's `encrypted` package), and PEM SubjectPublicKeyInfo public keys.
//! Secrets never reach `Debug`, `Display` or an error message.
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use crypto_secretbox::XSalsa20Poly1305;
use crypto_secretbox::aead::{Aead, KeyInit};
use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{DerSignature, SigningKey, VerifyingKey};
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePublicKey};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::Error;

/// The environment variable cosign reads the key password from; the same name lets one
/// CI secret serve both tools.
pub const PASSWORD_ENV: &str = "COSIGN_PASSWORD";

/// Both PEM labels cosign has used for its encrypted keys (v2 writes the first).
const ENCRYPTED_LABELS: &[&str] = &[
    "ENCRYPTED SIGSTORE PRIVATE KEY",
    "ENCRYPTED COSIGN PRIVATE KEY",
];

pub struct PrivateKey {
    key: SigningKey,
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrivateKey")
            .field(
                "public",
                &PublicKey::from(*self.key.verifying_key()).fingerprint,
            )
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
pub struct PublicKey {
    key: VerifyingKey,
    /// `sha256:<hex>` of the SubjectPublicKeyInfo DER: stable across PEM re-encodings, and
    /// what `apply` records so a reader can tell which key vouched for the image.
    pub fingerprint: String,
}

impl From<VerifyingKey> for PublicKey {
    fn from(key: VerifyingKey) -> Self {
        let der = key
            .to_public_key_der()
            .expect("a valid P-256 point always encodes");
        Self {
            fingerprint: format!("sha256:{}", hex::encode(Sha256::digest(der.as_bytes()))),
            key,
        }
    }
}

/// Where an encrypted key's password comes from.
pub enum Password {
    /// `COSIGN_PASSWORD`, else a prompt when stdin is a terminal.
    EnvOrPrompt,
    #[cfg_attr(not(test), allow(dead_code))]
    Given(String),
}

impl PrivateKey {
    pub fn load(path: &Path, password: Password) -> Result<Self, Error> {
        let pem = read(path)?;
        let label = pem_label(&pem).ok_or_else(|| bad(path, "no PEM block found"))?;
        let key = if ENCRYPTED_LABELS.contains(&label.as_str()) {
            // The password, derived key and decrypted DER are wiped from memory when dropped.
            let password = Zeroizing::new(match password {
                Password::Given(password) => password,
                Password::EnvOrPrompt => ask_password(path)?,
            });
            let der = decrypt(path, &pem, &label, password.as_bytes())?;
            SigningKey::from_pkcs8_der(&der).map_err(|err| not_p256(path, &err.to_string()))?
        } else {
            match label.as_str() {
                "PRIVATE KEY" => SigningKey::from_pkcs8_pem(&pem)
                    .map_err(|err| not_p256(path, &err.to_string()))?,
                "EC PRIVATE KEY" => p256::SecretKey::from_sec1_pem(&pem)
                    .map(SigningKey::from)
                    .map_err(|err| not_p256(path, &err.to_string()))?,
                "PUBLIC KEY" => {
                    return Err(bad(
                        path,
                        "this is a public key; signing needs the private key",
                    ));
                }
                other => return Err(bad(path, &format!("unsupported PEM block `{other}`"))),
            }
        };
        Ok(Self { key })
    }

    pub fn public(&self) -> PublicKey {
        PublicKey::from(*self.key.verifying_key())
    }

    /// ECDSA P-256 over SHA-256 of `payload`, ASN.1 DER: what cosign puts (base64) in the
    /// signature annotation. RFC 6979 nonces, so signing the same payload twice gives the same
    /// signature and a repeated `sign` does not pile up layers.
    pub fn sign(&self, payload: &[u8]) -> Vec<u8> {
        let signature: DerSignature = self.key.sign(payload);
        signature.as_bytes().to_vec()
    }
}

impl PublicKey {
    pub fn load(path: &Path) -> Result<Self, Error> {
        let pem = read(path)?;
        match pem_label(&pem).as_deref() {
            Some("PUBLIC KEY") => VerifyingKey::from_public_key_pem(&pem)
                .map(Self::from)
                .map_err(|err| not_p256(path, &err.to_string())),
            Some(label) if label.contains("PRIVATE KEY") => Err(bad(
                path,
                "this is a private key; verify with the public key (cosign.pub)",
            )),
            Some(other) => Err(bad(path, &format!("unsupported PEM block `{other}`"))),
            None => Err(bad(path, "no PEM block found")),
        }
    }

    /// `Err(reason)` when `signature` (ASN.1 DER) is not this key's over `payload`.
    pub fn verify(&self, payload: &[u8], signature: &[u8]) -> Result<(), String> {
        let signature = DerSignature::from_bytes(signature)
            .map_err(|_| "the signature is not an ASN.1 DER ECDSA signature".to_string())?;
        self.key
            .verify(payload, &signature)
            .map_err(|_| "the signature does not match the payload under this key".to_string())
    }
}

fn read(path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|err| Error::ReadKey {
        path: path.to_path_buf(),
        message: err.to_string(),
    })
}

fn bad(path: &Path, reason: &str) -> Error {
    Error::BadKey {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

fn not_p256(path: &Path, detail: &str) -> Error {
    bad(
        path,
        &format!("not an ECDSA P-256 key ({detail}); cosign's default keys are P-256"),
    )
}

fn pem_label(pem: &str) -> Option<String> {
    let start = pem.find("-----BEGIN ")? + "-----BEGIN ".len();
    let end = pem[start..].find("-----")?;
    Some(pem[start..start + end].to_string())
}

fn pem_body(pem: &str, label: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem.find(&begin)? + begin.len();
    let stop = pem[start..].find(&end)? + start;
    let b64: String = pem[start..stop].split_whitespace().collect();
    STANDARD.decode(b64).ok()
}

fn ask_password(path: &Path) -> Result<String, Error> {
    if let Ok(password) = std::env::var(PASSWORD_ENV) {
        return Ok(password);
    }
    if unsafe { libc::isatty(0) } == 1 {
        // rpassword reads from the terminal with echo off; the prompt goes to the terminal too.
        return rpassword::prompt_password(format!("Enter password for {}: ", path.display()))
            .map_err(|err| Error::NoPassword {
                path: path.to_path_buf(),
                reason: format!("cannot read it from the terminal: {err}"),
            });
    }
    Err(Error::NoPassword {
        path: path.to_path_buf(),
        reason: format!("set {PASSWORD_ENV} (no terminal to ask on)"),
    })
}

#[derive(serde::Deserialize)]
struct Envelope {
    kdf: Kdf,
    cipher: Cipher,
    ciphertext: String,
}

#[derive(serde::Deserialize)]
struct Kdf {
    name: String,
    params: KdfParams,
    salt: String,
}

#[derive(serde::Deserialize)]
struct KdfParams {
    #[serde(rename = "N")]
    n: u64,
    r: u32,
    p: u32,
}

#[derive(serde::Deserialize)]
struct Cipher {
    name: String,
    nonce: String,
}

fn decrypt(
    path: &Path,
    pem: &str,
    label: &str,
    password: &[u8],
) -> Result<Zeroizing<Vec<u8>>, Error> {
    let body = pem_body(pem, label).ok_or_else(|| bad(path, "the PEM body is not base64"))?;
    let envelope: Envelope = serde_json::from_slice(&body).map_err(|err| {
        bad(
            path,
            &format!("the encrypted key is not cosign's JSON: {err}"),
        )
    })?;
    if envelope.kdf.name != "scrypt" || envelope.cipher.name != "nacl/secretbox" {
        return Err(bad(
            path,
            &format!(
                "unsupported key encryption {}/{} (cosign uses scrypt/nacl/secretbox)",
                envelope.kdf.name, envelope.cipher.name
            ),
        ));
    }
    let decode = |field: &str, value: &str| {
        STANDARD
            .decode(value)
            .map_err(|_| bad(path, &format!("the key's {field} is not base64")))
    };
    let salt = decode("salt", &envelope.kdf.salt)?;
    let nonce = decode("nonce", &envelope.cipher.nonce)?;
    let ciphertext = decode("ciphertext", &envelope.ciphertext)?;
    let KdfParams { n, r, p } = envelope.kdf.params;
    if !n.is_power_of_two() || n < 2 || nonce.len() != 24 {
        return Err(bad(
            path,
            "the key's scrypt parameters or nonce are invalid",
        ));
    }
    let params = scrypt::Params::new(n.trailing_zeros() as u8, r, p, 32).map_err(|err| {
        bad(
            path,
            &format!("the key's scrypt parameters are invalid: {err}"),
        )
    })?;
    let mut key = Zeroizing::new([0u8; 32]);
    scrypt::scrypt(password, &salt, &params, key.as_mut())
        .map_err(|err| bad(path, &format!("scrypt failed: {err}")))?;
    let cipher = XSalsa20Poly1305::new(key.as_ref().into());
    cipher
        .decrypt(nonce.as_slice().into(), ciphertext.as_slice())
        .map(Zeroizing::new)
        .map_err(|_| Error::WrongPassword {
            path: path.to_path_buf(),
        })
}

/// Test helper: cosign's encrypted format around `der`, with cheap scrypt parameters.
#[cfg(test)]
pub(crate) fn encrypt_for_test(der: &[u8], password: &[u8]) -> String {
    let salt = [7u8; 32];
    let nonce = [9u8; 24];
    let params = scrypt::Params::new(10, 8, 1, 32).unwrap();
    let mut key = [0u8; 32];
    scrypt::scrypt(password, &salt, &params, &mut key).unwrap();
    let ciphertext = XSalsa20Poly1305::new(&key.into())
        .encrypt(nonce.as_slice().into(), der)
        .unwrap();
    let json = serde_json::json!({
        "kdf": {"name": "scrypt", "params": {"N": 1024, "r": 8, "p": 1}, "salt": STANDARD.encode(salt)},
        "cipher": {"name": "nacl/secretbox", "nonce": STANDARD.encode(nonce)},
        "ciphertext": STANDARD.encode(ciphertext),
    });
    let b64 = STANDARD.encode(json.to_string());
    format!(
        "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n{b64}\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n"
    )
}
