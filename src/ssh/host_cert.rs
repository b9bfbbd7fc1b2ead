//! Host certificates (OpenSSH `*-cert-v01@openssh.com`): whether a certificate a host presents
//! is one to trust, judged against the `@cert-authority` keys its known_hosts trusts for it,
//! and why not ([`CertRefusal`]). Pure: the caller gives the time.
//!
//! The checks are OpenSSH's (`sshconnect.c: check_host_cert`, `sshkey_cert_check_authority`):
//! signed by one of the trusted CA keys (the signature verified), a host certificate (not a
//! user one), `valid after <= now < valid before`, no critical options, and the name the
//! host is looked up under among its principals, compared exactly. One difference, on
//! purpose: a certificate that names no principals is refused (OpenSSH takes it as valid for
//! every host; a certificate should say which hosts it is for).

use std::fmt;

use russh::keys::ssh_key::certificate::CertType;
use russh::keys::{Certificate, HashAlg, PublicKey};

/// Why a host certificate is not trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertRefusal {
    /// No `@cert-authority` line of known_hosts matches the host.
    NoAuthority,
    /// Signed by a CA that no `@cert-authority` line for the host names.
    UntrustedAuthority { fingerprint: String },
    /// The CA's signature does not verify.
    BadSignature,
    /// A user certificate, not a host one.
    NotHost,
    /// Not valid yet (`valid after` is in the future).
    NotYetValid { from: String },
    /// Expired (`valid before` has passed).
    Expired { until: String },
    /// The certificate names no principals.
    NoPrincipals,
    /// The host's name is not among the principals.
    Principal {
        name: String,
        principals: Vec<String>,
    },
    /// Critical options, which host certificates must not have.
    CriticalOptions { names: Vec<String> },
}

impl fmt::Display for CertRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CertRefusal::NoAuthority => {
                f.write_str("no @cert-authority line of known_hosts matches the host")
            }
            CertRefusal::UntrustedAuthority { fingerprint } => write!(
                f,
                "signed by a CA that no @cert-authority line for the host trusts ({fingerprint})"
            ),
            CertRefusal::BadSignature => f.write_str("the CA's signature does not verify"),
            CertRefusal::NotHost => f.write_str("it is a user certificate, not a host one"),
            CertRefusal::NotYetValid { from } => write!(f, "not valid before {from}"),
            CertRefusal::Expired { until } => write!(f, "expired at {until}"),
            CertRefusal::NoPrincipals => f.write_str("it names no principals"),
            CertRefusal::Principal { name, principals } => write!(
                f,
                "{name} is not among its principals ({})",
                principals.join(", ")
            ),
            CertRefusal::CriticalOptions { names } => {
                write!(f, "it has critical options ({})", names.join(", "))
            }
        }
    }
}

/// Judges `cert`, presented by the host looked up as `name` (lowercase, no port), against the
/// CA keys trusted for it, at `now` (seconds since the Unix epoch).
pub(crate) fn judge(
    cert: &Certificate,
    authorities: &[&PublicKey],
    name: &str,
    now: u64,
) -> Result<(), CertRefusal> {
    if authorities.is_empty() {
        return Err(CertRefusal::NoAuthority);
    }
    let signer = cert.signature_key();
    if !authorities.iter().any(|ca| ca.key_data() == signer) {
        let fingerprint = signer.fingerprint(HashAlg::Sha256).to_string();
        return Err(CertRefusal::UntrustedAuthority { fingerprint });
    }
    // Every field below is only as good as the signature over it.
    cert.verify_signature()
        .map_err(|_| CertRefusal::BadSignature)?;
    if cert.cert_type() != CertType::Host {
        return Err(CertRefusal::NotHost);
    }
    if now < cert.valid_after() {
        let from = time_text(cert.valid_after());
        return Err(CertRefusal::NotYetValid { from });
    }
    if now >= cert.valid_before() {
        let until = time_text(cert.valid_before());
        return Err(CertRefusal::Expired { until });
    }
    if !cert.critical_options().is_empty() {
        let names = cert.critical_options().keys().cloned().collect();
        return Err(CertRefusal::CriticalOptions { names });
    }
    let principals = cert.valid_principals();
    if principals.is_empty() {
        return Err(CertRefusal::NoPrincipals);
    }
    if !principals.iter().any(|p| p == name) {
        return Err(CertRefusal::Principal {
            name: name.to_owned(),
            principals: principals.to_vec(),
        });
    }
    Ok(())
}

/// A certificate time as RFC 3339 UTC (`forever` for OpenSSH's "no end").
fn time_text(secs: u64) -> String {
    i64::try_from(secs)
        .ok()
        .and_then(|s| jiff::Timestamp::from_second(s).ok())
        .map_or_else(|| "forever".to_owned(), |t| t.to_string())
}

#[cfg(test)]
#[path = "host_cert_tests.rs"]
mod tests;
