//! Logging for a process libvirt runs with no terminal and no journal
//! environment: journald's native socket when it is there, else syslog's
//! `/dev/log`, and always stderr.
//!
//! In hook mode stderr is buffered: libvirt shows a failing hook's stderr to
//! the user as the error, so a strict failure must print exactly one line.

use std::io::Write;
use std::os::unix::net::UnixDatagram;

const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";
const SYSLOG_SOCKET: &str = "/dev/log";
const IDENT: &str = "net-hook";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Error = 3,
    Warning = 4,
    Info = 6,
}

enum Sink {
    Journal(UnixDatagram),
    Syslog(UnixDatagram),
    None,
}

pub struct Log {
    network: String,
    op: String,
    sink: Option<Sink>,
    /// `Some` in hook mode: stderr lines held back until [`Log::finish`].
    held: Option<Vec<String>>,
    /// Whether to send to journald/syslog at all (off for dry runs and
    /// read-only commands).
    system: bool,
    /// Whether to echo to stderr (off where stdout already reports).
    stderr: bool,
}

impl Log {
    pub fn hook(network: &str, op: &str) -> Log {
        Log {
            network: network.into(),
            op: op.into(),
            sink: None,
            held: Some(Vec::new()),
            system: true,
            stderr: true,
        }
    }

    /// For dry runs: stderr only, nothing sent to journald or syslog.
    pub fn dry_run(network: &str, op: &str) -> Log {
        Log {
            network: network.into(),
            op: op.into(),
            sink: None,
            held: None,
            system: false,
            stderr: true,
        }
    }

    /// For commands that report on stdout: journald/syslog only.
    pub fn system_only(network: &str, op: &str) -> Log {
        Log {
            network: network.into(),
            op: op.into(),
            sink: None,
            held: None,
            system: true,
            stderr: false,
        }
    }

    pub fn info(&mut self, msg: &str) {
        self.log(Level::Info, msg)
    }
    pub fn warn(&mut self, msg: &str) {
        self.log(Level::Warning, msg)
    }
    pub fn error(&mut self, msg: &str) {
        self.log(Level::Error, msg)
    }

    pub fn log(&mut self, level: Level, msg: &str) {
        let line = format!("net-hook: {}: {}", self.network, msg);
        match &mut self.held {
            Some(h) => h.push(line),
            None if self.stderr => {
                let _ = writeln!(std::io::stderr(), "{line}");
            }
            None => {}
        }
        if self.system {
            self.send(level, msg);
        }
    }

    /// Writes held stderr lines; for a strict failure only `fatal`, the
    /// one line libvirt will show.
    pub fn finish(&mut self, fatal: Option<&str>) {
        let held = self.held.take().unwrap_or_default();
        let mut err = std::io::stderr().lock();
        match fatal {
            Some(line) => {
                let _ = writeln!(err, "net-hook: network {:?}: {line}", self.network);
            }
            None => {
                for l in held {
                    let _ = writeln!(err, "{l}");
                }
            }
        }
    }

    fn send(&mut self, level: Level, msg: &str) {
        let sink = self.sink.get_or_insert_with(open_sink);
        match sink {
            Sink::Journal(s) => {
                let mut d = Vec::with_capacity(128 + msg.len());
                field(&mut d, "MESSAGE", &format!("{}: {msg}", self.network));
                field(&mut d, "PRIORITY", &(level as u8).to_string());
                field(&mut d, "SYSLOG_IDENTIFIER", IDENT);
                field(&mut d, "NET_HOOK_NETWORK", &self.network);
                field(&mut d, "NET_HOOK_OP", &self.op);
                let _ = s.send(&d);
            }
            Sink::Syslog(s) => {
                // Facility daemon (3).
                let pri = (3 << 3) | level as u8;
                let line = format!(
                    "<{pri}>{IDENT}[{}]: {}: {}",
                    std::process::id(),
                    self.network,
                    msg.replace('\n', " ")
                );
                let _ = s.send(line.as_bytes());
            }
            Sink::None => {}
        }
    }
}

fn open_sink() -> Sink {
    let connect = |path| UnixDatagram::unbound().and_then(|s| s.connect(path).map(|_| s));
    if let Ok(s) = connect(JOURNAL_SOCKET) {
        Sink::Journal(s)
    } else if let Ok(s) = connect(SYSLOG_SOCKET) {
        Sink::Syslog(s)
    } else {
        Sink::None
    }
}

/// journald's native format: `KEY=value\n`, or for values with a newline,
/// `KEY\n` + little-endian u64 length + value + `\n`.
fn field(out: &mut Vec<u8>, key: &str, value: &str) {
    out.extend_from_slice(key.as_bytes());
    if value.contains('\n') {
        out.push(b'\n');
        out.extend_from_slice(&(value.len() as u64).to_le_bytes());
    } else {
        out.push(b'=');
    }
    out.extend_from_slice(value.as_bytes());
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_fields_are_binary_safe() {
        let mut d = Vec::new();
        field(&mut d, "MESSAGE", "plain");
        field(&mut d, "NET_HOOK_NETWORK", "a\nb");
        let mut want = b"MESSAGE=plain\nNET_HOOK_NETWORK\n".to_vec();
        want.extend_from_slice(&3u64.to_le_bytes());
        want.extend_from_slice(b"a\nb\n");
        assert_eq!(d, want);
    }
}
