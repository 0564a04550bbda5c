//! Root certificates: loaded once per process and shared by every HTTPS client (the AWS SDK's
//! and the one that posts to Slack), so a cold start reads no certificate store twice.
//!
//! `TLS_ROOTS` chooses where they come from:
//! - `bundled` (default): Mozilla's root program, compiled in (`webpki-root-certs`). No file is
//!   read at init, which is most of what a cold start used to spend.
//! - `system`: the system's store (`/etc/pki`, `/etc/ssl`, or `SSL_CERT_FILE`/`SSL_CERT_DIR`),
//!   read once. For networks behind a TLS-inspecting proxy whose CA is installed there.

use rustls_pki_types::CertificateDer;
use std::sync::OnceLock;

/// Where the root certificates come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootsSource {
    Bundled,
    System,
}

impl RootsSource {
    /// `TLS_ROOTS` as configured: `bundled` (or unset), `system`; anything else fails init
    /// (`CommonConfig`), so a typo is found at deploy time rather than behind a proxy.
    pub fn parse(value: Option<&str>) -> Result<Self, crate::config::ConfigError> {
        match value.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
            None | Some("") | Some("bundled") => Ok(RootsSource::Bundled),
            Some("system") => Ok(RootsSource::System),
            Some(other) => Err(crate::config::ConfigError {
                variable: "TLS_ROOTS",
                message: format!(
                    "expected bundled or system, got {:?}",
                    crate::text::shown(other, 20)
                ),
            }),
        }
    }

    /// `TLS_ROOTS` as [`RootsSource::parse`] reads it. Init has refused a bad value already;
    /// one that gets here anyway (a caller that skipped `CommonConfig`) is the bundled set, so
    /// a typo never disables TLS.
    pub fn from_env() -> Self {
        Self::parse(std::env::var("TLS_ROOTS").ok().as_deref()).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "using the bundled roots");
            RootsSource::Bundled
        })
    }
}

static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();

/// The root certificates, loaded on first use and kept for the life of the process.
pub fn roots() -> &'static [CertificateDer<'static>] {
    ROOTS.get_or_init(|| load(RootsSource::from_env()))
}

fn load(source: RootsSource) -> Vec<CertificateDer<'static>> {
    match source {
        RootsSource::Bundled => webpki_root_certs::TLS_SERVER_ROOT_CERTS.to_vec(),
        RootsSource::System => {
            let found = rustls_native_certs::load_native_certs();
            if !found.errors.is_empty() {
                tracing::warn!(errors = ?found.errors, "some system root certificates could not be read");
            }
            if found.certs.is_empty() {
                // Never run without roots: fall back to the bundled set, and say so.
                tracing::error!("no system root certificates found; using the bundled set");
                return load(RootsSource::Bundled);
            }
            found.certs
        }
    }
}

/// The roots as one PEM bundle, the form the AWS SDK's trust store takes.
fn pem_bundle(certs: &[CertificateDer<'_>]) -> Vec<u8> {
    use base64::Engine as _;
    let mut out = String::new();
    for c in certs {
        let b64 = base64::engine::general_purpose::STANDARD.encode(c.as_ref());
        out.push_str("-----BEGIN CERTIFICATE-----\n");
        for line in b64.as_bytes().chunks(64) {
            out.push_str(std::str::from_utf8(line).unwrap_or_default());
            out.push('\n');
        }
        out.push_str("-----END CERTIFICATE-----\n");
    }
    out.into_bytes()
}

/// The AWS SDK's HTTPS client (rustls with aws-lc, as the SDK's default), trusting [`roots`]
/// instead of reading the system store itself.
pub fn sdk_http_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    use aws_smithy_http_client::tls;
    let trust = tls::TrustStore::empty().with_pem_certificate(pem_bundle(roots()));
    let builder = aws_smithy_http_client::Builder::new().tls_provider(tls::Provider::Rustls(
        tls::rustls_provider::CryptoMode::AwsLc,
    ));
    match tls::TlsContext::builder().with_trust_store(trust).build() {
        Ok(ctx) => builder.tls_context(ctx).build_https(),
        Err(e) => {
            tracing::warn!(error = %e, "TLS context rejected; using the SDK's default trust store");
            builder.build_https()
        }
    }
}

/// A `reqwest` client builder trusting exactly [`roots`].
pub fn http_client_builder() -> reqwest::ClientBuilder {
    let certs = roots()
        .iter()
        .filter_map(|c| reqwest::Certificate::from_der(c.as_ref()).ok());
    reqwest::Client::builder().tls_certs_only(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_roots_round_trip_through_pem() {
        use rustls_pki_types::pem::PemObject;
        let bundled = load(RootsSource::Bundled);
        assert!(bundled.len() > 100, "{}", bundled.len());
        let pem = pem_bundle(&bundled);
        let back: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(back, bundled);
    }

    #[test]
    fn clients_build_with_the_shared_roots() {
        let _sdk = sdk_http_client();
        http_client_builder().build().unwrap();
        // Every root reqwest is given parses, so the Slack client trusts the same set.
        assert!(roots().len() > 100, "{}", roots().len());
        assert!(
            roots()
                .iter()
                .all(|c| reqwest::Certificate::from_der(c.as_ref()).is_ok())
        );
    }
}
