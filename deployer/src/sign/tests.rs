use p256::ecdsa::SigningKey;
use p256::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};

use super::cosign::{self, Layer};
use super::keys::{Password, PrivateKey, PublicKey};
use super::{Error, payload, signature_tag};

const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn keypair(dir: &std::path::Path, seed: u8) -> (std::path::PathBuf, std::path::PathBuf) {
    let key = SigningKey::from_slice(&[seed; 32]).unwrap();
    let private = dir.join(format!("k{seed}.key"));
    let public = dir.join(format!("k{seed}.pub"));
    std::fs::write(
        &private,
        key.to_pkcs8_pem(LineEnding::LF).unwrap().as_bytes(),
    )
    .unwrap();
    std::fs::write(
        &public,
        key.verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap(),
    )
    .unwrap();
    (private, public)
}

#[test]
fn payload_is_cosigns_simple_signing_document_byte_for_byte() {
    assert_eq!(
        String::from_utf8(payload("localhost:5000/filters/logger", DIGEST)).unwrap(),
        format!(
            r#"{{"critical":{{"identity":{{"docker-reference":"localhost:5000/filters/logger"}},"image":{{"docker-manifest-digest":"{DIGEST}"}},"type":"cosign container image signature"}},"optional":null}}"#
        )
    );
    assert_eq!(
        signature_tag(DIGEST),
        "sha256-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.sig"
    );
}

#[test]
fn sign_then_check_accepts_and_rejects_tampering_wrong_key_and_wrong_digest() {
    let dir = tempfile::tempdir().unwrap();
    let (private, public) = keypair(dir.path(), 1);
    let (_, other_public) = keypair(dir.path(), 2);
    let key = PrivateKey::load(&private, Password::EnvOrPrompt).unwrap();
    let public = PublicKey::load(&public).unwrap();
    assert_eq!(key.public().fingerprint, public.fingerprint);
    let body = payload("r/x", DIGEST);
    use base64::Engine as _;
    let sig = base64::engine::general_purpose::STANDARD.encode(key.sign(&body));
    cosign::check(&body, &sig, &public, DIGEST).unwrap();

    let other = PublicKey::load(&other_public).unwrap();
    let err = cosign::check(&body, &sig, &other, DIGEST).unwrap_err();
    assert!(err.contains("does not match"), "{err}");

    let mut tampered = body.clone();
    tampered[10] ^= 1;
    assert!(cosign::check(&tampered, &sig, &public, DIGEST).is_err());

    let other_digest = DIGEST.replace("0123", "9999");
    let err = cosign::check(&body, &sig, &public, &other_digest).unwrap_err();
    assert!(err.contains("the signature is for"), "{err}");
}

#[test]
fn signature_image_appends_and_reads_back_layers() {
    let a = Layer::new(b"one", "c2ln".into());
    let b = Layer::new(b"two", "c2lnMg==".into());
    let image = cosign::image(&[a.clone(), b.clone()]);
    let layers = cosign::layers(&image.manifest).unwrap();
    assert_eq!(layers, vec![a, b]);
    let config: serde_json::Value = serde_json::from_slice(&image.config).unwrap();
    assert_eq!(config["rootfs"]["diff_ids"].as_array().unwrap().len(), 2);
}

#[test]
fn encrypted_key_decrypts_with_the_right_password_only_and_never_echoes_it() {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::from_slice(&[3; 32]).unwrap();
    let der = key.to_pkcs8_der().unwrap();
    let path = dir.path().join("cosign.key");
    std::fs::write(
        &path,
        super::keys::encrypt_for_test(der.as_bytes(), b"right horse"),
    )
    .unwrap();
    let loaded = PrivateKey::load(&path, Password::Given("right horse".into())).unwrap();
    assert_eq!(
        loaded.public().fingerprint,
        PublicKey::from(*key.verifying_key()).fingerprint
    );
    let err = PrivateKey::load(&path, Password::Given("battery staple".into())).unwrap_err();
    assert!(matches!(err, Error::WrongPassword { .. }), "{err}");
    let text = format!("{err} {err:?}");
    assert!(!text.contains("battery"), "{text}");
}

#[test]
fn public_key_given_for_signing_and_private_for_verifying_are_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let (private, public) = keypair(dir.path(), 4);
    let err = PrivateKey::load(&public, Password::EnvOrPrompt).unwrap_err();
    assert!(err.to_string().contains("needs the private key"), "{err}");
    let err = PublicKey::load(&private).unwrap_err();
    assert!(
        err.to_string().contains("verify with the public key"),
        "{err}"
    );
}
