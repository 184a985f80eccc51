//! Deciding, without doing: from the config and what the host looks like,
//! every change a run will make (links, addresses, bridge VIDs, firewalld
//! zones, un-NAT rules), or the problems that stop it. Everything here is
//! pure and unit-tested; `exec` carries plans out, and dry runs, `status`
//! and `check` show them.

mod step;

use std::fmt;

use ipnet::IpNet;

use crate::config::{NetworkConfig, VlanConfig, ifname_problem};
use crate::firewall::{self, Backend, Owner, firewalld};
use crate::hookdata::HookNetwork;
use crate::model::{Link, LinkKind, Observed, overlaps, owner_mark};

pub use step::{Driver, Step, sysctl_dev};

/// Every change one run makes, in order, and what it decided without a
/// step (why there is no exemption, which backend holds it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub steps: Vec<Step>,
    pub notes: Vec<String>,
    /// Config that does not apply to this network (logged as warnings).
    pub warnings: Vec<String>,
    /// The backend the exemption is planned for, if any.
    pub backend: Option<Backend>,
}

/// Something that stops a plan. A plan with problems is not applied at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    NoBridge {
        forward_mode: Option<String>,
    },
    BridgeMissing {
        bridge: String,
    },
    NameInvalid {
        name: String,
        vid: u16,
        why: &'static str,
    },
    Foreign {
        name: String,
        what: String,
        wanted: String,
    },
    OwnedByOther {
        name: String,
        owner: String,
    },
    Conflict {
        addr: IpNet,
        holder: String,
        holder_addr: IpNet,
    },
    /// The un-NAT exemption cannot be planned.
    Firewall {
        why: String,
    },
    /// A routed interface's plan (the qemu hook).
    Routed(crate::routed::Problem),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Problem::*;
        match self {
            NoBridge { forward_mode } => write!(
                f,
                "the network has no bridge (forward mode {}); VLANs need a Linux bridge, remove this network from the config",
                forward_mode.as_deref().unwrap_or("none")
            ),
            BridgeMissing { bridge } => {
                write!(f, "bridge {bridge} does not exist; is the network running?")
            }
            NameInvalid { name, vid, why } => write!(
                f,
                "interface name {name:?} for VLAN {vid} is invalid ({why}); set `name` for this VLAN in the config"
            ),
            Foreign { name, what, wanted } => write!(
                f,
                "{name} already exists as {what}, not {wanted}; left untouched: delete it or set another `name`"
            ),
            OwnedByOther { name, owner } => write!(
                f,
                "{name} belongs to {owner:?}; left untouched: two networks cannot share a VLAN interface"
            ),
            Conflict {
                addr,
                holder,
                holder_addr,
            } => write!(
                f,
                "address {addr} conflicts with {holder_addr} on {holder}; remove it from {holder} first (or change the config)"
            ),
            Firewall { why } => write!(f, "un-NAT exemption: {why}"),
            Routed(p) => write!(f, "{p}"),
        }
    }
}

/// What `started` must do for `net` on `bridge`: its VLANs, their
/// firewalld zones, and its un-NAT exemption (`hn`: what libvirt says of the
/// network). `obs` must hold the firewall when the config asks for un-NAT,
/// and the zones when firewalld runs.
pub fn plan_up(
    net: &NetworkConfig,
    bridge: &str,
    hn: &HookNetwork,
    obs: &Observed,
) -> Result<Plan, Vec<Problem>> {
    let mut plan = Plan::default();
    let mut problems = Vec::new();
    match plan_links(net, bridge, obs) {
        Ok(steps) => plan.steps = steps,
        Err(p) => problems = p,
    }
    if let Some(zones) = &obs.zones {
        for vlan in &net.vlans {
            plan.steps
                .extend(firewalld::plan(&vlan.ifname(bridge), net.zone(), zones));
        }
    }
    if let Some(u) = &net.unnat {
        match firewall::exemptions(u, hn) {
            Err(why) => plan
                .warnings
                .push(format!("unnat: nothing to exempt: {why}")),
            Ok(exs) => match &obs.firewall {
                None => problems.push(Problem::Firewall {
                    why: "the firewall was not read".into(),
                }),
                Some(fw) => {
                    let (backend, why) = fw.backend(u.backend);
                    plan.notes
                        .push(format!("unnat: backend {backend} because {why}"));
                    plan.backend = Some(backend);
                    match firewall::driver(backend).plan(&net.name, &exs, fw) {
                        Ok(steps) => plan.steps.extend(steps),
                        Err(why) => problems.push(Problem::Firewall { why }),
                    }
                    // What an earlier backend still holds for this network.
                    let other = match backend {
                        Backend::Iptables => Backend::Nftables,
                        Backend::Nftables => Backend::Iptables,
                    };
                    plan.steps
                        .extend(firewall::driver(other).plan_remove(Owner::Network(&net.name), fw));
                }
            },
        }
    }
    if problems.is_empty() {
        Ok(plan)
    } else {
        Err(problems)
    }
}

/// The link half of [`plan_up`]: VLANs, their addresses and bridge VIDs.
pub fn plan_links(
    net: &NetworkConfig,
    bridge: &str,
    obs: &Observed,
) -> Result<Vec<Step>, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut steps = Vec::new();
    let mark = owner_mark(&net.name);
    let Some(br) = obs.link_by_name(bridge) else {
        return Err(vec![Problem::BridgeMissing {
            bridge: bridge.to_string(),
        }]);
    };

    if br.vlan_filtering == Some(true) {
        let have = obs.bridge_vids.get(&br.index);
        for v in &net.vlans {
            if !have.is_some_and(|h| h.contains(&v.id)) {
                steps.push(Step::BridgeVidAdd {
                    bridge: bridge.to_string(),
                    vid: v.id,
                });
            }
        }
    }

    for vlan in &net.vlans {
        let name = vlan.ifname(bridge);
        if let Some(why) = ifname_problem(&name) {
            problems.push(Problem::NameInvalid {
                name,
                vid: vlan.id,
                why,
            });
            continue;
        }
        let existing = obs.link_by_name(&name);
        if let Some(p) = existing.and_then(|l| refuse_existing(l, br, vlan.id, &mark)) {
            problems.push(p);
            continue;
        }
        problems.extend(conflicts(vlan, existing, obs));
        match existing {
            None => steps.extend(create(vlan, &name, bridge, &mark)),
            Some(link) => steps.extend(adopt(vlan, &name, link, obs, &mark)),
        }
    }
    if problems.is_empty() {
        Ok(steps)
    } else {
        Err(problems)
    }
}

/// Addresses elsewhere that overlap the VLAN's: the phase-00 ordering trap.
fn conflicts(vlan: &VlanConfig, existing: Option<&Link>, obs: &Observed) -> Vec<Problem> {
    let own_index = existing.map(|l| l.index);
    let mut out = Vec::new();
    for addr in &vlan.addresses {
        for other in &obs.addrs {
            if Some(other.index) != own_index && !other.link_scope && overlaps(addr, &other.net) {
                out.push(Problem::Conflict {
                    addr: *addr,
                    holder: obs.name_of(other.index),
                    holder_addr: other.net,
                });
            }
        }
    }
    out
}

/// A new VLAN: created, marked, addressed, raised.
fn create(vlan: &VlanConfig, name: &str, bridge: &str, mark: &str) -> Vec<Step> {
    let mut steps = vec![
        Step::CreateVlan {
            name: name.into(),
            parent: bridge.into(),
            vid: vlan.id,
            mtu: vlan.mtu,
        },
        Step::SetAlias {
            name: name.into(),
            alias: Some(mark.into()),
            old: None,
        },
    ];
    steps.extend(vlan.addresses.iter().map(|a| Step::AddAddr {
        name: name.into(),
        addr: *a,
    }));
    steps.push(Step::SetUp { name: name.into() });
    steps
}

/// A VLAN with the right parent and VID is ours to reconcile, whoever
/// created it: mark, MTU, addresses and state brought to the config.
fn adopt(vlan: &VlanConfig, name: &str, link: &Link, obs: &Observed, mark: &str) -> Vec<Step> {
    let mut steps = Vec::new();
    if link.alias.as_deref() != Some(mark) {
        steps.push(Step::SetAlias {
            name: name.into(),
            alias: Some(mark.into()),
            old: link.alias.clone(),
        });
    }
    if let Some(mtu) = vlan.mtu.filter(|m| *m != link.mtu) {
        steps.push(Step::SetMtu {
            name: name.into(),
            mtu,
            old: link.mtu,
        });
    }
    let have: Vec<IpNet> = obs
        .addrs_of(link.index)
        .filter(|a| !a.link_scope)
        .map(|a| a.net)
        .collect();
    for addr in have.iter().filter(|a| !vlan.addresses.contains(a)) {
        steps.push(Step::DelAddr {
            name: name.into(),
            addr: *addr,
        });
    }
    for addr in vlan.addresses.iter().filter(|a| !have.contains(a)) {
        steps.push(Step::AddAddr {
            name: name.into(),
            addr: *addr,
        });
    }
    if !link.up {
        steps.push(Step::SetUp { name: name.into() });
    }
    steps
}

/// Why an existing interface of the target name cannot be adopted.
fn refuse_existing(link: &Link, bridge: &Link, vid: u16, mark: &str) -> Option<Problem> {
    if let Some(alias) = link.alias.as_deref()
        && alias.starts_with(crate::model::OWNER_PREFIX)
        && alias != mark
    {
        return Some(Problem::OwnedByOther {
            name: link.name.clone(),
            owner: alias.to_string(),
        });
    }
    let matches = link.kind == LinkKind::Vlan
        && link.vlan_id == Some(vid)
        && link.parent == Some(bridge.index);
    if matches {
        return None;
    }
    let what = match (&link.kind, link.parent) {
        (LinkKind::Vlan, Some(p)) if p != bridge.index => {
            format!("{} on another device (ifindex {p})", link.describe())
        }
        _ => link.describe(),
    };
    Some(Problem::Foreign {
        name: link.name.clone(),
        what,
        wanted: format!("VLAN {vid} on {}", bridge.name),
    })
}

/// What `stopped` must do: delete every interface marked for `network`,
/// take back the bridge VIDs a previous run added (when the bridge is still
/// there, as it is for forward mode 'bridge' networks), and remove the
/// network's exemptions from every backend that `obs` holds.
pub fn plan_down(network: &str, obs: &Observed, added_vids: &[(String, u16)]) -> Plan {
    let mark = owner_mark(network);
    let mut steps: Vec<Step> = obs
        .links
        .iter()
        .filter(|l| l.alias.as_deref() == Some(mark.as_str()))
        .map(|l| Step::DeleteLink {
            name: l.name.clone(),
        })
        .collect();
    for (bridge, vid) in added_vids {
        let present = obs
            .link_by_name(bridge)
            .and_then(|b| obs.bridge_vids.get(&b.index))
            .is_some_and(|v| v.contains(vid));
        if present {
            steps.push(Step::BridgeVidDel {
                bridge: bridge.clone(),
                vid: *vid,
            });
        }
    }
    if let Some(fw) = &obs.firewall {
        for b in [Backend::Iptables, Backend::Nftables] {
            steps.extend(firewall::driver(b).plan_remove(Owner::Network(network), fw));
        }
    }
    Plan {
        steps,
        ..Plan::default()
    }
}

/// Every exemption rule and table of net-hook's, whatever network they are
/// for (`teardown --all`, package removal).
pub fn plan_remove_all_firewall(obs: &Observed) -> Vec<Step> {
    let Some(fw) = &obs.firewall else {
        return vec![];
    };
    [Backend::Iptables, Backend::Nftables]
        .into_iter()
        .flat_map(|b| firewall::driver(b).plan_remove(Owner::All, fw))
        .collect()
}

/// What `start` checks for a strict network before libvirt creates
/// anything: the bridge does not exist yet, so every existing interface of
/// a target name and every overlapping address is foreign. Links only: the
/// firewall is judged in `started`.
pub fn preflight(net: &NetworkConfig, bridge: &str, obs: &Observed) -> Vec<Problem> {
    let mut obs = obs.clone();
    obs.assume_bridge(bridge);
    match plan_links(net, bridge, &obs) {
        Ok(_) => Vec::new(),
        Err(p) => p,
    }
}

#[cfg(test)]
mod tests;
