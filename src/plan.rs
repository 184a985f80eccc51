//! Deciding, without doing: from the config and what the host looks like,
//! the exact steps a hook run will take, or the problems that stop it.
//! Everything here is pure and unit-tested.

use std::fmt;

use ipnet::IpNet;

use crate::config::{NetworkConfig, ifname_problem};
use crate::model::{Link, Observed, overlaps, owner_mark};

/// One change to the host. Each has an inverse (see [`Step::undo`]) so a
/// failed run can be rolled back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    CreateVlan {
        name: String,
        parent: String,
        vid: u16,
        mtu: Option<u32>,
    },
    /// `alias: None` clears the alias.
    SetAlias {
        name: String,
        alias: Option<String>,
        old: Option<String>,
    },
    AddAddr {
        name: String,
        addr: IpNet,
    },
    DelAddr {
        name: String,
        addr: IpNet,
    },
    SetMtu {
        name: String,
        mtu: u32,
        old: u32,
    },
    SetUp {
        name: String,
    },
    SetDown {
        name: String,
    },
    DeleteLink {
        name: String,
    },
    BridgeVidAdd {
        bridge: String,
        vid: u16,
    },
    BridgeVidDel {
        bridge: String,
        vid: u16,
    },
}

impl Step {
    /// The step that reverses this one; `None` for a deletion, which cannot
    /// be undone (and is only used by teardown, which does not roll back).
    pub fn undo(&self) -> Option<Step> {
        use Step::*;
        Some(match self.clone() {
            CreateVlan { name, .. } => DeleteLink { name },
            SetAlias { name, alias, old } => SetAlias {
                name,
                alias: old,
                old: alias,
            },
            AddAddr { name, addr } => DelAddr { name, addr },
            DelAddr { name, addr } => AddAddr { name, addr },
            SetMtu { name, mtu, old } => SetMtu {
                name,
                mtu: old,
                old: mtu,
            },
            SetUp { name } => SetDown { name },
            SetDown { name } => SetUp { name },
            BridgeVidAdd { bridge, vid } => BridgeVidDel { bridge, vid },
            BridgeVidDel { bridge, vid } => BridgeVidAdd { bridge, vid },
            DeleteLink { .. } => return None,
        })
    }

    /// The interface this step changes.
    pub fn target(&self) -> &str {
        use Step::*;
        match self {
            CreateVlan { name, .. }
            | SetAlias { name, .. }
            | AddAddr { name, .. }
            | DelAddr { name, .. }
            | SetMtu { name, .. }
            | SetUp { name }
            | SetDown { name }
            | DeleteLink { name } => name,
            BridgeVidAdd { bridge, .. } | BridgeVidDel { bridge, .. } => bridge,
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Step::*;
        match self {
            CreateVlan {
                name,
                parent,
                vid,
                mtu,
            } => {
                write!(f, "create {name} (VLAN {vid} on {parent}")?;
                match mtu {
                    Some(m) => write!(f, ", mtu {m})"),
                    None => write!(f, ")"),
                }
            }
            SetAlias {
                name,
                alias: Some(a),
                ..
            } => write!(f, "mark {name} as {a:?}"),
            SetAlias {
                name, alias: None, ..
            } => write!(f, "clear the alias of {name}"),
            AddAddr { name, addr } => write!(f, "add {addr} to {name}"),
            DelAddr { name, addr } => write!(f, "remove {addr} from {name}"),
            SetMtu { name, mtu, old } => write!(f, "set mtu of {name} to {mtu} (was {old})"),
            SetUp { name } => write!(f, "bring {name} up"),
            SetDown { name } => write!(f, "bring {name} down"),
            DeleteLink { name } => write!(f, "delete {name}"),
            BridgeVidAdd { bridge, vid } => write!(
                f,
                "add VLAN {vid} to {bridge}'s own VLAN list (vlan_filtering=1)"
            ),
            BridgeVidDel { bridge, vid } => {
                write!(f, "remove VLAN {vid} from {bridge}'s own VLAN list")
            }
        }
    }
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
        }
    }
}

/// What `started` must do for `net` on `bridge`.
pub fn plan_up(
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
        // Addresses elsewhere that overlap ours: the phase-00 ordering trap.
        let own_index = existing.map(|l| l.index);
        for addr in &vlan.addresses {
            for other in &obs.addrs {
                if Some(other.index) != own_index && !other.link_scope && overlaps(addr, &other.net)
                {
                    problems.push(Problem::Conflict {
                        addr: *addr,
                        holder: obs.name_of(other.index),
                        holder_addr: other.net,
                    });
                }
            }
        }
        match existing {
            None => {
                steps.push(Step::CreateVlan {
                    name: name.clone(),
                    parent: bridge.to_string(),
                    vid: vlan.id,
                    mtu: vlan.mtu,
                });
                steps.push(Step::SetAlias {
                    name: name.clone(),
                    alias: Some(mark.clone()),
                    old: None,
                });
                for addr in &vlan.addresses {
                    steps.push(Step::AddAddr {
                        name: name.clone(),
                        addr: *addr,
                    });
                }
                steps.push(Step::SetUp { name });
            }
            Some(link) => {
                // Adopt: a VLAN with the right parent and VID is ours to
                // reconcile, whoever created it.
                if link.alias.as_deref() != Some(mark.as_str()) {
                    steps.push(Step::SetAlias {
                        name: name.clone(),
                        alias: Some(mark.clone()),
                        old: link.alias.clone(),
                    });
                }
                if let Some(mtu) = vlan.mtu.filter(|m| *m != link.mtu) {
                    steps.push(Step::SetMtu {
                        name: name.clone(),
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
                        name: name.clone(),
                        addr: *addr,
                    });
                }
                for addr in vlan.addresses.iter().filter(|a| !have.contains(a)) {
                    steps.push(Step::AddAddr {
                        name: name.clone(),
                        addr: *addr,
                    });
                }
                if !link.up {
                    steps.push(Step::SetUp { name });
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
    let matches = link.kind.as_deref() == Some("vlan")
        && link.vlan_id == Some(vid)
        && link.parent == Some(bridge.index);
    if matches {
        return None;
    }
    let what = match (link.kind.as_deref(), link.parent) {
        (Some("vlan"), Some(p)) if p != bridge.index => {
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

/// What `stopped` must do: delete every interface marked for `network`, and
/// take back the bridge VIDs a previous run added (when the bridge is still
/// there, as it is for forward mode 'bridge' networks).
pub fn plan_down(network: &str, obs: &Observed, added_vids: &[(String, u16)]) -> Vec<Step> {
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
    steps
}

/// What a dry run of `start` checks for a strict network before libvirt
/// creates anything: the bridge does not exist yet, so every existing
/// interface of a target name and every overlapping address is foreign.
pub fn preflight(net: &NetworkConfig, bridge: &str, obs: &Observed) -> Vec<Problem> {
    let mut obs = obs.clone();
    obs.assume_bridge(bridge);
    match plan_up(net, bridge, &obs) {
        Ok(_) => Vec::new(),
        Err(p) => p,
    }
}

#[cfg(test)]
mod tests;
