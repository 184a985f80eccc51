//! One change to the host, of any kind: links and addresses (netlink),
//! un-NAT rules (iptables, nftables) and firewalld zones. Every step has an
//! inverse, so one journal can roll back a run whatever it touched.

use std::fmt;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use std::net::IpAddr;

use crate::firewall::{Exemption, Family};
use crate::model::Mac;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    CreateVlan {
        name: String,
        parent: String,
        vid: u16,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mtu: Option<u32>,
    },
    /// `alias: None` clears the alias.
    SetAlias {
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        alias: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
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
    /// `iptables -t nat -I POSTROUTING pos SPEC` (ip6tables for `ip6`).
    IptInsert {
        family: Family,
        pos: u32,
        spec: Vec<String>,
    },
    /// `iptables -t nat -D POSTROUTING SPEC`; `pos` is where it was, so the
    /// undo puts it back there.
    IptDelete {
        family: Family,
        pos: u32,
        spec: Vec<String>,
    },
    /// `add table FAMILY net_hook`.
    NftAddTable {
        family: Family,
    },
    NftDeleteTable {
        family: Family,
    },
    /// One `nft -f` transaction: the network's chain holds exactly `rules`.
    NftSetChain {
        family: Family,
        chain: String,
        network: String,
        rules: Vec<Exemption>,
        /// The chain's rules before, `None` when it did not exist.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        old: Option<Vec<Exemption>>,
    },
    NftDeleteChain {
        family: Family,
        chain: String,
        network: String,
        old: Vec<Exemption>,
    },
    /// `firewall-cmd --zone=ZONE --change-interface=NAME` (runtime).
    ZoneSet {
        name: String,
        zone: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        old: Option<String>,
    },
    ZoneRemove {
        name: String,
        zone: String,
    },
    /// A routed interfaces' gateway device.
    CreateDummy {
        name: String,
        mac: Mac,
    },
    /// A persistent tap for a domain whose interface says `managed='no'`.
    CreateTap {
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mac: Option<Mac>,
        vnet_hdr: bool,
        multi_queue: bool,
    },
    /// An address with `noprefixroute`: no connected route for its prefix.
    AddGatewayAddr {
        name: String,
        addr: IpNet,
    },
    /// Removes a `noprefixroute` address (its undo keeps the flag).
    DelGatewayAddr {
        name: String,
        addr: IpNet,
    },
    /// `DST dev DEV proto PROTOCOL table TABLE scope link`.
    AddRoute {
        dst: IpNet,
        dev: String,
        protocol: u8,
        table: u32,
    },
    DelRoute {
        dst: IpNet,
        dev: String,
        protocol: u8,
        table: u32,
    },
    /// A permanent neighbour entry: `ADDR lladdr MAC dev DEV nud permanent`.
    AddNeigh {
        dev: String,
        addr: IpAddr,
        mac: Mac,
    },
    DelNeigh {
        dev: String,
        addr: IpAddr,
        mac: Mac,
    },
    /// Writes `value` to /proc/sys/KEY (`net/ipv4/conf/tap0/proxy_arp`).
    SetSysctl {
        key: String,
        value: String,
        old: String,
    },
}

/// The device of a per-device sysctl key (`net/ipv4/conf/DEV/...`).
pub fn sysctl_dev(key: &str) -> Option<&str> {
    let mut p = key.split('/');
    match (p.next(), p.next(), p.next(), p.next()) {
        (Some("net"), Some(_), Some("conf" | "neigh"), Some(dev))
            if dev != "all" && dev != "default" =>
        {
            Some(dev)
        }
        _ => None,
    }
}

/// `net/ipv4/conf/x/y` as sysctl(8) writes it (a dot in the device name
/// becomes a slash there, so this is for messages only).
fn sysctl_name(key: &str) -> String {
    key.replace('/', ".")
}

/// Who carries a step out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    Netlink,
    Iptables,
    Nftables,
    Firewalld,
    /// Writes under /proc/sys.
    Sysctl,
}

impl Step {
    /// The step that reverses this one; `None` for a deleted link, which
    /// cannot be brought back (only teardowns delete links, and they do not
    /// roll back).
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
            IptInsert { family, pos, spec } => IptDelete { family, pos, spec },
            IptDelete { family, pos, spec } => IptInsert { family, pos, spec },
            NftAddTable { family } => NftDeleteTable { family },
            NftDeleteTable { family } => NftAddTable { family },
            NftSetChain {
                family,
                chain,
                network,
                rules,
                old,
            } => match old {
                Some(old) => NftSetChain {
                    family,
                    chain,
                    network,
                    rules: old,
                    old: Some(rules),
                },
                None => NftDeleteChain {
                    family,
                    chain,
                    network,
                    old: rules,
                },
            },
            NftDeleteChain {
                family,
                chain,
                network,
                old,
            } => NftSetChain {
                family,
                chain,
                network,
                rules: old,
                old: None,
            },
            ZoneSet { name, zone, old } => match old {
                Some(old) => ZoneSet {
                    name,
                    zone: old,
                    old: Some(zone),
                },
                None => ZoneRemove { name, zone },
            },
            ZoneRemove { name, zone } => ZoneSet {
                name,
                zone,
                old: None,
            },
            CreateDummy { name, .. } | CreateTap { name, .. } => DeleteLink { name },
            AddGatewayAddr { name, addr } => DelGatewayAddr { name, addr },
            DelGatewayAddr { name, addr } => AddGatewayAddr { name, addr },
            AddRoute {
                dst,
                dev,
                protocol,
                table,
            } => DelRoute {
                dst,
                dev,
                protocol,
                table,
            },
            DelRoute {
                dst,
                dev,
                protocol,
                table,
            } => AddRoute {
                dst,
                dev,
                protocol,
                table,
            },
            AddNeigh { dev, addr, mac } => DelNeigh { dev, addr, mac },
            DelNeigh { dev, addr, mac } => AddNeigh { dev, addr, mac },
            // A value that could not be read cannot be put back.
            SetSysctl { old, .. } if old.is_empty() => return None,
            SetSysctl { key, value, old } => SetSysctl {
                key,
                value: old,
                old: value,
            },
        })
    }

    pub fn driver(&self) -> Driver {
        use Step::*;
        match self {
            IptInsert { .. } | IptDelete { .. } => Driver::Iptables,
            NftAddTable { .. }
            | NftDeleteTable { .. }
            | NftSetChain { .. }
            | NftDeleteChain { .. } => Driver::Nftables,
            ZoneSet { .. } | ZoneRemove { .. } => Driver::Firewalld,
            SetSysctl { .. } => Driver::Sysctl,
            _ => Driver::Netlink,
        }
    }

    /// The link whose attributes this step changes, when deleting that link
    /// would undo it as well (so a rollback that deletes a link it created
    /// can skip these). Firewalld keeps zone bindings by name, so zone steps
    /// are not among them.
    pub fn on_link(&self) -> Option<&str> {
        use Step::*;
        match self {
            SetAlias { name, .. }
            | AddAddr { name, .. }
            | DelAddr { name, .. }
            | SetMtu { name, .. }
            | SetUp { name }
            | SetDown { name }
            | AddGatewayAddr { name, .. }
            | DelGatewayAddr { name, .. } => Some(name),
            AddRoute { dev, .. }
            | DelRoute { dev, .. }
            | AddNeigh { dev, .. }
            | DelNeigh { dev, .. } => Some(dev),
            SetSysctl { key, .. } => sysctl_dev(key),
            _ => None,
        }
    }

    /// A VLAN this step creates.
    pub fn created_link(&self) -> Option<&str> {
        match self {
            Step::CreateVlan { name, .. }
            | Step::CreateDummy { name, .. }
            | Step::CreateTap { name, .. } => Some(name),
            _ => None,
        }
    }
}

/// `-s SRC -d DST` of an iptables spec, for messages.
fn ipt_pair(spec: &[String]) -> String {
    let at = |flag: &str| {
        spec.windows(2)
            .find(|p| p[0] == flag)
            .map(|p| p[1].as_str())
            .unwrap_or("any")
    };
    format!("{} -> {}", at("-s"), at("-d"))
}

fn list(exs: &[Exemption]) -> String {
    if exs.is_empty() {
        return "no rules".to_string();
    }
    exs.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
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
            IptInsert { family, pos, spec } => write!(
                f,
                "exempt {} from masquerade ({} nat POSTROUTING, rule {pos})",
                ipt_pair(spec),
                family.iptables()
            ),
            IptDelete { family, spec, .. } => write!(
                f,
                "remove the exemption {} ({} nat POSTROUTING)",
                ipt_pair(spec),
                family.iptables()
            ),
            NftAddTable { family } => write!(f, "add nftables table {family} net_hook"),
            NftDeleteTable { family } => write!(f, "delete nftables table {family} net_hook"),
            NftSetChain {
                family,
                chain,
                rules,
                old: None,
                ..
            } => write!(
                f,
                "exempt {} from masquerade (nftables {family} net_hook {chain})",
                list(rules)
            ),
            NftSetChain {
                family,
                chain,
                rules,
                old: Some(old),
                ..
            } => write!(
                f,
                "set the exemptions of nftables {family} net_hook {chain} to {} (was {})",
                list(rules),
                list(old)
            ),
            NftDeleteChain { family, chain, .. } => {
                write!(
                    f,
                    "remove the exemptions (nftables {family} net_hook {chain})"
                )
            }
            ZoneSet {
                name,
                zone,
                old: None,
            } => write!(f, "put {name} in firewalld zone {zone}"),
            ZoneSet {
                name,
                zone,
                old: Some(old),
            } => write!(f, "move {name} to firewalld zone {zone} (from {old})"),
            ZoneRemove { name, zone } => write!(f, "remove {name} from firewalld zone {zone}"),
            CreateDummy { name, mac } => {
                write!(f, "create gateway device {name} (dummy, mac {mac})")
            }
            CreateTap {
                name,
                mac,
                vnet_hdr,
                multi_queue,
            } => {
                write!(f, "create tap {name} (persistent")?;
                if *vnet_hdr {
                    write!(f, ", vnet_hdr")?;
                }
                if *multi_queue {
                    write!(f, ", multi_queue")?;
                }
                match mac {
                    Some(m) => write!(f, ", mac {m})"),
                    None => write!(f, ")"),
                }
            }
            AddGatewayAddr { name, addr } => write!(
                f,
                "add {addr} to {name} (noprefixroute: no route for {})",
                addr.trunc()
            ),
            DelGatewayAddr { name, addr } => write!(f, "remove {addr} from {name}"),
            AddRoute {
                dst,
                dev,
                protocol,
                table,
            } => write!(f, "route {dst} via {dev} (proto {protocol}, table {table})"),
            DelRoute {
                dst,
                dev,
                protocol,
                table,
            } => write!(
                f,
                "remove the route {dst} via {dev} (proto {protocol}, table {table})"
            ),
            AddNeigh { dev, addr, mac } => {
                write!(f, "add permanent neighbour {addr} lladdr {mac} on {dev}")
            }
            DelNeigh { dev, addr, .. } => write!(f, "remove the neighbour {addr} on {dev}"),
            SetSysctl { key, value, old } if old.is_empty() => {
                write!(f, "set {} = {value}", sysctl_name(key))
            }
            SetSysctl { key, value, old } => {
                write!(f, "set {} = {value} (was {old})", sysctl_name(key))
            }
        }
    }
}
