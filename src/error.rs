//! One error type for the crate. Every variant renders as a single line that
//! says what failed and, where we can tell, what the operator should do.

use std::io;

use crate::plan::Problem;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The config is invalid, unreadable or insecure.
    #[error(transparent)]
    Config(#[from] crate::config::Error),

    /// Bad hook input (argv or stdin); nothing was changed.
    #[error("bad hook input: {0}")]
    Input(String),

    /// The plan was refused; nothing was changed.
    #[error("{}", join_problems(.0))]
    Refused(Vec<Problem>),

    /// A netlink request failed.
    #[error("{what}: {}{}", errno_text(.errno), hint(*.errno, .what))]
    Netlink { what: String, errno: Option<i32> },

    #[error("{what}: {source}")]
    Io { what: String, source: io::Error },

    /// Apply failed and the rollback ran; `rollback` lists what could not be undone.
    #[error("{cause}{}", rollback_text(.rollback))]
    Applied {
        cause: Box<Error>,
        rollback: Vec<String>,
    },

    #[error("{0}")]
    Usage(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn io(what: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            what: what.into(),
            source,
        }
    }

    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Netlink { errno, .. } => *errno,
            Error::Io { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}

fn join_problems(problems: &[Problem]) -> String {
    let parts: Vec<String> = problems.iter().map(ToString::to_string).collect();
    format!("changed nothing: {}", parts.join("; "))
}

fn rollback_text(rollback: &[String]) -> String {
    if rollback.is_empty() {
        "; rolled back what this run had changed".to_string()
    } else {
        format!(
            "; rollback incomplete, fix by hand: {}",
            rollback.join("; ")
        )
    }
}

fn errno_text(errno: &Option<i32>) -> String {
    match errno {
        Some(e) => io::Error::from_raw_os_error(*e).to_string(),
        None => "netlink request failed".to_string(),
    }
}

fn hint(errno: Option<i32>, what: &str) -> &'static str {
    match errno {
        Some(libc::EPERM) | Some(libc::EACCES) => {
            " (net-hook needs root/CAP_NET_ADMIN; under AppArmor, install the hook as a link to /usr/bin/net-hook)"
        }
        Some(libc::EOPNOTSUPP) if what.contains("VLAN") => {
            " (the kernel lacks 802.1Q support: `modprobe 8021q`)"
        }
        Some(libc::EEXIST) => " (something else created it meanwhile; run the hook again)",
        Some(libc::ERANGE) | Some(libc::EINVAL) if what.contains("MTU") => {
            " (a VLAN's MTU cannot exceed its bridge's)"
        }
        _ => "",
    }
}
