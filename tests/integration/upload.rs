//! File upload over the transport against a real lab host: verified by checksum, and a
//! corrupted upload detected (a host whose `cat` damages data, a real fault on a real sshd).

use std::fs;
use std::time::Duration;

use ngfleet::fleet::ControllerEnv;
use ngfleet::model::inventory::Inventory;
use ngfleet::ssh::{Credentials, HostKeyPolicy, SshErrorKind, Transport, TransportConfig};

use crate::lab::Lab;

fn transport_and_target(lab: &Lab, name: &str) -> (Transport, ngfleet::ssh::Target) {
    let text = fs::read_to_string(lab.inventory()).expect("inventory");
    let inventory = Inventory::parse("inventory.yaml", &text).expect("valid inventory");
    let env = ControllerEnv::from_process(None, HostKeyPolicy::Strict);
    let target = env.target(inventory.find(name).expect("host"));
    let transport = Transport::new(TransportConfig::default(), Credentials::from_env());
    (transport, target)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_is_verified_by_checksum() {
    let lab = lab!(1);
    let (transport, target) = transport_and_target(&lab, "lab-01");
    let session = transport.connect(&target).await.expect("connect");
    let local = lab.dir.join("versions/nginx-new");
    let remote = lab.host("lab-01").dir.join("sbin/.ngfleet-upload");
    let up = session
        .upload(
            &local,
            &remote.display().to_string(),
            Duration::from_secs(30),
        )
        .await
        .expect("upload");
    let expected = ngfleet::inputs::sha256_file(&local).expect("sha");
    assert_eq!(up.sha256, expected);
    assert_eq!(up.bytes, fs::metadata(&local).expect("meta").len());
    // The lab host shares this machine's disk: the bytes on the host are the bytes sent.
    assert_eq!(
        fs::read(&remote).expect("remote file"),
        fs::read(&local).expect("local")
    );
    session.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_upload_is_detected_and_removed() {
    let lab = lab!(1);
    let host = lab.host("lab-01").clone();
    // Give the host a `cat` that flips data, ahead of the real one on its PATH.
    lab.shadow_command(
        "lab-01",
        "cat",
        "#!/bin/sh\n/bin/cat \"$@\" | /usr/bin/tr 'A-Za-z' 'B-ZAb-za'\n",
    );

    let (transport, target) = transport_and_target(&lab, "lab-01");
    let session = transport.connect(&target).await.expect("connect");
    let remote = host.dir.join("sbin/.ngfleet-upload");
    let err = session
        .upload(
            &lab.dir.join("versions/nginx-new"),
            &remote.display().to_string(),
            Duration::from_secs(30),
        )
        .await
        .expect_err("a corrupted upload must fail");
    assert!(
        matches!(err.kind(), SshErrorKind::ChecksumMismatch { .. }),
        "{err}"
    );
    assert!(err.to_string().starts_with("lab-01"), "{err}");
    assert!(!remote.exists(), "the corrupted file is removed");
    session.close().await;
}
