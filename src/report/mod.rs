//! Output for people and programs. Reporters consume values and events; they decide nothing.

pub mod check;
pub mod host_keys;
pub mod inventory;
pub mod journal;
pub mod live;
pub mod plan;
pub mod status;
pub mod summary;

/// An error as shown after its host's name: without the `HOST: ` it starts with when it
/// names the host itself, so a line never reads `web-01: … web-01: …`.
pub fn without_host<'a>(host: &str, error: &'a str) -> &'a str {
    error
        .strip_prefix(host)
        .and_then(|rest| rest.strip_prefix(": "))
        .unwrap_or(error)
}

#[cfg(test)]
mod tests {
    use super::without_host;

    #[test]
    fn the_host_is_named_once() {
        assert_eq!(
            without_host(
                "web-01",
                "web-01: failed to install: exit code 72: no space"
            ),
            "failed to install: exit code 72: no space"
        );
        assert_eq!(
            without_host("web-01", "web-01 (10.0.0.1:22): failed to connect"),
            "web-01 (10.0.0.1:22): failed to connect"
        );
        assert_eq!(without_host("web-0", "web-01: failed"), "web-01: failed");
    }
}
