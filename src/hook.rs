//! The hook protocol: `<hook> NETWORK OP SUBOP -` with the network XML on
//! stdin. The fast path (a network net-hook does not manage, or an op it
//! ignores) returns before any socket, runtime or full config parse.

use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::config::{self, Config, Loaded, NetworkConfig, metadata};
use crate::error::{Error, Result};
use crate::exec::{Host, Scope, System};
use crate::hookdata;
use crate::log::{Event, Level, Log};
use crate::ops::{self, Done};
use crate::plan::{self, Problem};
use crate::state::{RunDir, RunOp};

/// The hook's stdin, and whether it is a terminal (a person forgot to
/// pipe the XML in): the caller knows, for the reader it hands over.
pub struct Input<'a> {
    pub reader: &'a mut dyn Read,
    pub terminal: bool,
}

pub struct Paths {
    pub config: PathBuf,
    pub run_dir: PathBuf,
}

impl Default for Paths {
    fn default() -> Self {
        Paths {
            config: PathBuf::from(config::DEFAULT_PATH),
            run_dir: PathBuf::from(crate::state::DEFAULT_RUN_DIR),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Run by libvirt (recognised by the path we were run as).
    Libvirt,
    /// `net-hook hook ...` typed by a person or a script.
    Explicit,
    /// `net-hook hook --dry-run ...`: observe and print the plan only.
    DryRun,
}

/// Which of libvirt's hooks a path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookKind {
    /// `.../hooks/network` or `.../hooks/network.d/<entry>`: VLANs.
    Network,
    /// `.../hooks/qemu` or `.../hooks/qemu.d/<entry>`: routed interfaces.
    Qemu,
}

/// The hook `argv0` is run as, if it is a path libvirt runs hooks from.
pub fn hook_kind(argv0: &std::ffi::OsStr) -> Option<HookKind> {
    let p = Path::new(argv0);
    let parent = p.parent().and_then(|d| d.file_name());
    let grandparent = p
        .parent()
        .and_then(Path::parent)
        .and_then(|d| d.file_name());
    let direct = grandparent.is_some() && parent == Some("hooks".as_ref());
    if parent == Some("network.d".as_ref()) || (direct && p.file_name() == Some("network".as_ref()))
    {
        Some(HookKind::Network)
    } else if parent == Some("qemu.d".as_ref())
        || (direct && p.file_name() == Some("qemu".as_ref()))
    {
        Some(HookKind::Qemu)
    } else {
        None
    }
}

/// Whether `argv0` is a path libvirt runs network hooks from.
pub fn is_hook_path(argv0: &std::ffi::OsStr) -> bool {
    hook_kind(argv0) == Some(HookKind::Network)
}

pub const USAGE: &str =
    "usage: net-hook hook [--dry-run] NETWORK OP SUBOP [-]  (the network XML on stdin)";

/// Runs one hook invocation; returns the exit status.
pub fn run(args: &[OsString], paths: &Paths, mode: Mode, stdin: Input) -> u8 {
    let (network, op, subop) = match args {
        [n, o, s] => (n, o, s),
        [n, o, s, dash] if dash == "-" => (n, o, s),
        _ => {
            eprintln!(
                "net-hook: expected 4 arguments (NETWORK OP SUBOP -), got {}; {USAGE}",
                args.len()
            );
            return 2;
        }
    };
    let op = match (op.to_str(), subop.to_str()) {
        (Some("start"), Some("begin")) => RunOp::Start,
        (Some("started"), Some("begin")) => RunOp::Started,
        (Some("stopped"), Some("end")) => RunOp::Stopped,
        // updated, port-created, port-deleted and anything a newer libvirt
        // adds: nothing to do, and no need to look at the config.
        _ => return 0,
    };
    let Some(network) = network.to_str() else {
        // A config (UTF-8) cannot name it, so it is not ours.
        eprintln!(
            "net-hook: ignoring network {network:?}: its name is not UTF-8, so net-hook cannot manage it"
        );
        return 0;
    };
    // The file first: it usually cannot name the network (the pre-scan).
    let (file_net, meta_ok) = match config::load_if_mentions(&paths.config, network) {
        Ok(Loaded::Missing) => (None, MetadataOk::Yes),
        Ok(Loaded::NotMentioned) => (None, MetadataOk::Unread),
        Ok(Loaded::Text { text, insecure }) => {
            let mut log = logger(network, op, mode);
            let file = paths.config.display().to_string();
            match insecure {
                // An insecure file's `strict` is not to be trusted either.
                Some(e) => return finish(&mut log, paths, network, op, mode, false, Err(e.into())),
                None => match Config::parse_one(&text, &file, network) {
                    Ok((net, true)) => (net, MetadataOk::Yes),
                    Ok((net, false)) => (net, MetadataOk::No),
                    Err(e) => {
                        let strict = config::strict_hint(&text, network);
                        return finish(&mut log, paths, network, op, mode, strict, Err(e.into()));
                    }
                },
            }
        }
        Err(e) => {
            let mut log = logger(network, op, mode);
            log.event(Event::Refused, Level::Error, &e.to_string());
            log.finish(None);
            return 0;
        }
    };
    if let Some(net) = &file_net
        && op == RunOp::Start
        && !net.strict
        && mode != Mode::DryRun
    {
        // Config validated; a fail-soft network needs nothing else here.
        let mut log = logger(network, op, mode);
        return finish(
            &mut log,
            paths,
            network,
            op,
            mode,
            false,
            Ok(Done::default()),
        );
    }
    // Then the XML, which may carry the config in <metadata>.
    let xml = match read_stdin(stdin, mode, network) {
        Ok(x) => x,
        // Not ours unless the file says so.
        Err(_) if file_net.is_none() => return 0,
        Err(e) => {
            let mut log = logger(network, op, mode);
            let strict = file_net.as_ref().is_some_and(|n| n.strict);
            return finish(&mut log, paths, network, op, mode, strict, Err(e));
        }
    };
    let carries = metadata::may_carry(xml.as_bytes());
    if file_net.is_none() && !carries {
        return 0;
    }
    let mut log = logger(network, op, mode);
    let net = match choose(file_net, carries, meta_ok, &xml, network, paths) {
        Ok(Some(net)) => net,
        Ok(None) => return 0,
        Err((strict, e)) => return finish(&mut log, paths, network, op, mode, strict, Err(e)),
    };
    let res = execute(&net, op, paths, mode, &xml, &mut log);
    finish(&mut log, paths, network, op, mode, net.strict, res)
}

/// Whether the file lets networks carry config in `<metadata>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MetadataOk {
    Yes,
    /// `metadata = false`.
    No,
    /// The pre-scan ruled the network out without parsing the file.
    Unread,
}

/// The network's config: the file's, or its `<metadata>`'s, never both.
/// An error comes with the strictness to fail with.
fn choose(
    file_net: Option<NetworkConfig>,
    carries: bool,
    meta_ok: MetadataOk,
    xml: &str,
    network: &str,
    paths: &Paths,
) -> std::result::Result<Option<NetworkConfig>, (bool, Error)> {
    let allowed = match meta_ok {
        MetadataOk::Yes => true,
        MetadataOk::No => false,
        // Only read now that the XML carries our namespace.
        MetadataOk::Unread if !carries => false,
        MetadataOk::Unread => match config::load(&paths.config) {
            Ok(Loaded::Text {
                insecure: Some(e), ..
            }) => return Err((false, e.into())),
            Ok(Loaded::Text { text, .. }) => {
                let file = paths.config.display().to_string();
                Config::parse_one(&text, &file, network)
                    .map(|(_, m)| m)
                    .map_err(|e| (false, e.into()))?
            }
            Ok(_) => true,
            Err(e) => return Err((false, e.into())),
        },
    };
    let meta = if allowed && carries {
        metadata::parse(xml, network)
    } else {
        Ok(None)
    };
    match (file_net, meta) {
        (Some(f), Ok(None)) => Ok(Some(f)),
        // The file is the trusted one: its `strict` decides (a fail-soft
        // file network's `start` does not even read the XML).
        (Some(f), Ok(Some(_)) | Err(_)) => Err((
            f.strict,
            config::Error::Both {
                network: network.into(),
                file: paths.config.clone(),
            }
            .into(),
        )),
        (None, Ok(m)) => Ok(m),
        (None, Err(errs)) => Err((false, config::Error::Metadata(errs).into())),
    }
}

fn logger(network: &str, op: RunOp, mode: Mode) -> Log {
    match mode {
        // By hand, stderr is what libvirt would have shown.
        Mode::Libvirt | Mode::Explicit => Log::hook(network, op.name()),
        Mode::DryRun => Log::dry_run(network, op.name()),
    }
}

fn execute(
    net: &NetworkConfig,
    op: RunOp,
    paths: &Paths,
    mode: Mode,
    xml: &str,
    log: &mut Log,
) -> Result<Done> {
    if op == RunOp::Start && !net.strict && mode != Mode::DryRun {
        // Config validated; a fail-soft network needs nothing else here.
        return Ok(Done::default());
    }
    let hn = hookdata::parse(xml)?;
    if hn.name != net.name {
        return Err(Error::Input(hookdata::Error::Input(format!(
            "stdin describes network {:?}, but the arguments name {:?}",
            hn.name, net.name
        ))));
    }
    let bridge = hn.bridge.clone().ok_or_else(|| {
        Error::Refused(vec![Problem::NoBridge {
            forward_mode: hn.forward_mode.clone(),
        }])
    });
    let mut host = System::open()?;
    let rundir = RunDir::new(&paths.run_dir);
    // Serialise changes with other hook runs (networks autostarting together).
    let _lock = match (mode, op) {
        (Mode::DryRun, _) | (_, RunOp::Start) => None,
        _ => {
            let (lock, waited) = rundir.lock_timed()?;
            if waited >= std::time::Duration::from_millis(100) {
                log.info(&format!(
                    "waited {} ms for the lock (another net-hook run held it)",
                    waited.as_millis()
                ));
            }
            Some(lock)
        }
    };
    let dry = mode == Mode::DryRun;
    let header = |bridge: &str| format!("bridge {bridge}, {}", ops::mode(net));
    match op {
        RunOp::Start => {
            let bridge = bridge?;
            let problems = plan::preflight(net, &bridge, &host.observe(&Scope::default())?);
            if dry {
                ops::print_problems(&net.name, op.name(), &problems);
            }
            if problems.is_empty() {
                Ok(Done::default())
            } else {
                Err(Error::Refused(problems))
            }
        }
        RunOp::Started if dry => {
            let bridge = bridge?;
            let obs = host.observe(&ops::up_scope(net, &bridge))?;
            let (obs, note) = ops::with_bridge(obs, &bridge);
            let planned = plan::plan_up(net, &bridge, &hn, &obs);
            ops::print_plan(&net.name, op.name(), &header(&bridge), note, &planned);
            planned.map(|_| Done::default()).map_err(Error::Refused)
        }
        RunOp::Started => ops::up(net, &bridge?, &hn, &mut host, &rundir, log),
        RunOp::Stopped if dry => {
            let fw = ops::down_reads_firewall(net.unnat.is_some(), rundir.read(&net.name).as_ref());
            let obs = host.observe(&ops::down_scope(fw))?;
            let planned = Ok(ops::plan_down(&net.name, &obs, &rundir));
            let bridge = hn.bridge.as_deref().unwrap_or("-");
            ops::print_plan(&net.name, op.name(), &header(bridge), None, &planned);
            Ok(Done::default())
        }
        RunOp::Stopped => ops::down(&net.name, &mut host, net.unnat.is_some(), &rundir, log),
        _ => Ok(Done::default()),
    }
}

/// The XML on stdin; a person who forgot to pipe it in is told how.
fn read_stdin(stdin: Input, mode: Mode, network: &str) -> Result<String> {
    if mode != Mode::Libvirt && stdin.terminal {
        return Err(Error::Usage(format!(
            "the network XML goes on stdin, e.g. `virsh net-dumpxml {network} | net-hook hook {network} started begin -`"
        )));
    }
    Ok(hookdata::read_capped(stdin.reader)?)
}

/// Records the outcome, logs, and decides the exit status: non-zero only
/// for a strict network (libvirt then fails the start and shows our line).
fn finish(
    log: &mut Log,
    paths: &Paths,
    network: &str,
    op: RunOp,
    mode: Mode,
    strict: bool,
    res: Result<Done>,
) -> u8 {
    let soft = " (fail-soft: libvirt keeps the network up; set strict = true to fail it instead)";
    let subject = Subject {
        kind: "network",
        name: network,
        rundir: RunDir::new(&paths.run_dir),
    };
    conclude(log, &subject, op, mode, (strict, soft), res)
}

/// What a run reports on: a network or a domain, and where its records go.
pub(crate) struct Subject<'a> {
    pub kind: &'static str,
    pub name: &'a str,
    pub rundir: RunDir,
}

/// [`finish`] for either hook: `(strict, soft)` is whether a failure fails
/// libvirt's operation, and what a fail-soft error line adds.
pub(crate) fn conclude(
    log: &mut Log,
    subject: &Subject,
    op: RunOp,
    mode: Mode,
    (strict, soft): (bool, &str),
    res: Result<Done>,
) -> u8 {
    if let Err(Error::Usage(msg)) = &res {
        eprintln!("net-hook: {msg}");
        return 2;
    }
    let outcome = ops::outcome(subject.name, op, &res);
    // Recorded before the log is flushed, so that a record that cannot be
    // written is reported with the rest (and never as a strict run's line).
    // A refused run dir refuses its records too: said once is enough. A
    // run that never got the lock did nothing, and its record would replace
    // (without the lock) the one of the run that held it, which the next
    // `stopped` reads to undo bridge VLANs and firewall rules.
    if mode != Mode::DryRun
        && !matches!(
            res,
            Err(Error::State(
                crate::state::Error::Insecure { .. } | crate::state::Error::LockTimeout { .. }
            ))
        )
        && let Some(why) = subject.rundir.try_record(&outcome)
    {
        log.warn(&why);
    }
    match res {
        Ok(_) => {
            log.finish(None);
            0
        }
        Err(e) => {
            let line = e.to_string();
            if mode == Mode::DryRun {
                // A plan's problems went to stdout already; anything else did not.
                if !matches!(e, Error::Refused(_)) {
                    eprintln!("net-hook: {} {:?}: {line}", subject.kind, subject.name);
                }
                return 1;
            }
            let soft = if strict { "" } else { soft };
            log.event(
                crate::error::event(&e),
                Level::Error,
                &format!("{line}{soft}"),
            );
            log.finish(strict.then_some(line.as_str()));
            u8::from(strict)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_that_timed_out_on_the_lock_keeps_the_record() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths {
            config: dir.path().join("net-hook.toml"),
            run_dir: dir.path().join("run"),
        };
        let rd = RunDir::new(&paths.run_dir);
        let held = crate::state::Outcome {
            network: "n".into(),
            op: RunOp::Started,
            message: "1 change(s)".into(),
            ..Default::default()
        };
        rd.write(&held).unwrap();
        let timeout = Err(Error::State(crate::state::Error::LockTimeout {
            path: "lock".into(),
            secs: 20,
        }));
        let mut log = Log::dry_run("n", "started");
        let rc = finish(
            &mut log,
            &paths,
            "n",
            RunOp::Started,
            Mode::Explicit,
            false,
            timeout,
        );
        assert_eq!(rc, 0, "fail-soft");
        assert_eq!(rd.read("n"), Some(held), "the record is the lock holder's");
    }

    #[test]
    fn hook_paths() {
        for (p, want) in [
            ("/etc/libvirt/hooks/network.d/50-net-hook", true),
            ("/etc/libvirt/hooks/network", true),
            ("/tmp/x/hooks/network.d/net-hook", true),
            ("/usr/bin/net-hook", false),
            ("net-hook", false),
            ("network", false),
            ("/etc/libvirt/hooks/qemu", false),
        ] {
            assert_eq!(is_hook_path(p.as_ref()), want, "{p}");
        }
        for p in [
            "/etc/libvirt/hooks/qemu.d/50-net-hook",
            "/etc/libvirt/hooks/qemu",
        ] {
            assert_eq!(hook_kind(p.as_ref()), Some(HookKind::Qemu), "{p}");
        }
        assert_eq!(hook_kind("/usr/bin/qemu".as_ref()), None);
    }
}
