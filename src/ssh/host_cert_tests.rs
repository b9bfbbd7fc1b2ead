//! Tests of `host_cert.rs` on certificates made by OpenSSH's `ssh-keygen -s`.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::*;

struct Keys {
    dir: PathBuf,
}

impl Keys {
    fn new(name: &str) -> Keys {
        let dir = std::env::temp_dir().join(format!("ngssh-cert-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        assert!(std::fs::create_dir_all(&dir).is_ok());
        for key in ["ca", "other_ca", "host"] {
            let made = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-C", key, "-f"])
                .arg(dir.join(key))
                .status();
            assert!(made.is_ok_and(|s| s.success()), "ssh-keygen {key}");
        }
        Keys { dir }
    }

    fn public(&self, name: &str) -> PublicKey {
        let text = std::fs::read_to_string(self.dir.join(format!("{name}.pub"))).expect("pub");
        PublicKey::from_openssh(&text).expect("public key parses")
    }

    /// `ssh-keygen -s CA -I id ARGS host.pub`, read back.
    fn sign(&self, ca: &str, args: &[&str]) -> Certificate {
        let cert = self.dir.join("host-cert.pub");
        let _ = std::fs::remove_file(&cert);
        let signed = Command::new("ssh-keygen")
            .arg("-q")
            .arg("-s")
            .arg(self.dir.join(ca))
            .args(["-I", "test"])
            .args(args)
            .arg(self.dir.join("host.pub"))
            .status();
        assert!(signed.is_ok_and(|s| s.success()), "ssh-keygen -s {args:?}");
        read(&cert)
    }
}

fn read(path: &Path) -> Certificate {
    let text = std::fs::read_to_string(path).expect("cert");
    Certificate::from_openssh(text.trim()).expect("certificate parses")
}

impl Drop for Keys {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

#[test]
fn a_valid_host_certificate_from_a_trusted_ca_is_accepted() {
    let keys = Keys::new("ok");
    let ca = keys.public("ca");
    let cert = keys.sign("ca", &["-h", "-n", "web-1,10.0.0.1", "-V", "-1h:+1h"]);
    assert_eq!(judge(&cert, &[&ca], "10.0.0.1", now()), Ok(()));
    assert_eq!(judge(&cert, &[&ca], "web-1", now()), Ok(()));
    // Several trusted CAs: one is enough.
    let other = keys.public("other_ca");
    assert_eq!(judge(&cert, &[&other, &ca], "web-1", now()), Ok(()));
}

#[test]
fn each_refusal_says_why() {
    let keys = Keys::new("refusals");
    let ca = keys.public("ca");
    let other = keys.public("other_ca");
    let good = keys.sign("ca", &["-h", "-n", "web-1", "-V", "-1h:+1h"]);
    assert_eq!(
        judge(&good, &[], "web-1", now()),
        Err(CertRefusal::NoAuthority)
    );
    let refused = judge(&good, &[&other], "web-1", now());
    let ca_fp = ca.fingerprint(HashAlg::Sha256).to_string();
    assert_eq!(
        refused,
        Err(CertRefusal::UntrustedAuthority {
            fingerprint: ca_fp.clone()
        })
    );
    assert!(refused.unwrap_err().to_string().contains(&ca_fp));
    assert_eq!(
        judge(&good, &[&ca], "web-2", now()),
        Err(CertRefusal::Principal {
            name: "web-2".into(),
            principals: vec!["web-1".into()]
        })
    );
    let expired = keys.sign("ca", &["-h", "-n", "web-1", "-V", "20200101:20200102"]);
    let refused = judge(&expired, &[&ca], "web-1", now());
    assert!(
        matches!(&refused, Err(CertRefusal::Expired { until }) if until.starts_with("2020-01-02")),
        "{refused:?}"
    );
    let future = keys.sign("ca", &["-h", "-n", "web-1", "-V", "+1d:+2d"]);
    assert!(matches!(
        judge(&future, &[&ca], "web-1", now()),
        Err(CertRefusal::NotYetValid { .. })
    ));
    let user = keys.sign("ca", &["-n", "web-1", "-V", "-1h:+1h"]);
    assert_eq!(
        judge(&user, &[&ca], "web-1", now()),
        Err(CertRefusal::NotHost)
    );
    let anyone = keys.sign("ca", &["-h", "-V", "-1h:+1h"]);
    assert_eq!(
        judge(&anyone, &[&ca], "web-1", now()),
        Err(CertRefusal::NoPrincipals)
    );
    let forever = keys.sign("ca", &["-h", "-n", "web-1"]);
    assert_eq!(judge(&forever, &[&ca], "web-1", now()), Ok(()));
}

/// A certificate whose signed fields were changed after signing (here: its principals) is
/// refused for its signature, not judged by the forged fields.
#[test]
fn a_tampered_certificate_fails_its_signature() {
    let keys = Keys::new("tamper");
    let ca = keys.public("ca");
    let cert = keys.sign("ca", &["-h", "-n", "web-1", "-V", "-1h:+1h"]);
    let mut bytes = cert.to_bytes().expect("encodes");
    let at = bytes
        .windows(5)
        .position(|w| w == b"web-1")
        .expect("principal in the encoding");
    bytes[at + 4] = b'2';
    let forged = Certificate::from_bytes(&bytes).expect("still parses");
    assert_eq!(forged.valid_principals(), ["web-2".to_owned()]);
    assert_eq!(
        judge(&forged, &[&ca], "web-2", now()),
        Err(CertRefusal::BadSignature)
    );
}
