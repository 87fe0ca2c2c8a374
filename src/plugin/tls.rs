//! Mutual TLS as go-plugin's AutoMTLS expects it: a throwaway server certificate announced in
//! the handshake line, and a client that must present exactly the certificate the host put in
//! `PLUGIN_CLIENT_CERT`.
//!
//! The host's certificate is a self-signed ECDSA P-521/SHA-512 CA certificate used as a leaf;
//! webpki's path building rejects a CA certificate in that role, so the client is checked by
//! byte-for-byte pinning instead, and only the handshake signatures go through webpki (with
//! aws-lc-rs, whose algorithm set includes P-521). This module never logs key material, and the
//! server's private key never leaves the `rustls::ServerConfig` it is built into.

use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, ServerConfig, SignatureScheme,
};
use thiserror::Error;

/// How long the server certificate stays valid. The process lives for one Terraform command, so
/// this only has to outlast the longest apply; the backdating absorbs small clock differences.
const SERVER_CERT_LIFETIME: Duration = Duration::from_secs(365 * 24 * 60 * 60);
const SERVER_CERT_BACKDATE: Duration = Duration::from_secs(5 * 60);

/// Why mutual TLS could not be set up.
#[derive(Debug, Error)]
pub enum TlsError {
    /// `PLUGIN_CLIENT_CERT` is not a PEM certificate.
    #[error("PLUGIN_CLIENT_CERT holds no PEM certificate: {0}")]
    ClientCertPem(String),
    /// The client certificate's DER does not parse as X.509.
    #[error("PLUGIN_CLIENT_CERT is not a valid X.509 certificate: {0}")]
    ClientCertDer(String),
    /// rcgen could not make the server certificate.
    #[error("cannot generate the server certificate: {0}")]
    ServerCert(#[from] rcgen::Error),
    /// rustls refused the configuration.
    #[error("cannot build the TLS server configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// A ready TLS server configuration and the certificate to announce in the handshake line.
pub struct MutualTls {
    /// Server settings: our certificate, ALPN `h2`, and the pinned client certificate.
    pub config: Arc<ServerConfig>,
    /// DER of our freshly generated server certificate.
    pub server_cert_der: CertificateDer<'static>,
}

impl std::fmt::Debug for MutualTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MutualTls").field("config", &"<redacted>").finish_non_exhaustive()
    }
}

impl MutualTls {
    /// Generates a server certificate and builds a configuration that admits only the client
    /// holding `client_cert_pem`.
    pub fn new(client_cert_pem: &str) -> Result<Self, TlsError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let verifier = PinnedClientCert::from_pem(client_cert_pem, &provider)?;
        let (server_cert_der, server_key) = generate_server_cert()?;

        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(Arc::new(verifier))
            .with_single_cert(vec![server_cert_der.clone()], server_key)?;
        // gRPC clients insist on negotiating HTTP/2 through ALPN.
        config.alpn_protocols = vec![b"h2".to_vec()];

        Ok(Self { config: Arc::new(config), server_cert_der })
    }
}

/// Makes a self-signed ECDSA P-256 certificate for `localhost`, shaped like go-plugin's own: a CA
/// (the host trusts it as its own root) usable for both server and client authentication.
fn generate_server_cert() -> Result<(CertificateDer<'static>, PrivateKeyDer<'static>), TlsError> {
    // FIXME(startup): back to back the handshake line comes in ~3 ms, but right after the machine
    // idles it takes ~20 ms (a bare `/bin/echo` goes from 1 to 7 ms the same way); how much of
    // the rest is this key generation and TLS setup is unmeasured (`scripts/measure-startup.py`).
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;

    let mut params = CertificateParams::new(vec!["localhost".to_owned()])?;
    params.distinguished_name.push(DnType::CommonName, "localhost");
    params.distinguished_name.push(DnType::OrganizationName, "terraform-provider-azurecmk");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
        KeyUsagePurpose::KeyAgreement,
        KeyUsagePurpose::KeyCertSign,
    ];
    params.extended_key_usages =
        vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - SERVER_CERT_BACKDATE;
    params.not_after = now + SERVER_CERT_LIFETIME;

    let cert = params.self_signed(&key)?;
    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    Ok((cert.der().clone(), key_der))
}

/// Admits exactly one client certificate, compared byte for byte, within its validity period.
#[derive(Debug)]
struct PinnedClientCert {
    expected: CertificateDer<'static>,
    /// Validity period of `expected`, in seconds since the Unix epoch.
    valid_from: u64,
    valid_until: u64,
    algorithms: WebPkiSupportedAlgorithms,
}

impl PinnedClientCert {
    fn from_pem(pem_text: &str, provider: &CryptoProvider) -> Result<Self, TlsError> {
        let block = pem::parse_many(pem_text)
            .map_err(|err| TlsError::ClientCertPem(err.to_string()))?
            .into_iter()
            .find(|block| block.tag() == "CERTIFICATE")
            .ok_or_else(|| TlsError::ClientCertPem("no CERTIFICATE block".to_owned()))?;
        let expected = CertificateDer::from(block.into_contents());

        let (_, parsed) = x509_parser::parse_x509_certificate(&expected)
            .map_err(|err| TlsError::ClientCertDer(err.to_string()))?;
        let validity = parsed.validity();
        let seconds = |t: x509_parser::time::ASN1Time| u64::try_from(t.timestamp()).unwrap_or(0);
        let valid_from = seconds(validity.not_before);
        let valid_until = seconds(validity.not_after);

        Ok(Self {
            expected,
            valid_from,
            valid_until,
            algorithms: provider.signature_verification_algorithms,
        })
    }
}

impl ClientCertVerifier for PinnedClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    /// No hints: Go's client then offers its only certificate whatever its issuer.
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        if end_entity.as_ref() != self.expected.as_ref() {
            return Err(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer));
        }
        let now = now.as_secs();
        if now < self.valid_from {
            return Err(rustls::Error::InvalidCertificate(CertificateError::NotValidYet));
        }
        if now > self.valid_until {
            return Err(rustls::Error::InvalidCertificate(CertificateError::Expired));
        }
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use rcgen::PKCS_ECDSA_P521_SHA512;

    use super::*;

    fn unix_time(at: SystemTime) -> UnixTime {
        UnixTime::since_unix_epoch(at.duration_since(SystemTime::UNIX_EPOCH).expect("after 1970"))
    }

    /// A host-style client certificate: self-signed ECDSA P-521/SHA-512 CA for localhost.
    fn host_cert() -> String {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P521_SHA512).expect("P-521 key");
        let mut params = CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.self_signed(&key).expect("self-signed").pem()
    }

    #[test]
    fn pinned_client_cert_admits_only_its_own_certificate() {
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        let pem_text = host_cert();
        let verifier = PinnedClientCert::from_pem(&pem_text, &provider).expect("verifier");
        let own = verifier.expected.clone();
        let other = CertificateDer::from(
            pem::parse(host_cert()).expect("other certificate").into_contents(),
        );
        let now = unix_time(SystemTime::now());
        let far_future = unix_time(SystemTime::now() + Duration::from_secs(20_000 * 86_400 * 365));

        let cases = [
            ("same certificate", own.clone(), now, true),
            ("different certificate", other, now, false),
            ("expired", own, far_future, false),
        ];
        for (name, cert, at, admitted) in cases {
            let verdict = verifier.verify_client_cert(&cert, &[], at);
            assert_eq!(verdict.is_ok(), admitted, "{name}: {verdict:?}");
        }
    }

    #[test]
    fn pinned_client_cert_rejects_bad_input() {
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        let cases = [
            ("not pem", "hello"),
            ("no certificate block", "-----BEGIN KEY-----\nAAAA\n-----END KEY-----\n"),
            ("garbage der", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
        ];
        for (name, input) in cases {
            assert!(PinnedClientCert::from_pem(input, &provider).is_err(), "{name}");
        }
    }

    #[test]
    fn verifier_offers_p521_and_server_config_builds() {
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        let verifier = PinnedClientCert::from_pem(&host_cert(), &provider).expect("verifier");
        assert!(
            verifier.supported_verify_schemes().contains(&SignatureScheme::ECDSA_NISTP521_SHA512)
        );

        let tls = MutualTls::new(&host_cert()).expect("server config");
        assert_eq!(tls.config.alpn_protocols, vec![b"h2".to_vec()]);
        let (_, parsed) = x509_parser::parse_x509_certificate(&tls.server_cert_der).expect("x509");
        assert!(parsed.is_ca());
        assert!(format!("{tls:?}").contains("<redacted>"));
    }
}
