//! What the planner sees of the host: links and addresses (netlink), the
//! firewall and firewalld's zones. Plain data, read once per run, so plans
//! can be unit-tested without a kernel.

use std::collections::BTreeMap;

use ipnet::IpNet;

use crate::firewall::FirewallView;
use crate::firewall::firewalld::Zones;

pub const OWNER_PREFIX: &str = "net-hook:";

/// The interface alias that marks a link as created (or adopted) by
/// net-hook for `network`. It survives daemon restarts and needs no state.
pub fn owner_mark(network: &str) -> String {
    format!("{OWNER_PREFIX}{network}")
}

/// `IFLA_INFO_KIND`, as far as net-hook tells kinds apart.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum LinkKind {
    /// No kind: a physical device (or loopback).
    #[default]
    Physical,
    Bridge,
    Vlan,
    /// Any other kind ("veth", "dummy", "tun", ...), as the kernel names it.
    Other(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Link {
    pub index: u32,
    pub name: String,
    pub kind: LinkKind,
    /// For VLANs: the VLAN ID.
    pub vlan_id: Option<u16>,
    /// `IFLA_LINK`: the lower device of a VLAN.
    pub parent: Option<u32>,
    pub mtu: u32,
    pub up: bool,
    pub alias: Option<String>,
    /// For bridges: `vlan_filtering`.
    pub vlan_filtering: Option<bool>,
}

impl Link {
    pub fn describe(&self) -> String {
        match (&self.kind, self.vlan_id) {
            (LinkKind::Vlan, Some(vid)) => format!("VLAN {vid}"),
            (LinkKind::Vlan, None) => "a vlan device".to_string(),
            (LinkKind::Bridge, _) => "a bridge device".to_string(),
            (LinkKind::Other(k), _) => format!("a {k} device"),
            (LinkKind::Physical, _) => "a physical device".to_string(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addr {
    pub index: u32,
    /// The address with its prefix length, as `ip addr` shows it.
    pub net: IpNet,
    pub link_scope: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    pub links: Vec<Link>,
    pub addrs: Vec<Addr>,
    /// The bridge's own (`self`) VLAN list, read only for bridges with
    /// `vlan_filtering=1`.
    pub bridge_vids: BTreeMap<u32, Vec<u16>>,
    /// Read only when a plan involves the un-NAT exemption.
    pub firewall: Option<FirewallView>,
    /// firewalld's zones of the VLANs; `None` when firewalld does not run.
    pub zones: Option<Zones>,
}

impl Observed {
    pub fn link_by_name(&self, name: &str) -> Option<&Link> {
        self.links.iter().find(|l| l.name == name)
    }

    pub fn link_by_index(&self, index: u32) -> Option<&Link> {
        self.links.iter().find(|l| l.index == index)
    }

    pub fn name_of(&self, index: u32) -> String {
        self.link_by_index(index)
            .map(|l| l.name.clone())
            .unwrap_or_else(|| format!("ifindex {index}"))
    }

    /// Adds a stand-in for a bridge libvirt has not created yet (dry runs,
    /// the `start` preflight); returns false when the bridge exists.
    pub fn assume_bridge(&mut self, bridge: &str) -> bool {
        if self.link_by_name(bridge).is_some() {
            return false;
        }
        let index = self.links.iter().map(|l| l.index).max().unwrap_or(0) + 1;
        self.links.push(Link {
            index,
            name: bridge.to_string(),
            kind: LinkKind::Bridge,
            mtu: 1500,
            up: true,
            ..Link::default()
        });
        true
    }

    /// The networks that have links marked as theirs, sorted, once each.
    pub fn owners(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .links
            .iter()
            .filter_map(|l| {
                l.alias
                    .as_deref()?
                    .strip_prefix(OWNER_PREFIX)
                    .map(str::to_string)
            })
            .collect();
        names.sort();
        names.dedup();
        names
    }

    pub fn addrs_of(&self, index: u32) -> impl Iterator<Item = &Addr> {
        self.addrs.iter().filter(move |a| a.index == index)
    }
}

/// Whether two prefixes share any address.
pub fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    let (a, b) = (a.trunc(), b.trunc());
    a.contains(&b.network()) || b.contains(&a.network())
}
