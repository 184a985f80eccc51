//! Routed VM interfaces, the deciding half: from the config, the domain's
//! XML (the qemu hook's stdin) and the host, the steps of each qemu hook op.
//! Pure, like `plan`: the executor carries the steps out.
//!
//! Per op: `prepare` ensures the gateway dummies (and pre-created taps);
//! `started` and `reconnect` add the taps' sysctls, the /32 (/128) routes
//! and the permanent neighbour entries; `stopped` and `release` remove the
//! routes and entries (and, at `release`, pre-created taps). Gateways stay:
//! only `net-hook teardown --all` (the package's purge) deletes them.

use std::fmt;

use ipnet::IpNet;

use crate::config::{DomainConfig, GatewayConfig, RoutedInterface, TapMode};
use crate::domaindata::{EthernetInterface, HookDomain};
use crate::model::{Link, LinkKind, Mac, Observed};
use crate::plan::Step;

/// The alias of a gateway device net-hook created or adopted.
pub const GATEWAY_MARK: &str = "net-hook-gw";
const TAP_MARK_PREFIX: &str = "net-hook-tap:";

/// The alias of a tap net-hook created for `domain`.
pub fn tap_mark(domain: &str) -> String {
    format!("{TAP_MARK_PREFIX}{domain}")
}

/// The domain a tap's alias says net-hook created it for.
pub fn tap_owner(link: &Link) -> Option<&str> {
    link.alias.as_deref()?.strip_prefix(TAP_MARK_PREFIX)
}

pub fn is_gateway(link: &Link) -> bool {
    link.alias.as_deref() == Some(GATEWAY_MARK)
}

/// Something that stops a routed plan: nothing of it is applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// A device of that name exists and is not ours to use.
    Foreign {
        name: String,
        what: String,
        fix: &'static str,
    },
    /// The gateway's address is on another device.
    Conflict {
        addr: IpNet,
        holder: String,
    },
    /// The domain's XML has no such `<interface type='ethernet'>`.
    NotInDomain {
        tap: String,
    },
    /// The config's tap mode and the domain's `<target managed>` disagree.
    ModeMismatch {
        tap: String,
        mode: TapMode,
    },
    /// The domain's interface has no usable `<mac address>`.
    NoMac {
        tap: String,
    },
    TapMissing {
        tap: String,
        mode: TapMode,
    },
    /// A route to a VM address exists that net-hook did not make.
    RouteTaken {
        dst: IpNet,
        via: String,
        protocol: u8,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Problem::*;
        match self {
            Foreign { name, what, fix } => {
                write!(f, "{name} already exists as {what}; left untouched: {fix}")
            }
            Conflict { addr, holder } => write!(
                f,
                "gateway address {addr} is already on {holder}; remove it there first (or change the config)"
            ),
            NotInDomain { tap } => write!(
                f,
                "the domain has no <interface type='ethernet'> with <target dev='{tap}'/>; add it (`net-hook routed xml DOMAIN {tap}` prints one)"
            ),
            ModeMismatch {
                tap,
                mode: TapMode::Precreated,
            } => write!(
                f,
                "{tap}: the config says tap_mode = \"precreated\", but the domain's <target dev='{tap}'/> lacks managed='no' (libvirt would refuse the existing tap); add managed='no' or set tap_mode = \"libvirt\""
            ),
            ModeMismatch { tap, .. } => write!(
                f,
                "{tap}: the domain says <target dev='{tap}' managed='no'/> (a tap that exists beforehand), but the config's tap_mode is \"libvirt\"; set tap_mode = \"precreated\" or drop managed='no'"
            ),
            NoMac { tap } => write!(
                f,
                "{tap}: the domain's interface has no usable <mac address> for the neighbour entry; give it one (libvirt's 52:54:00:xx:xx:xx)"
            ),
            TapMissing {
                tap,
                mode: TapMode::Libvirt,
            } => write!(
                f,
                "tap {tap} does not exist; libvirt creates it when the domain starts: is the domain running?"
            ),
            TapMissing { tap, .. } => write!(
                f,
                "tap {tap} does not exist; net-hook creates it at `prepare`: restart the domain, or run `net-hook apply DOMAIN`"
            ),
            RouteTaken { dst, via, protocol } => write!(
                f,
                "a route to {dst} already exists via {via} (proto {protocol}), not made by net-hook: another device or host claims the VM's address; remove it first"
            ),
        }
    }
}

/// What the planner is told besides the host: the domain's config, its
/// gateways, and the host's seed for derived MACs.
pub struct Want<'a> {
    pub domain: &'a DomainConfig,
    pub gateways: &'a [GatewayConfig],
    pub seed: &'a [u8],
}

impl Want<'_> {
    fn gateway(&self, name: &str) -> Option<&GatewayConfig> {
        self.gateways.iter().find(|g| g.name == name)
    }

    /// The gateways the domain's interfaces use, once each, in config order.
    fn used_gateways(&self) -> Vec<&GatewayConfig> {
        let mut out: Vec<&GatewayConfig> = Vec::new();
        for i in &self.domain.interfaces {
            if let Some(g) = self.gateway(&i.gateway)
                && !out.iter().any(|o| o.name == g.name)
            {
                out.push(g);
            }
        }
        out
    }
}

/// The MAC of gateway `g` on this host.
pub fn gateway_mac(g: &GatewayConfig, seed: &[u8]) -> Mac {
    g.mac.unwrap_or_else(|| Mac::derived(seed, &g.name))
}

/// The steps that make gateway `g` a marked dummy with its addresses
/// (no connected route), up.
pub fn plan_gateway(
    g: &GatewayConfig,
    seed: &[u8],
    obs: &Observed,
) -> Result<Vec<Step>, Vec<Problem>> {
    let mac = gateway_mac(g, seed);
    let mut problems = Vec::new();
    let own = obs.link_by_name(&g.name);
    for a in &g.addresses {
        for other in obs.addrs.iter().filter(|o| o.net.addr() == a.addr()) {
            if own.is_none_or(|l| l.index != other.index) {
                problems.push(Problem::Conflict {
                    addr: *a,
                    holder: obs.name_of(other.index),
                });
            }
        }
    }
    let mut steps = Vec::new();
    match own {
        None => {
            steps.push(Step::CreateDummy {
                name: g.name.clone(),
                mac,
            });
            steps.push(mark(&g.name, GATEWAY_MARK, None));
            steps.extend(g.addresses.iter().map(|a| Step::AddGatewayAddr {
                name: g.name.clone(),
                addr: *a,
            }));
            steps.push(Step::SetUp {
                name: g.name.clone(),
            });
        }
        Some(l) => {
            let dummy = l.kind == LinkKind::Other("dummy".into());
            if !dummy {
                problems.push(Problem::Foreign {
                    name: g.name.clone(),
                    what: l.describe(),
                    fix: "the gateway must be a dummy device: delete it or rename the gateway",
                });
            } else if !is_gateway(l) {
                // Adopt only what is evidently this gateway: a dummy without
                // an alias that has the MAC net-hook would give it.
                if l.alias.is_none() && l.mac == Some(mac) {
                    steps.push(mark(&g.name, GATEWAY_MARK, None));
                } else {
                    problems.push(Problem::Foreign {
                        name: g.name.clone(),
                        what: match &l.alias {
                            Some(a) => format!("a dummy device marked {a:?}"),
                            None => format!(
                                "a dummy device with mac {} (not {mac})",
                                l.mac.map(|m| m.to_string()).unwrap_or_else(|| "none".into())
                            ),
                        },
                        fix: "delete it (`ip link del`) and net-hook creates its own, or set the gateway's `mac` to adopt it",
                    });
                }
            }
            if problems.is_empty() {
                steps.extend(gateway_addrs(g, l, obs));
                if !l.up {
                    steps.push(Step::SetUp {
                        name: g.name.clone(),
                    });
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(steps)
    } else {
        Err(problems)
    }
}

/// The gateway's addresses on its existing device: missing ones added,
/// ones with a connected route replaced, others removed.
fn gateway_addrs(g: &GatewayConfig, l: &Link, obs: &Observed) -> Vec<Step> {
    let mut steps = Vec::new();
    let have: Vec<_> = obs.addrs_of(l.index).filter(|a| !a.link_scope).collect();
    for a in &have {
        let wanted = g.addresses.iter().any(|w| w == &a.net);
        if !wanted || !a.noprefixroute {
            // The undo must put it back as it was, flag and all.
            steps.push(if a.noprefixroute {
                Step::DelGatewayAddr {
                    name: g.name.clone(),
                    addr: a.net,
                }
            } else {
                Step::DelAddr {
                    name: g.name.clone(),
                    addr: a.net,
                }
            });
        }
    }
    for w in &g.addresses {
        let ok = have.iter().any(|a| &a.net == w && a.noprefixroute);
        if !ok {
            steps.push(Step::AddGatewayAddr {
                name: g.name.clone(),
                addr: *w,
            });
        }
    }
    steps
}

fn mark(name: &str, alias: &str, old: Option<String>) -> Step {
    Step::SetAlias {
        name: name.to_string(),
        alias: Some(alias.to_string()),
        old,
    }
}

/// The domain XML's interface for `tap`, checked against the config.
fn xml_interface<'a>(
    i: &RoutedInterface,
    xml: &'a HookDomain,
) -> Result<&'a EthernetInterface, Problem> {
    let x = xml
        .interfaces
        .iter()
        .find(|x| x.tap.as_deref() == Some(i.tap.as_str()))
        .ok_or_else(|| Problem::NotInDomain { tap: i.tap.clone() })?;
    if x.precreated != (i.tap_mode == TapMode::Precreated) {
        return Err(Problem::ModeMismatch {
            tap: i.tap.clone(),
            mode: i.tap_mode,
        });
    }
    Ok(x)
}

fn guest_mac(i: &RoutedInterface, x: &EthernetInterface) -> Result<Mac, Problem> {
    x.mac
        .as_deref()
        .and_then(|m| m.parse::<Mac>().ok())
        .filter(Mac::is_usable)
        .ok_or_else(|| Problem::NoMac { tap: i.tap.clone() })
}

/// `prepare begin`: the gateways, and the pre-created taps. An interface
/// the domain does not have (yet: to be hot-plugged) is skipped with a
/// warning, unless the domain is strict.
pub fn plan_prepare(w: &Want, xml: &HookDomain, obs: &Observed) -> Result<Started, Vec<Problem>> {
    let mut steps = Vec::new();
    let mut warnings = Vec::new();
    let mut problems = Vec::new();
    for g in w.used_gateways() {
        match plan_gateway(g, w.seed, obs) {
            Ok(s) => steps.extend(s),
            Err(p) => problems.extend(p),
        }
    }
    for i in w.domain.interfaces.iter() {
        let x = match xml_interface(i, xml) {
            Ok(x) => x,
            Err(p @ Problem::NotInDomain { .. }) if !w.domain.strict => {
                warnings.push(format!("{p}; {} is skipped", i.tap));
                continue;
            }
            Err(p) => {
                problems.push(p);
                continue;
            }
        };
        if i.tap_mode == TapMode::Precreated {
            match plan_tap(w.domain, i, x, obs) {
                Ok(s) => steps.extend(s),
                Err(p) => problems.push(p),
            }
        }
    }
    if problems.is_empty() {
        Ok(Started { steps, warnings })
    } else {
        Err(problems)
    }
}

/// A pre-created tap: persistent, with the flags QEMU's attach will ask
/// for (a multi-queue mismatch fails it), libvirt's host-side MAC, marked.
fn plan_tap(
    d: &DomainConfig,
    i: &RoutedInterface,
    x: &EthernetInterface,
    obs: &Observed,
) -> Result<Vec<Step>, Problem> {
    let mark_s = tap_mark(&d.name);
    match obs.link_by_name(&i.tap) {
        None => {
            let mac = guest_mac(i, x)?;
            Ok(vec![
                Step::CreateTap {
                    name: i.tap.clone(),
                    mac: Some(mac.tap_side()),
                    vnet_hdr: x.model.as_deref() == Some("virtio"),
                    multi_queue: x.queues > 1,
                },
                mark(&i.tap, &mark_s, None),
                Step::SetUp {
                    name: i.tap.clone(),
                },
            ])
        }
        Some(l) if l.alias.as_deref() == Some(mark_s.as_str()) => Ok(if l.up {
            vec![]
        } else {
            vec![Step::SetUp {
                name: i.tap.clone(),
            }]
        }),
        Some(l) => Err(Problem::Foreign {
            name: i.tap.clone(),
            what: match &l.alias {
                Some(a) => format!("{} marked {a:?}", l.describe()),
                None => format!("{} net-hook did not create", l.describe()),
            },
            fix: "with tap_mode = \"precreated\" net-hook creates the tap itself: delete it (`ip link del`), or set tap_mode = \"libvirt\"",
        }),
    }
}

/// The sysctls a routed tap needs (Calico's set, and `arp_ignore` = 0 so
/// the gateway's ARP is answered); IPv6 ones only for IPv6 addresses.
pub fn tap_sysctls(i: &RoutedInterface) -> Vec<(String, String)> {
    let t = &i.tap;
    let mut out = vec![
        (format!("net/ipv4/conf/{t}/forwarding"), "1".to_string()),
        (format!("net/ipv4/conf/{t}/proxy_arp"), "1".to_string()),
        (
            format!("net/ipv4/conf/{t}/rp_filter"),
            i.rp_filter.to_string(),
        ),
        (format!("net/ipv4/conf/{t}/arp_ignore"), "0".to_string()),
        (format!("net/ipv4/neigh/{t}/proxy_delay"), "0".to_string()),
    ];
    if i.addresses.iter().any(|a| a.addr().is_ipv6()) {
        out.push((format!("net/ipv6/conf/{t}/forwarding"), "1".to_string()));
        out.push((format!("net/ipv6/conf/{t}/accept_ra"), "0".to_string()));
        out.push((format!("net/ipv6/conf/{t}/proxy_ndp"), "1".to_string()));
    }
    out
}

/// The host-wide keys that decide what a tap's own value means
/// (the kernel takes max(all, device) for these).
pub const ALL_KEYS: [&str; 3] = [
    "net/ipv4/conf/all/rp_filter",
    "net/ipv4/conf/all/arp_ignore",
    "net/ipv4/ip_forward",
];

/// Every sysctl key a plan for `d` reads.
pub fn sysctl_keys(d: &DomainConfig) -> Vec<String> {
    let mut keys: Vec<String> = ALL_KEYS.iter().map(|k| k.to_string()).collect();
    for i in &d.interfaces {
        keys.extend(tap_sysctls(i).into_iter().map(|(k, _)| k));
    }
    keys
}

/// The value the kernel acts on for a max(all, device) key.
pub fn effective(obs: &Observed, key_all: &str, key_dev: &str) -> Option<u8> {
    let v = |k: &str| obs.sysctls.get(k).and_then(|s| s.trim().parse::<u8>().ok());
    match (v(key_all), v(key_dev)) {
        (Some(a), Some(d)) => Some(a.max(d)),
        (a, d) => a.or(d),
    }
}

/// What `started` (and `reconnect`) must do, and warnings about host-wide
/// settings that defeat it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Started {
    pub steps: Vec<Step>,
    pub warnings: Vec<String>,
}

/// `started begin` and `reconnect begin`: the gateways (in case `prepare`
/// ran before net-hook was installed), then per interface its sysctls,
/// routes and neighbour entries.
pub fn plan_started(w: &Want, xml: &HookDomain, obs: &Observed) -> Result<Started, Vec<Problem>> {
    let mut out = Started::default();
    let mut problems = Vec::new();
    match plan_prepare(w, xml, obs) {
        Ok(s) => out = s,
        Err(p) => problems = p,
    }
    for i in &w.domain.interfaces {
        out.warnings.extend(host_warnings(i, obs));
        let Ok(x) = xml_interface(i, xml) else {
            continue; // reported by plan_prepare
        };
        let mac = match guest_mac(i, x) {
            Ok(m) => m,
            Err(p) => {
                problems.push(p);
                continue;
            }
        };
        if let Err(p) = route_conflicts(i, obs, &mut out.warnings) {
            problems.extend(p);
            continue;
        }
        let precreated_now = out
            .steps
            .iter()
            .any(|s| matches!(s, Step::CreateTap { name, .. } if name == &i.tap));
        let Some(tap) = obs.link_by_name(&i.tap) else {
            if !precreated_now {
                problems.push(Problem::TapMissing {
                    tap: i.tap.clone(),
                    mode: i.tap_mode,
                });
                continue;
            }
            // Created by this plan: everything below is new.
            out.steps.extend(interface_steps(i, mac, None, obs));
            continue;
        };
        out.steps
            .extend(interface_steps(i, mac, Some(tap.index), obs));
    }
    out.warnings.sort();
    out.warnings.dedup();
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

/// The metric the kernel gives net-hook's routes (none is sent): 0 for
/// IPv4, 1024 for IPv6.
pub fn our_metric(dst: &IpNet) -> u32 {
    if dst.addr().is_ipv6() { 1024 } else { 0 }
}

/// Another's route to a VM address with net-hook's metric blocks the plan
/// (the kernel would refuse ours); one with another metric (BIRD installs
/// what it learned with 32, say, when the VM has just moved here) coexists:
/// a warning that says which one wins.
fn route_conflicts(
    i: &RoutedInterface,
    obs: &Observed,
    warnings: &mut Vec<String>,
) -> Result<(), Vec<Problem>> {
    let mut problems = Vec::new();
    for a in &i.addresses {
        for r in obs
            .routes
            .iter()
            .filter(|r| r.dst == *a && r.table == i.table && r.protocol != i.route_protocol)
        {
            let via = r
                .oif
                .map(|o| obs.name_of(o))
                .unwrap_or_else(|| "a gateway".into());
            if r.metric == our_metric(a) {
                problems.push(Problem::RouteTaken {
                    dst: *a,
                    via,
                    protocol: r.protocol,
                });
            } else {
                let winner = if r.metric < our_metric(a) {
                    "that one wins (lower metric): remove it"
                } else {
                    "net-hook's wins (lower metric)"
                };
                warnings.push(format!(
                    "a route to {a} via {via} (proto {}, metric {}) exists beside net-hook's (metric {}); {winner}",
                    r.protocol,
                    r.metric,
                    our_metric(a),
                ));
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// Sysctls, routes and neighbour entries for one interface; `tap`: its
/// ifindex when it exists already (else everything is planned).
fn interface_steps(i: &RoutedInterface, mac: Mac, tap: Option<u32>, obs: &Observed) -> Vec<Step> {
    let mut steps = Vec::new();
    for (key, value) in tap_sysctls(i) {
        let old = obs.sysctls.get(&key).map(|s| s.trim().to_string());
        if tap.is_some() && old.as_deref() == Some(value.as_str()) {
            continue;
        }
        steps.push(Step::SetSysctl {
            key,
            value,
            old: old.unwrap_or_default(),
        });
    }
    for a in &i.addresses {
        // Ours via another device (a tap of an earlier run): replaced.
        for r in obs.routes.iter().filter(|r| {
            r.dst == *a
                && r.table == i.table
                && r.protocol == i.route_protocol
                && (r.oif != tap || tap.is_none())
        }) {
            if let Some(o) = r.oif {
                steps.push(Step::DelRoute {
                    dst: *a,
                    dev: obs.name_of(o),
                    protocol: r.protocol,
                    table: r.table,
                });
            }
        }
        let have = tap.is_some_and(|t| {
            obs.routes.iter().any(|r| {
                r.dst == *a
                    && r.oif == Some(t)
                    && r.protocol == i.route_protocol
                    && r.table == i.table
            })
        });
        if !have {
            steps.push(Step::AddRoute {
                dst: *a,
                dev: i.tap.clone(),
                protocol: i.route_protocol,
                table: i.table,
            });
        }
        let neigh_ok = tap.is_some_and(|t| {
            obs.neighs
                .iter()
                .any(|n| n.index == t && n.addr == a.addr() && n.mac == Some(mac) && n.permanent)
        });
        if !neigh_ok {
            steps.push(Step::AddNeigh {
                dev: i.tap.clone(),
                addr: a.addr(),
                mac,
            });
        }
    }
    steps
}

/// Host-wide settings that override the tap's own.
fn host_warnings(i: &RoutedInterface, obs: &Observed) -> Vec<String> {
    let mut out = Vec::new();
    // The tap's own arp_ignore is set to 0: only `all` can defeat it.
    if let Some(e) = obs
        .sysctls
        .get("net/ipv4/conf/all/arp_ignore")
        .and_then(|s| s.trim().parse::<u8>().ok())
        && e > 0
    {
        out.push(format!(
            "net.ipv4.conf.all.arp_ignore is {e}: {} will not answer the VM's ARP for its gateway; set it to 0",
            i.tap
        ));
    }
    if let Some(all) = obs
        .sysctls
        .get("net/ipv4/conf/all/rp_filter")
        .and_then(|s| s.trim().parse::<u8>().ok())
        && all > i.rp_filter
    {
        out.push(format!(
            "net.ipv4.conf.all.rp_filter is {all}, so {}'s rp_filter = {} is in effect {all} (the kernel uses the larger)",
            i.tap, i.rp_filter
        ));
    }
    if obs.sysctls.get("net/ipv4/ip_forward").map(|s| s.trim()) == Some("0") {
        out.push(
            "net.ipv4.ip_forward is 0: traffic to the VM from other interfaces is not forwarded; set it to 1".to_string(),
        );
    }
    out
}

/// `stopped end` / `release end` (and `teardown DOMAIN`): the domain's
/// routes and neighbour entries; with `taps`, its pre-created taps too.
pub fn plan_stop(d: &DomainConfig, obs: &Observed, taps: bool) -> Vec<Step> {
    let mut steps = Vec::new();
    for i in &d.interfaces {
        let Some(tap) = obs.link_by_name(&i.tap) else {
            continue;
        };
        steps.extend(routes_and_neighs(
            obs,
            tap.index,
            &i.tap,
            &i.addresses,
            Some(i.route_protocol),
        ));
        if taps && tap_owner(tap) == Some(d.name.as_str()) {
            steps.push(Step::DeleteLink {
                name: i.tap.clone(),
            });
        }
    }
    steps
}

/// Routes via `index` to `addrs` (of `protocol`, when given), and the
/// permanent neighbour entries for those addresses.
pub fn routes_and_neighs(
    obs: &Observed,
    index: u32,
    dev: &str,
    addrs: &[IpNet],
    protocol: Option<u8>,
) -> Vec<Step> {
    let mut steps: Vec<Step> = obs
        .routes
        .iter()
        .filter(|r| {
            r.oif == Some(index)
                && addrs.contains(&r.dst)
                && protocol.is_none_or(|p| p == r.protocol)
        })
        .map(|r| Step::DelRoute {
            dst: r.dst,
            dev: dev.to_string(),
            protocol: r.protocol,
            table: r.table,
        })
        .collect();
    for n in obs
        .neighs
        .iter()
        .filter(|n| n.index == index && n.permanent && addrs.iter().any(|a| a.addr() == n.addr))
    {
        if let Some(mac) = n.mac {
            steps.push(Step::DelNeigh {
                dev: dev.to_string(),
                addr: n.addr,
                mac,
            });
        }
    }
    steps
}

#[cfg(test)]
mod tests;
