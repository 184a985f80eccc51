//! What the planner sees of the host: links and addresses (netlink), the
//! firewall and firewalld's zones. Plain data, read once per run, so plans
//! can be unit-tested without a kernel.

use std::collections::BTreeMap;
use std::net::IpAddr;

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
    /// `IFLA_ADDRESS`, for Ethernet-like links.
    pub mac: Option<Mac>,
    /// `IFLA_CARRIER`: for a tap, whether a process (QEMU) has it open.
    pub carrier: Option<bool>,
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
    /// `IFA_F_NOPREFIXROUTE`: the address made no connected route.
    pub noprefixroute: bool,
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
    /// Routes, read only when a plan involves routed interfaces.
    pub routes: Vec<Route>,
    pub neighs: Vec<Neigh>,
    /// sysctl values by path under /proc/sys (`net/ipv4/conf/all/rp_filter`),
    /// read only for the keys a plan judges; a key that cannot be read is absent.
    pub sysctls: BTreeMap<String, String>,
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

/// An Ethernet address; shown and written as `52:54:00:1e:10:0a`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    /// A unicast address that is not all zeros: one a device can have.
    pub fn is_usable(&self) -> bool {
        self.0[0] & 1 == 0 && self.0 != [0; 6]
    }

    /// What libvirt gives the host side of a guest's tap: the guest's MAC
    /// with its first byte changed to `fe` (so the two never clash).
    pub fn tap_side(&self) -> Mac {
        let mut m = self.0;
        m[0] = 0xfe;
        Mac(m)
    }

    /// `52:54:00` and three bytes of a stable hash of `seed` and `name`:
    /// the same on every boot of one host, different between hosts.
    pub fn derived(seed: &[u8], name: &str) -> Mac {
        // FNV-1a: fixed, unlike std's hasher, whose output may change.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in seed.iter().chain([0u8].iter()).chain(name.as_bytes()) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        let b = h.to_be_bytes();
        Mac([0x52, 0x54, 0x00, b[5] ^ b[2], b[6] ^ b[1], b[7] ^ b[0]])
    }
}

impl std::fmt::Display for Mac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

impl std::str::FromStr for Mac {
    type Err = ();
    fn from_str(s: &str) -> Result<Mac, ()> {
        let mut out = [0u8; 6];
        let mut parts = s.split(':');
        for b in out.iter_mut() {
            let p = parts.next().ok_or(())?;
            if p.len() != 2 {
                return Err(());
            }
            *b = u8::from_str_radix(p, 16).map_err(|_| ())?;
        }
        if parts.next().is_some() {
            return Err(());
        }
        Ok(Mac(out))
    }
}

impl serde::Serialize for Mac {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Mac {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Mac, D::Error> {
        let s = String::deserialize(d)?;
        s.parse()
            .map_err(|_| serde::de::Error::custom(format!("{s:?} is not a MAC address")))
    }
}

/// A route as net-hook reads it: only what routed interfaces judge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub dst: IpNet,
    /// The output device's index, when the route has one.
    pub oif: Option<u32>,
    pub protocol: u8,
    pub table: u32,
    /// `RTA_PRIORITY`: routes to one prefix coexist when it differs.
    pub metric: u32,
}

/// A neighbour (ARP/NDP) entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neigh {
    pub index: u32,
    pub addr: IpAddr,
    pub mac: Option<Mac>,
    pub permanent: bool,
}
