//! The companion commands for routed interfaces (domains): `check DOMAIN`,
//! what `status`, `apply`, `teardown` and `reconcile` do for domains, and
//! `routed xml` (the `<interface>` block to paste into a domain).

use std::path::Path;

use serde::Serialize;

use super::Ctx;
use super::check::{Check, Status, c};
use crate::config::{Config, DomainConfig, RoutedInterface, TapMode};
use crate::domaindata::HookDomain;
use crate::error::{Error, Result};
use crate::exec::{self, Host, System};
use crate::log::Log;
use crate::model::{Mac, Observed};
use crate::plan::Step;
use crate::qemu_hook;
use crate::routed::{self, GATEWAY_MARK};
use crate::state::{RunDir, RunOp};

/// What the commands need to know of a libvirt domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomInfo {
    pub xml: HookDomain,
    pub active: bool,
}

fn domain_config<'a>(cfg: &'a Config, path: &Path, name: &str) -> Result<&'a DomainConfig> {
    cfg.domains.get(name).ok_or_else(|| {
        Error::Usage(format!(
            "{name:?} is neither a network nor a domain in {} (or in a network's <metadata>); add a [domains.{}] table for a domain's routed interfaces",
            path.display(),
            crate::config::key_repr(name)
        ))
    })
}

/// Whether `name` is a domain of the config (and not also a network).
pub fn is_domain(cfg: &Config, name: &str) -> bool {
    cfg.domains.contains_key(name) && !cfg.networks.contains_key(name)
}

#[derive(Serialize)]
pub struct Report {
    pub domain: String,
    pub result: Status,
    pub checks: Vec<Check>,
}

/// `check DOMAIN`: the gateway, each tap with its effective sysctls, routes
/// and neighbour entries, and what BIRD learned.
pub fn check(cx: &Ctx, name: &str) -> Result<Report> {
    let cfg = super::load_config(cx.config)?;
    let d = domain_config(&cfg, cx.config, name)?;
    let info = cx.libvirt.domain(name)?;
    let mut host = System::open()?;
    let obs = host.observe(&qemu_hook::scope(d, RunOp::Apply))?;
    let mut checks = vec![c(
        "CONFIG",
        Status::Pass,
        format!("domain {name} is configured in {}", cx.config.display()),
    )];
    checks.push(match &info {
        None => c(
            "DOMAIN",
            Status::Fail,
            format!("libvirt has no domain {name:?} (see `virsh list --all`)"),
        ),
        Some(i) if i.active => c("DOMAIN", Status::Pass, "the domain is running"),
        Some(_) => c(
            "DOMAIN",
            Status::Warn,
            "the domain is not running: no routes are expected",
        ),
    });
    let running = info.as_ref().is_some_and(|i| i.active);
    for g in cfg.gateways_of(d) {
        checks.extend(gateway_checks(&g, &qemu_hook::host_seed(), &obs));
    }
    for i in &d.interfaces {
        checks.extend(interface_checks(
            i,
            info.as_ref().map(|i| &i.xml),
            running,
            &obs,
        ));
    }
    checks.push(hook_entry(&cx.hooks_dir));
    Ok(Report {
        domain: name.to_string(),
        result: super::check::worst(&checks),
        checks,
    })
}

fn hook_entry(hooks_dir: &Path) -> Check {
    let entry = hooks_dir.join("qemu.d").join(crate::install::ENTRY_NAME);
    match std::fs::read_link(&entry) {
        Ok(to) if to.file_name() == Some("net-hook".as_ref()) => c(
            "HOOK",
            Status::Pass,
            format!("{} -> {}", entry.display(), to.display()),
        ),
        Ok(to) => c(
            "HOOK",
            Status::Fail,
            format!(
                "{} links to {}, not net-hook",
                entry.display(),
                to.display()
            ),
        ),
        Err(_) => c(
            "HOOK",
            Status::Fail,
            format!(
                "{} is missing: run `net-hook install`, then restart libvirtd",
                entry.display()
            ),
        ),
    }
}

pub fn gateway_checks(g: &crate::config::GatewayConfig, seed: &[u8], obs: &Observed) -> Vec<Check> {
    let mut out = Vec::new();
    let Some(l) = obs.link_by_name(&g.name) else {
        out.push(c("GW", Status::Fail, format!("gateway {} does not exist: the next `prepare` (or `net-hook apply DOMAIN`) creates it", g.name)));
        return out;
    };
    let mac = routed::gateway_mac(g, seed);
    let dummy = l.kind == crate::model::LinkKind::Other("dummy".into());
    out.push(if dummy && routed::is_gateway(l) && l.up {
        c(
            "GW",
            Status::Pass,
            format!(
                "{}: dummy, marked {GATEWAY_MARK:?}, up, mac {}",
                g.name,
                l.mac.map(|m| m.to_string()).unwrap_or_default()
            ),
        )
    } else {
        c(
            "GW",
            Status::Fail,
            format!(
                "{}: {}{}{}",
                g.name,
                l.describe(),
                if routed::is_gateway(l) {
                    ""
                } else {
                    ", not marked as net-hook's"
                },
                if l.up { "" } else { ", down" }
            ),
        )
    });
    if l.mac != Some(mac) {
        out.push(c(
            "GW",
            Status::Warn,
            format!(
                "{}: mac {} is not the configured/derived {mac}",
                g.name,
                l.mac
                    .map(|m| m.to_string())
                    .unwrap_or_else(|| "none".into())
            ),
        ));
    }
    for a in &g.addresses {
        let have = obs.addrs_of(l.index).find(|x| x.net == *a);
        out.push(match have {
            Some(x) if x.noprefixroute => c("GW", Status::Pass, format!("{}: {a}, noprefixroute (no route for {})", g.name, a.trunc())),
            Some(_) => c("GW", Status::Fail, format!("{}: {a} has a connected route for {}: BIRD could announce it; `net-hook apply DOMAIN` replaces the address", g.name, a.trunc())),
            None => c("GW", Status::Fail, format!("{}: {a} is missing", g.name)),
        });
    }
    out
}

pub fn interface_checks(
    i: &RoutedInterface,
    xml: Option<&HookDomain>,
    running: bool,
    obs: &Observed,
) -> Vec<Check> {
    let mut out = Vec::new();
    let t = &i.tap;
    let expect = if running { Status::Fail } else { Status::Warn };
    let Some(tap) = obs.link_by_name(t) else {
        out.push(c(
            "TAP",
            expect,
            format!(
                "{t} does not exist{}",
                if running {
                    ""
                } else {
                    " (the domain is not running)"
                }
            ),
        ));
        return out;
    };
    out.push(c(
        "TAP",
        Status::Pass,
        format!(
            "{t}: {}, {}{}",
            tap.describe(),
            if tap.up { "up" } else { "down" },
            if i.tap_mode == TapMode::Precreated {
                ", pre-created by net-hook"
            } else {
                ""
            }
        ),
    ));
    let eff = |k: &str| {
        routed::effective(
            obs,
            &format!("net/ipv4/conf/all/{k}"),
            &format!("net/ipv4/conf/{t}/{k}"),
        )
    };
    let dev = |k: &str| obs.sysctls.get(&format!("net/ipv4/conf/{t}/{k}")).cloned();
    for (k, want) in [("proxy_arp", "1"), ("forwarding", "1")] {
        out.push(match dev(k) {
            Some(v) if v == want => c("SYSCTL", Status::Pass, format!("{t}: {k} = {v}")),
            v => c(
                "SYSCTL",
                expect,
                format!(
                    "{t}: {k} = {} (want {want})",
                    v.unwrap_or_else(|| "unreadable".into())
                ),
            ),
        });
    }
    out.push(match eff("arp_ignore") {
        Some(0) => c("SYSCTL", Status::Pass, format!("{t}: arp_ignore in effect 0 (max of all and {t}): the gateway's ARP is answered")),
        Some(n) => c("SYSCTL", Status::Fail, format!("{t}: arp_ignore in effect {n} (max of all and {t}): the VM's ARP for its gateway goes unanswered; set net.ipv4.conf.all.arp_ignore=0")),
        None => c("SYSCTL", Status::Warn, format!("{t}: arp_ignore unreadable")),
    });
    out.push(match eff("rp_filter") {
        Some(n) if n == i.rp_filter => c(
            "SYSCTL",
            Status::Pass,
            format!("{t}: rp_filter in effect {n}"),
        ),
        Some(n) => c(
            "SYSCTL",
            Status::Warn,
            format!(
                "{t}: rp_filter in effect {n} (max of all and {t}), configured {}",
                i.rp_filter
            ),
        ),
        None => c("SYSCTL", Status::Warn, format!("{t}: rp_filter unreadable")),
    });
    if obs.sysctls.get("net/ipv4/ip_forward").map(String::as_str) == Some("0") {
        out.push(c(
            "SYSCTL",
            Status::Warn,
            "net.ipv4.ip_forward = 0: traffic from other interfaces to the VM is not forwarded",
        ));
    }
    let mac: Option<Mac> = xml
        .and_then(|x| {
            x.interfaces
                .iter()
                .find(|e| e.tap.as_deref() == Some(t.as_str()))
        })
        .and_then(|e| e.mac.as_deref())
        .and_then(|m| m.parse().ok());
    for a in &i.addresses {
        let route = obs
            .routes
            .iter()
            .find(|r| r.dst == *a && r.table == i.table);
        out.push(match route {
            Some(r) if r.oif == Some(tap.index) && r.protocol == i.route_protocol => c(
                "ROUTE",
                Status::Pass,
                format!("{a} via {t}, proto {}, table {}", r.protocol, r.table),
            ),
            Some(r) => c(
                "ROUTE",
                Status::Fail,
                format!(
                    "{a} routes via {} with proto {}, not via {t} with proto {}",
                    r.oif
                        .map(|o| obs.name_of(o))
                        .unwrap_or_else(|| "a gateway".into()),
                    r.protocol,
                    i.route_protocol
                ),
            ),
            None => c("ROUTE", expect, format!("no route {a} via {t}")),
        });
        let n = obs
            .neighs
            .iter()
            .find(|n| n.index == tap.index && n.addr == a.addr());
        out.push(match (n, mac) {
            (Some(n), Some(m)) if n.permanent && n.mac == Some(m) => c(
                "NEIGH",
                Status::Pass,
                format!("{} lladdr {m} on {t}, permanent", a.addr()),
            ),
            (Some(n), _) if n.permanent => c(
                "NEIGH",
                Status::Warn,
                format!(
                    "{} on {t} is permanent with lladdr {}, the domain's MAC unknown or different",
                    a.addr(),
                    n.mac.map(|m| m.to_string()).unwrap_or_default()
                ),
            ),
            _ => c(
                "NEIGH",
                expect,
                format!("no permanent neighbour entry for {} on {t}", a.addr()),
            ),
        });
        if let Some(b) = bird_learned(a) {
            out.push(b);
        }
    }
    out
}

/// Whether BIRD's tables have the VM's route, when `birdc` is there.
fn bird_learned(a: &ipnet::IpNet) -> Option<Check> {
    let out = std::process::Command::new("birdc")
        .args(["-r", "show", "route", "for", &a.to_string()])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    Some(if out.status.success() && text.contains(&a.to_string()) {
        c("BIRD", Status::Pass, format!("bird has {a}"))
    } else {
        c(
            "BIRD",
            Status::Warn,
            format!(
                "bird has no route {a} (is its kernel protocol learning net-hook's routes? see the README's BIRD section): {}",
                text.lines().last().unwrap_or("").trim()
            ),
        )
    })
}

pub fn print(r: &Report, color: bool) {
    super::check::print_checks(&r.checks, &format!("domain {:?}", r.domain), color);
}

/// `apply DOMAIN`: what `prepare` and `started` do, for a running domain
/// (a hot-plugged interface ran no hook).
pub fn apply(cx: &Ctx, name: &str, dry_run: bool) -> Result<Vec<Step>> {
    let cfg = super::load_config(cx.config)?;
    let d = domain_config(&cfg, cx.config, name)?;
    let info = cx.libvirt.domain(name)?.ok_or_else(|| {
        Error::Usage(format!(
            "libvirt has no domain {name:?} (see `virsh list --all`)"
        ))
    })?;
    if !info.active {
        return Err(Error::Usage(format!(
            "domain {name:?} is not running; start it (`virsh start {name}`): the hook then does the rest"
        )));
    }
    apply_domain(cx.run_dir, &cfg, d, &info.xml, dry_run)
}

fn apply_domain(
    run_dir: &Path,
    cfg: &Config,
    d: &DomainConfig,
    xml: &HookDomain,
    dry_run: bool,
) -> Result<Vec<Step>> {
    let gws = cfg.gateways_of(d);
    let mut host = System::open()?;
    if dry_run {
        let obs = host.observe(&qemu_hook::scope(d, RunOp::Apply))?;
        let (steps, warnings) =
            qemu_hook::plan(d, &gws, &qemu_hook::host_seed(), xml, RunOp::Apply, &obs)?;
        print_dry(&d.name, "apply", &steps);
        for w in warnings {
            println!("  warning: {w}");
        }
        return Ok(vec![]);
    }
    let rundir = RunDir::domains(run_dir);
    let _lock = rundir.lock()?;
    let mut log = Log::system_only(&d.name, "apply");
    let res = qemu_hook::carry_out(d, &gws, xml, RunOp::Apply, &mut host, &mut log);
    rundir.record(&crate::ops::outcome(&d.name, RunOp::Apply, &res));
    res.map(|d| d.actions)
}

/// `teardown DOMAIN`: what `release` does (routes, neighbour entries,
/// pre-created taps). Needs no libvirt.
pub fn teardown(config: &Path, run_dir: &Path, name: &str, dry_run: bool) -> Result<Vec<Step>> {
    let cfg = super::load_config(config)?;
    let d = domain_config(&cfg, config, name)?;
    stop_domain(run_dir, d, dry_run, None)
}

/// What a reconcile that saw a domain not running at `since` (Unix
/// seconds) must respect when it tears down its leftovers later: a hook
/// run since then means the domain is starting, and a tap with carrier is
/// open (QEMU has it).
#[derive(Clone, Copy)]
struct Guard {
    since: u64,
}

fn stop_domain(
    run_dir: &Path,
    d: &DomainConfig,
    dry_run: bool,
    guard: Option<Guard>,
) -> Result<Vec<Step>> {
    let mut host = System::open()?;
    let rundir = RunDir::domains(run_dir);
    // Read the host under the lock: a hook may be changing it.
    let _lock = if dry_run { None } else { Some(rundir.lock()?) };
    if let Some(g) = guard {
        let started = rundir.read(&d.name).is_some_and(|o| {
            o.time >= g.since && matches!(o.op, RunOp::Prepare | RunOp::Started | RunOp::Reconnect)
        });
        if started {
            return Ok(vec![]);
        }
    }
    let obs = host.observe(&qemu_hook::scope(d, RunOp::Teardown))?;
    let mut steps = routed::plan_stop(d, &obs, true);
    if guard.is_some() {
        steps.retain(|s| !matches!(s, Step::DeleteLink { name } if has_carrier(&obs, name)));
    }
    if dry_run {
        print_dry(&d.name, "teardown", &steps);
        return Ok(vec![]);
    }
    let mut done = Vec::new();
    let res = exec::teardown(&mut host, &steps, |s| done.push(s.clone()));
    let res = res.map(|_| crate::ops::Done::of(done)).map_err(Error::from);
    rundir.record(&crate::ops::outcome(&d.name, RunOp::Teardown, &res));
    res.map(|d| d.actions)
}

/// Whether link `name` has carrier: a tap some process (QEMU) has open.
fn has_carrier(obs: &Observed, name: &str) -> bool {
    obs.link_by_name(name)
        .is_some_and(|l| l.carrier == Some(true))
}

/// The routed part of `teardown --all`: every marked tap and gateway, and
/// the routes and neighbour entries the domains' records say net-hook made.
pub fn plan_remove_all(obs: &Observed, run_dir: &Path) -> Vec<Step> {
    let mut steps = Vec::new();
    for o in RunDir::domains(run_dir).list() {
        for s in &o.actions {
            if let Step::AddRoute {
                dst, dev, protocol, ..
            } = s
                && let Some(l) = obs.link_by_name(dev)
            {
                steps.extend(routed::routes_and_neighs(
                    obs,
                    l.index,
                    dev,
                    &[*dst],
                    Some(*protocol),
                ));
            }
        }
    }
    for l in &obs.links {
        if routed::tap_owner(l).is_some() || routed::is_gateway(l) {
            steps.push(Step::DeleteLink {
                name: l.name.clone(),
            });
        }
    }
    steps.dedup();
    steps
}

/// The routed part of `reconcile`: every configured gateway made, running
/// configured domains applied, stopped ones' leftovers removed, marked taps
/// of unconfigured domains and gateways no longer configured deleted. One
/// line per gateway or domain that needed something. Nothing is deleted
/// without a config file (a mistyped `--config` must not look like "nothing
/// configured"), and never a tap some process has open.
pub fn reconcile(cx: &Ctx, dry_run: bool) -> Result<(Vec<String>, usize)> {
    let cfg = super::load_config(cx.config)?;
    let have_file = cx.config.exists();
    let mut lines = Vec::new();
    let mut failures = 0;
    let seed = qemu_hook::host_seed();
    let mut host = System::open()?;
    let rundir = RunDir::domains(cx.run_dir);
    // Every configured gateway, whether or not a domain runs yet (at boot
    // the reconcile unit makes them before the first domain's `prepare`).
    for g in cfg.gateways.values() {
        let res = (|| -> Result<Vec<String>> {
            let _lock = if dry_run { None } else { Some(rundir.lock()?) };
            let obs = host.observe(&exec::Scope::default())?;
            let steps = routed::plan_gateway(g, &seed, &obs).map_err(|p| {
                Error::Refused(p.into_iter().map(crate::plan::Problem::Routed).collect())
            })?;
            if dry_run {
                if !steps.is_empty() {
                    print_dry(&g.name, "reconcile (gateway)", &steps);
                }
                return Ok(vec![]);
            }
            let mut done = Vec::new();
            exec::apply(&mut host, &steps, |s| done.push(s.to_string()))?;
            Ok(done)
        })();
        match res {
            Ok(done) if done.is_empty() => {}
            Ok(done) => lines.push(format!("gateway {}: {}", g.name, done.join("; "))),
            Err(e) => {
                failures += 1;
                lines.push(format!("gateway {}: {e}", g.name));
            }
        }
    }
    // Only ask libvirt when there are domains to ask about.
    let since = crate::state::now();
    let doms = if cfg.domains.is_empty() {
        vec![]
    } else {
        cx.libvirt.domains()?
    };
    for d in cfg.domains.values() {
        let info = doms.iter().find(|i| i.xml.name == d.name);
        let running = info.is_some_and(|i| i.active);
        let res = match info {
            Some(i) if i.active => apply_domain(cx.run_dir, &cfg, d, &i.xml, dry_run),
            _ => stop_domain(cx.run_dir, d, dry_run, Some(Guard { since })),
        };
        let state = if running { "running" } else { "not running" };
        match res {
            Ok(_) if dry_run => lines.push(format!(
                "domain {}: {state}; planned above (dry run)",
                d.name
            )),
            Ok(a) if a.is_empty() => {
                lines.push(format!("domain {}: {state}; as configured", d.name))
            }
            Ok(a) => lines.push(format!(
                "domain {}: {state}; {}",
                d.name,
                a.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            )),
            Err(e) => {
                failures += 1;
                lines.push(format!("domain {}: {e}", d.name));
            }
        }
    }
    if !have_file {
        return Ok((lines, failures));
    }
    // Leftovers of what the config no longer has.
    let _lock = if dry_run { None } else { Some(rundir.lock()?) };
    let obs = host.observe(&exec::Scope::default())?;
    let configured_taps: Vec<&str> = cfg
        .domains
        .values()
        .flat_map(|d| d.interfaces.iter().map(|i| i.tap.as_str()))
        .collect();
    let steps: Vec<Step> = obs
        .links
        .iter()
        .filter(|l| {
            (routed::tap_owner(l).is_some()
                && !configured_taps.contains(&l.name.as_str())
                && l.carrier != Some(true))
                || (routed::is_gateway(l) && !cfg.gateways.contains_key(&l.name))
        })
        .map(|l| Step::DeleteLink {
            name: l.name.clone(),
        })
        .collect();
    if dry_run {
        if !steps.is_empty() {
            print_dry("(no longer configured)", "reconcile", &steps);
        }
    } else if let Err(e) = exec::teardown(&mut host, &steps, |s| {
        lines.push(format!("not configured: {s}"))
    }) {
        failures += 1;
        lines.push(format!("not configured: {e}"));
    }
    Ok((lines, failures))
}

/// `status` for domains: one entry per configured domain.
#[derive(Debug, Serialize)]
pub struct DomainStatus {
    pub domain: String,
    pub running: bool,
    pub interfaces: Vec<InterfaceStatus>,
    /// The steps that would make the host as configured (empty: it is).
    pub drift: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct InterfaceStatus {
    pub tap: String,
    pub gateway: String,
    pub tap_mode: TapMode,
    pub addresses: Vec<String>,
    pub tap_present: bool,
    pub routed: bool,
}

pub fn status(cx: &Ctx, only: Option<&str>) -> Result<Vec<DomainStatus>> {
    let cfg = super::load_config(cx.config)?;
    let mut out = Vec::new();
    let doms = if cfg.domains.is_empty() {
        vec![]
    } else {
        cx.libvirt.domains()?
    };
    let mut host = System::open()?;
    for d in cfg
        .domains
        .values()
        .filter(|d| only.is_none_or(|o| o == d.name))
    {
        let obs = host.observe(&qemu_hook::scope(d, RunOp::Apply))?;
        let info = doms.iter().find(|i| i.xml.name == d.name);
        let running = info.is_some_and(|i| i.active);
        let drift = match info.filter(|i| i.active) {
            Some(i) => match qemu_hook::plan(
                d,
                &cfg.gateways_of(d),
                &qemu_hook::host_seed(),
                &i.xml,
                RunOp::Apply,
                &obs,
            ) {
                Ok((steps, _)) => steps.iter().map(ToString::to_string).collect(),
                Err(e) => vec![e.to_string()],
            },
            None => routed::plan_stop(d, &obs, true)
                .iter()
                .map(ToString::to_string)
                .collect(),
        };
        let interfaces = d
            .interfaces
            .iter()
            .map(|i| {
                let tap = obs.link_by_name(&i.tap);
                InterfaceStatus {
                    tap: i.tap.clone(),
                    gateway: i.gateway.clone(),
                    tap_mode: i.tap_mode,
                    addresses: i.addresses.iter().map(ToString::to_string).collect(),
                    tap_present: tap.is_some(),
                    routed: tap.is_some_and(|t| {
                        i.addresses.iter().all(|a| {
                            obs.routes.iter().any(|r| {
                                r.dst == *a
                                    && r.oif == Some(t.index)
                                    && r.protocol == i.route_protocol
                            })
                        })
                    }),
                }
            })
            .collect();
        out.push(DomainStatus {
            domain: d.name.clone(),
            running,
            interfaces,
            drift,
        });
    }
    Ok(out)
}

pub fn print_status(list: &[DomainStatus], color: bool) {
    for d in list {
        let ok = d.drift.is_empty();
        let word = if ok {
            super::paint("ok", "32", color)
        } else {
            super::paint("DRIFT", "31", color)
        };
        println!(
            "domain {} ({}): {word}",
            d.domain,
            if d.running { "running" } else { "not running" }
        );
        for i in &d.interfaces {
            println!(
                "  {} via gateway {} (tap_mode {}): {}; {}",
                i.tap,
                i.gateway,
                i.tap_mode.name(),
                i.addresses.join(", "),
                match (i.tap_present, i.routed) {
                    (false, _) => "tap absent",
                    (true, true) => "routed",
                    (true, false) => "tap present, not routed",
                }
            );
        }
        for s in &d.drift {
            println!("  to do: {s}");
        }
    }
}

/// `routed xml DOMAIN TAP`: the `<interface>` element for a configured
/// interface, for `virsh edit` or `virt-xml --add-device`.
pub fn interface_xml(config: &Path, name: &str, tap: &str, mac: Option<&str>) -> Result<String> {
    let cfg = super::load_config(config)?;
    let d = domain_config(&cfg, config, name)?;
    let i = d.interfaces.iter().find(|i| i.tap == tap).ok_or_else(|| {
        Error::Usage(format!(
            "domain {name:?} has no interface with tap = {tap:?} in {}",
            config.display()
        ))
    })?;
    let mac = match mac {
        Some(m) => {
            let m: Mac = m.parse().map_err(|_| {
                Error::Usage(format!("{m:?} is not a MAC address like 52:54:00:12:34:56"))
            })?;
            format!("\n  <mac address='{m}'/>")
        }
        None => String::new(),
    };
    let managed = if i.tap_mode == TapMode::Precreated {
        " managed='no'"
    } else {
        ""
    };
    Ok(format!(
        "<interface type='ethernet'>{mac}\n  <target dev='{tap}'{managed}/>\n  <model type='virtio'/>\n</interface>\n"
    ))
}

fn print_dry(name: &str, what: &str, steps: &[Step]) {
    println!("domain {name:?}, {what}: dry run, nothing changed");
    if steps.is_empty() {
        println!("  nothing to do");
    }
    for (i, s) in steps.iter().enumerate() {
        println!("  {:>2}. {s}", i + 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::GatewayConfig;
    use crate::model::{Neigh, Route};
    use crate::testutil::{addr, link, obs};

    const SEED: &[u8] = b"host";

    fn gw() -> GatewayConfig {
        GatewayConfig {
            name: "virgw-service".into(),
            addresses: vec!["172.31.16.1/24".parse().unwrap()],
            mac: None,
        }
    }

    fn iface() -> RoutedInterface {
        RoutedInterface {
            tap: "tap-routed-demo".into(),
            gateway: "virgw-service".into(),
            addresses: vec!["172.31.16.10/32".parse().unwrap()],
            route_protocol: 200,
            table: 254,
            tap_mode: TapMode::Libvirt,
            rp_filter: 1,
        }
    }

    use crate::commands::check::worst;

    #[test]
    fn the_gateway_passes_only_as_net_hook_makes_it() {
        let mut l = link(2, "virgw-service", "dummy");
        l.alias = Some(GATEWAY_MARK.into());
        l.mac = Some(Mac::derived(SEED, "virgw-service"));
        let mut a = addr(2, "172.31.16.1/24");
        a.noprefixroute = true;
        let good = gateway_checks(&gw(), SEED, &obs(vec![l.clone()], vec![a.clone()]));
        assert_eq!(worst(&good), Status::Pass, "{good:?}");
        a.noprefixroute = false;
        let routed = gateway_checks(&gw(), SEED, &obs(vec![l.clone()], vec![a]));
        assert!(
            routed
                .iter()
                .any(|c| c.status == Status::Fail && c.reason.contains("connected route")),
            "{routed:?}"
        );
        let missing = gateway_checks(&gw(), SEED, &obs(vec![], vec![]));
        assert_eq!(worst(&missing), Status::Fail);
    }

    #[test]
    fn an_interface_is_judged_by_effective_values_routes_and_entries() {
        let tap = link(9, "tap-routed-demo", "tun");
        let mut o = obs(vec![tap], vec![]);
        for (k, v) in [
            ("net/ipv4/conf/tap-routed-demo/proxy_arp", "1"),
            ("net/ipv4/conf/tap-routed-demo/forwarding", "1"),
            ("net/ipv4/conf/tap-routed-demo/arp_ignore", "0"),
            ("net/ipv4/conf/all/arp_ignore", "0"),
            ("net/ipv4/conf/tap-routed-demo/rp_filter", "1"),
            ("net/ipv4/conf/all/rp_filter", "0"),
        ] {
            o.sysctls.insert(k.into(), v.into());
        }
        o.routes.push(Route {
            dst: "172.31.16.10/32".parse().unwrap(),
            oif: Some(9),
            protocol: 200,
            table: 254,
            metric: 0,
        });
        let mac: Mac = "52:54:00:1e:10:0a".parse().unwrap();
        o.neighs.push(Neigh {
            index: 9,
            addr: "172.31.16.10".parse().unwrap(),
            mac: Some(mac),
            permanent: true,
        });
        let xml = crate::domaindata::parse(
            "<domain><name>routed-demo</name><devices><interface type='ethernet'>\
             <mac address='52:54:00:1e:10:0a'/><target dev='tap-routed-demo'/></interface></devices></domain>",
        )
        .unwrap();
        let checks: Vec<Check> = interface_checks(&iface(), Some(&xml), true, &o)
            .into_iter()
            .filter(|c| c.id != "BIRD")
            .collect();
        assert_eq!(worst(&checks), Status::Pass, "{checks:?}");
        // all.arp_ignore = 2 wins over the tap's 0.
        o.sysctls
            .insert("net/ipv4/conf/all/arp_ignore".into(), "2".into());
        o.routes.clear();
        let checks = interface_checks(&iface(), Some(&xml), true, &o);
        let fails: Vec<&str> = checks
            .iter()
            .filter(|c| c.status == Status::Fail)
            .map(|c| c.id)
            .collect();
        assert_eq!(fails, vec!["SYSCTL", "ROUTE"], "{checks:?}");
        // Not running: what is missing is only a warning.
        let o = obs(vec![], vec![]);
        assert_eq!(
            worst(&interface_checks(&iface(), None, false, &o)),
            Status::Warn
        );
    }

    #[test]
    fn teardown_all_removes_marked_devices_and_recorded_routes_only() {
        let dir = tempfile::tempdir().unwrap();
        let rd = RunDir::domains(dir.path());
        let route = Step::AddRoute {
            dst: "172.31.16.10/32".parse().unwrap(),
            dev: "tap-user".into(),
            protocol: 200,
            table: 254,
        };
        rd.write(&crate::state::Outcome {
            network: "routed-demo".into(),
            op: RunOp::Started,
            actions: vec![route],
            ..Default::default()
        })
        .unwrap();
        let mut gw = link(2, "virgw-service", "dummy");
        gw.alias = Some(GATEWAY_MARK.into());
        let mut tap = link(3, "tap-pre", "tun");
        tap.alias = Some(routed::tap_mark("d2"));
        let mut o = obs(
            vec![
                gw,
                tap,
                link(4, "tap-user", "tun"),
                link(5, "dummy9", "dummy"),
            ],
            vec![],
        );
        o.routes.push(Route {
            dst: "172.31.16.10/32".parse().unwrap(),
            oif: Some(4),
            protocol: 200,
            table: 254,
            metric: 0,
        });
        let steps = plan_remove_all(&o, dir.path());
        assert_eq!(
            steps,
            vec![
                Step::DelRoute {
                    dst: "172.31.16.10/32".parse().unwrap(),
                    dev: "tap-user".into(),
                    protocol: 200,
                    table: 254
                },
                Step::DeleteLink {
                    name: "virgw-service".into()
                },
                Step::DeleteLink {
                    name: "tap-pre".into()
                },
            ]
        );
    }
}
