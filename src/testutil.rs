//! Fixtures for the unit tests: the runbook's `1_provider` network (bridge
//! virbr1, VLAN 104 with 10.12.8.1/22) as the config states it, as libvirt
//! reports it and as the kernel shows it.

use ipnet::IpNet;

use crate::commands::NetInfo;
use crate::config::{NetworkConfig, VlanConfig};
use crate::hookdata::HookNetwork;
use crate::model::{Addr, Link, LinkKind, Observed};

/// The interface alias net-hook puts on 1_provider's VLANs.
pub const MARK: &str = "net-hook:1_provider";

pub fn ip(s: &str) -> IpNet {
    s.parse().unwrap()
}

/// VLAN 104, the provider-vip gateway 10.12.8.1/22.
pub fn vip() -> VlanConfig {
    VlanConfig {
        id: 104,
        name: None,
        addresses: vec![ip("10.12.8.1/22")],
        mtu: None,
    }
}

/// A fail-soft `1_provider` with these VLANs.
pub fn net(vlans: Vec<VlanConfig>) -> NetworkConfig {
    NetworkConfig {
        name: "1_provider".into(),
        strict: false,
        unnat: None,
        firewalld_zone: None,
        vlans,
    }
}

/// The runbook's config: `1_provider` with [`vip`].
pub fn provider() -> NetworkConfig {
    net(vec![vip()])
}

/// `1_provider` as libvirt reports it: persistent, on virbr1.
pub fn info(active: bool, autostart: bool, forward_mode: Option<&str>) -> NetInfo {
    NetInfo {
        net: HookNetwork {
            name: "1_provider".into(),
            bridge: Some("virbr1".into()),
            forward_mode: forward_mode.map(Into::into),
            subnets: vec![],
            nat_ipv6: false,
        },
        active,
        persistent: true,
        autostart,
        metadata: None,
    }
}

pub fn link(index: u32, name: &str, kind: &str) -> Link {
    Link {
        index,
        name: name.into(),
        kind: match kind {
            "bridge" => LinkKind::Bridge,
            "vlan" => LinkKind::Vlan,
            other => LinkKind::Other(other.into()),
        },
        mtu: 1500,
        up: true,
        ..Link::default()
    }
}

/// virbr1 (index 5), up, vlan_filtering=0.
pub fn bridge() -> Link {
    Link {
        vlan_filtering: Some(false),
        ..link(5, "virbr1", "bridge")
    }
}

pub fn vlan_link(index: u32, name: &str, parent: u32, vid: u16, alias: Option<&str>) -> Link {
    Link {
        vlan_id: Some(vid),
        parent: Some(parent),
        alias: alias.map(Into::into),
        ..link(index, name, "vlan")
    }
}

pub fn addr(index: u32, s: &str) -> Addr {
    Addr {
        index,
        net: ip(s),
        link_scope: false,
        noprefixroute: false,
    }
}

pub fn obs(links: Vec<Link>, addrs: Vec<Addr>) -> Observed {
    Observed {
        links,
        addrs,
        ..Observed::default()
    }
}
