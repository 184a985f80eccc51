//! Logging for a process libvirt runs with no terminal and no journal
//! environment: journald's native socket when it is there, else syslog's
//! `/dev/log`, and always stderr.
//!
//! In hook mode stderr is buffered: libvirt shows a failing hook's stderr to
//! the user as the error, so a strict failure must print exactly one line.

use std::borrow::Cow;
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

/// What a message reports, for journald's `MESSAGE_ID`: one fixed 128-bit
/// id per kind, so `journalctl MESSAGE_ID=...` finds every such event
/// whatever the wording. The ids never change (they are in the README).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A VLAN was created.
    Created,
    /// An existing VLAN of the right parent and VID was marked as ours.
    Adopted,
    /// Nothing was attempted: a conflict, a foreign device, bad config or
    /// input, an untrusted file or directory.
    Refused,
    /// A step failed and every change before it was undone.
    RolledBack,
    /// A step failed and not everything could be undone, or a teardown or
    /// a read of the host failed.
    Failed,
    /// A VLAN was deleted (teardown).
    Removed,
    /// The host was already as configured.
    Unchanged,
}

impl Event {
    pub const ALL: [Event; 7] = [
        Event::Created,
        Event::Adopted,
        Event::Refused,
        Event::RolledBack,
        Event::Failed,
        Event::Removed,
        Event::Unchanged,
    ];

    pub fn message_id(self) -> &'static str {
        match self {
            Event::Created => "bbb17d444748486aad89b395f0ba7761",
            Event::Adopted => "ae96990c6dda495bae5386f7e4adcb99",
            Event::Refused => "f54cbcce1c6441258aed958ceec98f19",
            Event::RolledBack => "35553f574e4d479786d433f2146e53fd",
            Event::Failed => "c723b77f2afc4758b6fba72ae64d6b63",
            Event::Removed => "364c6cd083844f63897378be71c42335",
            Event::Unchanged => "d29542c223a04f8cb25893d26d035ab5",
        }
    }

    /// The `NET_HOOK_EVENT` field's value.
    pub fn name(self) -> &'static str {
        match self {
            Event::Created => "created",
            Event::Adopted => "adopted",
            Event::Refused => "refused",
            Event::RolledBack => "rolled-back",
            Event::Failed => "failed",
            Event::Removed => "removed",
            Event::Unchanged => "unchanged",
        }
    }
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
    /// The subject is a domain (the qemu hook), not a network.
    domain: bool,
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
            domain: false,
        }
    }

    /// [`Log::hook`] for the qemu hook: the subject is a domain.
    pub fn hook_domain(domain: &str, op: &str) -> Log {
        Log {
            domain: true,
            ..Log::hook(domain, op)
        }
    }

    /// [`Log::dry_run`] for a domain.
    pub fn dry_run_domain(domain: &str, op: &str) -> Log {
        Log {
            domain: true,
            ..Log::dry_run(domain, op)
        }
    }

    /// The subject as lines show it: `NAME`, or `domain NAME`.
    fn subject(&self) -> String {
        if self.domain {
            format!("domain {}", shown(&self.network))
        } else {
            shown(&self.network).into_owned()
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
            domain: false,
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
            domain: false,
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
        self.emit(level, None, msg)
    }

    /// A message that reports `event` (sent with its `MESSAGE_ID`).
    pub fn event(&mut self, event: Event, level: Level, msg: &str) {
        self.emit(level, Some(event), msg)
    }

    /// The stderr line for `msg`.
    fn line(&self, msg: &str) -> String {
        format!("net-hook: {}: {}", self.subject(), msg)
    }

    fn emit(&mut self, level: Level, event: Option<Event>, msg: &str) {
        let line = self.line(msg);
        match &mut self.held {
            Some(h) => h.push(line),
            None if self.stderr => {
                let _ = writeln!(std::io::stderr(), "{line}");
            }
            None => {}
        }
        if self.system {
            self.send(level, event, msg);
        }
    }

    /// Writes held stderr lines; for a strict failure only `fatal`, the
    /// one line libvirt will show.
    pub fn finish(&mut self, fatal: Option<&str>) {
        let held = self.held.take().unwrap_or_default();
        let mut err = std::io::stderr().lock();
        match fatal {
            Some(line) => {
                let what = if self.domain { "domain" } else { "network" };
                let _ = writeln!(err, "net-hook: {what} {:?}: {line}", self.network);
            }
            None => {
                for l in held {
                    let _ = writeln!(err, "{l}");
                }
            }
        }
    }

    fn send(&mut self, level: Level, event: Option<Event>, msg: &str) {
        let subject = self.subject();
        let sink = self.sink.get_or_insert_with(open_sink);
        match sink {
            Sink::Journal(s) => {
                let key = if self.domain {
                    "NET_HOOK_DOMAIN"
                } else {
                    "NET_HOOK_NETWORK"
                };
                let d = journal_entry(&subject, (key, &self.network), &self.op, level, event, msg);
                let _ = s.send(&d);
            }
            Sink::Syslog(s) => {
                // Facility daemon (3).
                let pri = (3 << 3) | level as u8;
                let line = format!(
                    "<{pri}>{IDENT}[{}]: {}: {}",
                    std::process::id(),
                    subject,
                    msg.replace('\n', " ")
                );
                let _ = s.send(line.as_bytes());
            }
            Sink::None => {}
        }
    }
}

/// The network's name as a log line shows it: quoted and escaped when it
/// has control characters, whose newline would split the line (and could
/// forge another); as it is otherwise.
pub fn shown(network: &str) -> Cow<'_, str> {
    if network.chars().any(char::is_control) {
        Cow::Owned(format!("{network:?}"))
    } else {
        Cow::Borrowed(network)
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

/// One journal entry in journald's native protocol, for a network.
#[cfg(test)]
fn journal_datagram(
    network: &str,
    op: &str,
    level: Level,
    event: Option<Event>,
    msg: &str,
) -> Vec<u8> {
    journal_entry(
        network,
        ("NET_HOOK_NETWORK", network),
        op,
        level,
        event,
        msg,
    )
}

/// [`journal_datagram`] with the subject shown in MESSAGE (`domain X` for
/// a domain) and the field that names it.
fn journal_entry(
    subject: &str,
    (key, name): (&str, &str),
    op: &str,
    level: Level,
    event: Option<Event>,
    msg: &str,
) -> Vec<u8> {
    let mut d = Vec::with_capacity(192 + msg.len());
    field(&mut d, "MESSAGE", &format!("{subject}: {msg}"));
    field(&mut d, "PRIORITY", &(level as u8).to_string());
    if let Some(e) = event {
        field(&mut d, "MESSAGE_ID", e.message_id());
        field(&mut d, "NET_HOOK_EVENT", e.name());
    }
    field(&mut d, "SYSLOG_IDENTIFIER", IDENT);
    field(&mut d, key, name);
    field(&mut d, "NET_HOOK_OP", op);
    d
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
    fn a_name_with_control_characters_stays_on_its_line() {
        let log = |network: &str| Log::dry_run(network, "started");
        let line = log("new\nline\tx").line("refused");
        assert_eq!(line, r#"net-hook: "new\nline\tx": refused"#);
        let forged = log("x: ok\nnet-hook: 1_provider").line("created");
        assert_eq!(forged.lines().count(), 1, "{forged}");
        assert_eq!(log("a b").line("created"), "net-hook: a b: created");
    }

    #[test]
    fn a_domains_entry_names_the_domain_not_a_network() {
        let d = journal_entry(
            "domain routed-demo",
            ("NET_HOOK_DOMAIN", "routed-demo"),
            "started",
            Level::Info,
            None,
            "route 172.31.16.10/32 via tap-routed-demo",
        );
        let text = String::from_utf8(d).unwrap();
        assert!(
            text.starts_with("MESSAGE=domain routed-demo: route "),
            "{text}"
        );
        assert!(text.contains("\nNET_HOOK_DOMAIN=routed-demo\n"), "{text}");
        assert!(!text.contains("NET_HOOK_NETWORK"), "{text}");
        let line = Log::dry_run_domain("routed-demo", "started").line("x");
        assert_eq!(line, "net-hook: domain routed-demo: x");
    }

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

    #[test]
    fn every_event_has_its_own_message_id_field() {
        let mut seen = std::collections::BTreeSet::new();
        for e in Event::ALL {
            let id = e.message_id();
            // journald wants 128 bits as 32 lowercase hex digits.
            assert!(
                id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
                "{e:?}: {id}"
            );
            assert!(seen.insert(id), "{e:?} shares its id");
            let d = journal_datagram("1_provider", "started", Level::Error, Some(e), "x");
            let text = String::from_utf8(d).unwrap();
            assert!(text.contains(&format!("\nMESSAGE_ID={id}\n")), "{text}");
            assert!(
                text.contains(&format!("\nNET_HOOK_EVENT={}\n", e.name())),
                "{text}"
            );
        }
        let d = journal_datagram("a\nb", "stopped", Level::Info, None, "plain");
        let mut want = b"MESSAGE\n".to_vec();
        want.extend_from_slice(&10u64.to_le_bytes());
        want.extend_from_slice(
            b"a\nb: plain\nPRIORITY=6\nSYSLOG_IDENTIFIER=net-hook\nNET_HOOK_NETWORK\n",
        );
        want.extend_from_slice(&3u64.to_le_bytes());
        want.extend_from_slice(b"a\nb\nNET_HOOK_OP=stopped\n");
        assert_eq!(d, want, "no MESSAGE_ID without an event");
    }

    #[test]
    fn the_readme_lists_every_message_id() {
        let readme = include_str!("../README.md");
        for e in Event::ALL {
            assert!(
                readme.contains(&format!("| `{}` | `{}` |", e.name(), e.message_id())),
                "{e:?}"
            );
        }
    }
}
