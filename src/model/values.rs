//! Small validated values shared by the inventory and the spec: ports, absolute remote paths,
//! jump-host addresses.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// A TCP port, 1..=65535.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Port(u16);

impl Port {
    pub const SSH: Port = Port(22);

    pub fn get(self) -> u16 {
        self.0
    }
}

impl FromStr for Port {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Port, ValueError> {
        match s.trim().parse::<u16>() {
            Ok(n) if n > 0 => Ok(Port(n)),
            _ => Err(ValueError::Port(s.to_owned())),
        }
    }
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// An absolute path on a remote host. It may contain spaces or quotes (commands quote every
/// argument), but never a NUL, a newline or other control characters. Clones share the text
/// (a million hosts with the same `nginx_binary` hold one copy).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RemotePath(Arc<str>);

impl RemotePath {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The directory part (`/usr/sbin` for `/usr/sbin/nginx`).
    pub fn parent(&self) -> &str {
        match self.0.rfind('/') {
            Some(0) | None => "/",
            Some(i) => &self.0[..i],
        }
    }

    /// The same path with `suffix` appended (`nginx.pid` -> `nginx.pid.oldbin`).
    pub fn with_suffix(&self, suffix: &str) -> RemotePath {
        RemotePath(format!("{}{suffix}", self.0).into())
    }
}

impl FromStr for RemotePath {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<RemotePath, ValueError> {
        if !s.starts_with('/') {
            return Err(ValueError::NotAbsolute(s.to_owned()));
        }
        if s.chars().any(char::is_control) {
            return Err(ValueError::ControlCharacter(s.to_owned()));
        }
        if s.ends_with('/') {
            return Err(ValueError::DirectoryPath(s.to_owned()));
        }
        Ok(RemotePath(s.into()))
    }
}

impl fmt::Display for RemotePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A bastion to connect through: `[user@]host[:port]` (IPv6 as `[::1]:22`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JumpHost {
    pub user: Option<String>,
    pub host: String,
    pub port: Port,
}

impl FromStr for JumpHost {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<JumpHost, ValueError> {
        let bad = || ValueError::Jump(s.to_owned());
        if s.contains(',') {
            return Err(ValueError::MultiHopJump(s.to_owned()));
        }
        let s_trim = s.trim();
        let s_trim = s_trim.strip_prefix("ssh://").unwrap_or(s_trim);
        let (user, rest) = match s_trim.rsplit_once('@') {
            Some((u, r)) if !u.is_empty() => (Some(u.to_owned()), r),
            Some(_) => return Err(bad()),
            None => (None, s_trim),
        };
        let (host, port) = if let Some(inner) = rest.strip_prefix('[') {
            let (host, after) = inner.split_once(']').ok_or_else(bad)?;
            match after.strip_prefix(':') {
                Some(p) => (host, p.parse::<Port>().map_err(|_| bad())?),
                None if after.is_empty() => (host, Port::SSH),
                None => return Err(bad()),
            }
        } else {
            match rest.split_once(':') {
                Some((h, p)) => (h, p.parse::<Port>().map_err(|_| bad())?),
                None => (rest, Port::SSH),
            }
        };
        let valid_host = !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'));
        if !valid_host {
            return Err(bad());
        }
        if let Some(u) = &user
            && !u
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        {
            return Err(bad());
        }
        Ok(JumpHost {
            user,
            host: host.to_owned(),
            port,
        })
    }
}

impl fmt::Display for JumpHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(user) = &self.user {
            write!(f, "{user}@")?;
        }
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Why a value was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("expected a port number from 1 to 65535, found {}", shown(.0))]
    Port(String),
    #[error("expected an absolute path, found {0:?}")]
    NotAbsolute(String),
    #[error("expected a file path, found the directory {0:?}")]
    DirectoryPath(String),
    #[error("path {0:?} contains a control character")]
    ControlCharacter(String),
    #[error("expected a jump host as [user@]host[:port], found {0:?}")]
    Jump(String),
    #[error("only one jump host is supported, found {0:?}")]
    MultiHopJump(String),
}

/// A value as it reads in a message: a number as is, anything else quoted.
fn shown(text: &str) -> String {
    let t = text.trim();
    let numeric = t.chars().any(|c| c.is_ascii_digit())
        && t.chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | '.'));
    if numeric {
        t.to_owned()
    } else {
        format!("{text:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports() {
        assert_eq!("2222".parse::<Port>().map(Port::get), Ok(2222));
        assert_eq!(
            "ssh".parse::<Port>().unwrap_err().to_string(),
            "expected a port number from 1 to 65535, found \"ssh\""
        );
        for (text, shown) in [
            ("0", "0"),
            ("65536", "65536"),
            ("-1", "-1"),
            ("inf", "\"inf\""),
        ] {
            assert_eq!(
                text.parse::<Port>().unwrap_err().to_string(),
                format!("expected a port number from 1 to 65535, found {shown}")
            );
        }
    }

    #[test]
    fn remote_paths() {
        let p: RemotePath = "/opt/my nginx/sbin/nginx".parse().expect("valid");
        assert_eq!(p.parent(), "/opt/my nginx/sbin");
        assert_eq!(
            p.with_suffix(".oldbin").as_str(),
            "/opt/my nginx/sbin/nginx.oldbin"
        );
        assert_eq!(
            "sbin/nginx".parse::<RemotePath>().unwrap_err().to_string(),
            "expected an absolute path, found \"sbin/nginx\""
        );
        assert_eq!(
            "/usr/sbin/nginx\nrm -rf /"
                .parse::<RemotePath>()
                .unwrap_err()
                .to_string(),
            "path \"/usr/sbin/nginx\\nrm -rf /\" contains a control character"
        );
        assert!("/usr/sbin/".parse::<RemotePath>().is_err());
        // Shell metacharacters are data, not syntax: they are accepted and quoted later.
        assert!("/srv/a;b'c/nginx".parse::<RemotePath>().is_ok());
    }

    #[test]
    fn jump_hosts() {
        let j: JumpHost = "deploy@bastion.example.com:2222".parse().expect("valid");
        assert_eq!(j.user.as_deref(), Some("deploy"));
        assert_eq!(j.host, "bastion.example.com");
        assert_eq!(j.port.get(), 2222);
        let j: JumpHost = "10.0.0.1".parse().expect("valid");
        assert_eq!((j.user, j.port.get()), (None, 22));
        let j: JumpHost = "[fd00::1]:22".parse().expect("valid");
        assert_eq!(j.host, "fd00::1");
        assert_eq!(j.to_string(), "[fd00::1]:22");
        assert_eq!(
            "a,b".parse::<JumpHost>().unwrap_err().to_string(),
            "only one jump host is supported, found \"a,b\""
        );
        assert_eq!(
            "host;rm".parse::<JumpHost>().unwrap_err().to_string(),
            "expected a jump host as [user@]host[:port], found \"host;rm\""
        );
        assert!("@host".parse::<JumpHost>().is_err());
        assert!("host:ssh".parse::<JumpHost>().is_err());
    }
}
