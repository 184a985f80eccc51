//! The qemu hook protocol: `<hook> DOMAIN OP SUBOP EXTRA` with the live
//! domain XML on stdin, for routed interfaces. A domain the config does not
//! name exits before any parse, socket or lock, like an unmanaged network.
//! Nothing is ever printed on stdout: for `migrate` and `restore` libvirt
//! would take it as the new domain XML.

use std::ffi::OsString;

use crate::config::{self, Config, DomainConfig, GatewayConfig, Loaded};
use crate::domaindata::{self, HookDomain};
use crate::error::{Error, Result};
use crate::exec::{self, Host, Scope, System};
use crate::hook::{Input, Mode, Paths};
use crate::hookdata;
use crate::log::{Event, Level, Log};
use crate::ops::Done;
use crate::plan::{Problem, Step};
use crate::routed::{self, Want};
use crate::state::{RunDir, RunOp};

pub const USAGE: &str =
    "usage: net-hook hook --qemu [--dry-run] DOMAIN OP SUBOP [EXTRA]  (the domain XML on stdin)";

/// The ops net-hook acts on; every other (migrate, restore, attach, and
/// whatever a newer libvirt adds) exits 0 at once.
pub fn op_of(op: &str, subop: &str) -> Option<RunOp> {
    Some(match (op, subop) {
        ("prepare", "begin") => RunOp::Prepare,
        ("started", "begin") => RunOp::Started,
        ("stopped", "end") => RunOp::Stopped,
        ("release", "end") => RunOp::Release,
        ("reconnect", "begin") => RunOp::Reconnect,
        _ => return None,
    })
}

/// The host's seed for derived gateway MACs: its machine id (stable across
/// reboots, different between hosts), else its hostname.
pub fn host_seed() -> Vec<u8> {
    match std::fs::read_to_string("/etc/machine-id") {
        Ok(s) if !s.trim().is_empty() => s.trim().as_bytes().to_vec(),
        _ => std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().as_bytes().to_vec())
            .unwrap_or_default(),
    }
}

/// Runs one qemu hook invocation; returns the exit status.
pub fn run(args: &[OsString], paths: &Paths, mode: Mode, stdin: Input) -> u8 {
    let (domain, op, subop) = match args {
        [d, o, s] | [d, o, s, _] => (d, o, s),
        _ => {
            eprintln!(
                "net-hook: expected 4 arguments (DOMAIN OP SUBOP EXTRA), got {}; {USAGE}",
                args.len()
            );
            return 2;
        }
    };
    let Some(op) = op
        .to_str()
        .zip(subop.to_str())
        .and_then(|(o, s)| op_of(o, s))
    else {
        return 0;
    };
    let Some(domain) = domain.to_str() else {
        return 0;
    };
    let text = match config::load_if_mentions(&paths.config, domain) {
        Ok(Loaded::Missing | Loaded::NotMentioned) => return 0,
        Ok(Loaded::Text { text, insecure }) => match insecure {
            Some(e) => {
                let mut log = logger(domain, op, mode);
                return finish(&mut log, paths, domain, op, mode, false, Err(e.into()));
            }
            None => text,
        },
        Err(e) => {
            let mut log = logger(domain, op, mode);
            log.event(Event::Refused, Level::Error, &e.to_string());
            log.finish(None);
            return 0;
        }
    };
    let file = paths.config.display().to_string();
    let cfg = match Config::parse_domain(&text, &file, domain) {
        Ok(c) => c,
        Err(e) => {
            let mut log = logger(domain, op, mode);
            return finish(&mut log, paths, domain, op, mode, false, Err(e.into()));
        }
    };
    // Mentioned, but not as a domain (a network of that name, say).
    let Some(d) = cfg.domains.get(domain) else {
        return 0;
    };
    let strict = d.strict && matches!(op, RunOp::Prepare | RunOp::Started);
    let gateways = cfg.gateways_of(d);
    let mut log = logger(domain, op, mode);
    let res = read_domain(stdin, mode, domain)
        .and_then(|xml| execute(d, &gateways, &xml, op, paths, mode, &mut log));
    finish(&mut log, paths, domain, op, mode, strict, res)
}

fn logger(domain: &str, op: RunOp, mode: Mode) -> Log {
    match mode {
        Mode::Libvirt | Mode::Explicit => Log::hook_domain(domain, op.name()),
        Mode::DryRun => Log::dry_run_domain(domain, op.name()),
    }
}

fn read_domain(stdin: Input, mode: Mode, domain: &str) -> Result<HookDomain> {
    if mode != Mode::Libvirt && stdin.terminal {
        return Err(Error::Usage(format!(
            "the domain XML goes on stdin, e.g. `virsh dumpxml {domain} | net-hook hook --qemu {domain} started begin -`"
        )));
    }
    let text = hookdata::read_capped(stdin.reader)?;
    let xml = domaindata::parse(&text)?;
    if xml.name != domain {
        return Err(Error::Input(hookdata::Error::Input(format!(
            "stdin describes domain {:?}, but the arguments name {domain:?}",
            xml.name
        ))));
    }
    Ok(xml)
}

/// What a run for `op` reads of the host.
pub fn scope(d: &DomainConfig, op: RunOp) -> Scope {
    Scope {
        routes: op != RunOp::Prepare,
        sysctls: match op {
            RunOp::Started | RunOp::Reconnect | RunOp::Apply => routed::sysctl_keys(d),
            _ => vec![],
        },
        ..Scope::default()
    }
}

/// The steps of `op` for domain `d`, or what stops them; and warnings.
pub fn plan(
    d: &DomainConfig,
    gateways: &[GatewayConfig],
    seed: &[u8],
    xml: &HookDomain,
    op: RunOp,
    obs: &crate::model::Observed,
) -> Result<(Vec<Step>, Vec<String>)> {
    let w = Want {
        domain: d,
        gateways,
        seed,
    };
    let refused =
        |p: Vec<routed::Problem>| Error::Refused(p.into_iter().map(Problem::Routed).collect());
    match op {
        RunOp::Prepare => routed::plan_prepare(&w, xml, obs)
            .map(|s| (s.steps, s.warnings))
            .map_err(refused),
        RunOp::Started | RunOp::Reconnect | RunOp::Apply => routed::plan_started(&w, xml, obs)
            .map(|s| (s.steps, s.warnings))
            .map_err(refused),
        RunOp::Stopped => Ok((routed::plan_stop(d, obs, false), vec![])),
        RunOp::Release | RunOp::Teardown => Ok((routed::plan_stop(d, obs, true), vec![])),
        RunOp::Start => Ok((vec![], vec![])),
    }
}

/// Observes, plans and carries out `op` (callers outside the hook hold
/// the lock); a bring-up is all or nothing, a stop removes what it can.
pub fn carry_out(
    d: &DomainConfig,
    gateways: &[GatewayConfig],
    xml: &HookDomain,
    op: RunOp,
    host: &mut dyn Host,
    log: &mut Log,
) -> Result<Done> {
    let obs = host.observe(&scope(d, op))?;
    let (steps, warnings) = plan(d, gateways, &host_seed(), xml, op, &obs)?;
    for w in &warnings {
        log.warn(w);
    }
    let mut actions = Vec::new();
    let mut done = |s: &Step| {
        match s {
            Step::CreateDummy { .. } | Step::CreateTap { .. } => {
                log.event(Event::Created, Level::Info, &s.to_string())
            }
            Step::DeleteLink { .. } => log.event(Event::Removed, Level::Info, &s.to_string()),
            _ => log.info(&s.to_string()),
        }
        actions.push(s.clone());
    };
    match op {
        RunOp::Stopped | RunOp::Release | RunOp::Teardown => {
            exec::teardown(host, &steps, &mut done)?
        }
        _ => exec::apply(host, &steps, &mut done)?,
    }
    if actions.is_empty() {
        log.event(
            Event::Unchanged,
            Level::Info,
            "nothing to do: everything is as configured",
        );
    }
    Ok(Done::of(actions))
}

fn execute(
    d: &DomainConfig,
    gateways: &[GatewayConfig],
    xml: &HookDomain,
    op: RunOp,
    paths: &Paths,
    mode: Mode,
    log: &mut Log,
) -> Result<Done> {
    let mut host = System::open()?;
    if mode == Mode::DryRun {
        let obs = host.observe(&scope(d, op))?;
        let planned = plan(d, gateways, &host_seed(), xml, op, &obs);
        print_plan(&d.name, op, &planned);
        return planned.map(|_| Done::default());
    }
    let rundir = RunDir::domains(&paths.run_dir);
    let (_lock, waited) = rundir.lock_timed()?;
    if waited >= std::time::Duration::from_millis(100) {
        log.info(&format!(
            "waited {} ms for the lock (another net-hook run held it)",
            waited.as_millis()
        ));
    }
    carry_out(d, gateways, xml, op, &mut host, log)
}

/// A dry run's plan on stderr: stdout must stay empty (see the module doc).
fn print_plan(domain: &str, op: RunOp, planned: &Result<(Vec<Step>, Vec<String>)>) {
    let shown = crate::log::shown(domain);
    match planned {
        Ok((steps, warnings)) => {
            eprintln!("domain {shown}, {op}: {} step(s)", steps.len());
            for s in steps {
                eprintln!("  {s}");
            }
            for w in warnings {
                eprintln!("  warning: {w}");
            }
        }
        Err(Error::Refused(problems)) => {
            eprintln!("domain {shown}, {op}: refused, nothing would change:");
            for p in problems {
                eprintln!("  {p}");
            }
        }
        Err(_) => {}
    }
}

/// Records the outcome, logs, and decides the exit status: non-zero only
/// for a strict domain's `prepare` or `started` (libvirt then fails the
/// start and shows our line).
fn finish(
    log: &mut Log,
    paths: &Paths,
    domain: &str,
    op: RunOp,
    mode: Mode,
    strict: bool,
    res: Result<Done>,
) -> u8 {
    let soft = match op {
        RunOp::Reconnect => {
            " (a failed reconnect would make libvirt kill the domain: net-hook never fails it)"
        }
        RunOp::Prepare | RunOp::Started => {
            " (fail-soft: the domain starts anyway; set strict = true to fail it instead)"
        }
        _ => "",
    };
    let subject = crate::hook::Subject {
        kind: "domain",
        name: domain,
        rundir: RunDir::domains(&paths.run_dir),
    };
    crate::hook::conclude(log, &subject, op, mode, (strict, soft), res)
}
