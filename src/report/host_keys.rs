//! Host keys as the operator sees them: each key recorded under accept-new (on stderr, as it
//! is recorded), and the once-per-run note that `StrictHostKeyChecking=no` is read as
//! accept-new.

use std::path::Path;

use crate::fleet::host_list;
use crate::ssh::RecordedKey;

/// The line for a recorded key: host, endpoint, file, key type and SHA256 fingerprint.
pub fn recorded(
    host: &str,
    endpoint: &str,
    key_type: &str,
    fingerprint: &str,
    file: &Path,
) -> String {
    format!(
        "{host}: recorded a new host key for {endpoint} in {}: {key_type} {fingerprint}",
        file.display()
    )
}

/// [`recorded`] for a key as the transport reports it.
pub fn recorded_key(key: &RecordedKey) -> String {
    recorded(
        &key.host,
        &key.endpoint,
        &key.key_type,
        &key.fingerprint,
        &key.file,
    )
}

/// The note for hosts whose inventory says `StrictHostKeyChecking=no`.
pub fn read_as_accept_new(hosts: &[String]) -> String {
    format!(
        "note: StrictHostKeyChecking=no in ansible_ssh_common_args ({}) is read as accept-new: \
         unknown host keys are recorded and shown, changed keys are refused",
        host_list(hosts)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorded_key_names_host_type_and_fingerprint() {
        let key = RecordedKey {
            host: "web-01".into(),
            endpoint: "10.0.0.1:22".into(),
            key_type: "ssh-ed25519".into(),
            fingerprint: "SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s".into(),
            file: "/home/ops/.ssh/known_hosts".into(),
        };
        assert_eq!(
            recorded_key(&key),
            "web-01: recorded a new host key for 10.0.0.1:22 in /home/ops/.ssh/known_hosts: \
             ssh-ed25519 SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s"
        );
        assert_eq!(
            read_as_accept_new(&["a".into(), "b".into()]),
            "note: StrictHostKeyChecking=no in ansible_ssh_common_args (a, b) is read as \
             accept-new: unknown host keys are recorded and shown, changed keys are refused"
        );
    }
}
