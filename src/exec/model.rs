//! A model of the host for unit tests: it carries out every kind of step
//! on an [`Observed`] as the kernel and the firewall tools would, and fails
//! the calls it is told to, so tests can compare the host before and after.

use super::{Host, HostError, Scope};
use crate::firewall::{self, Family, NFT_TABLE, nftables};
use crate::model::{Addr, Link, LinkKind, Mac, Neigh, Observed, Route, owner_mark};
use crate::netlink;
use crate::plan::Step;

/// How an injected failure looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The kernel refuses (netlink).
    Errno(i32),
    /// The answer is lost after the kernel carried the step out.
    Lost,
    /// The request is lost before the kernel saw it.
    LostUnsent,
    /// The firewall program exits non-zero.
    Exit(i32),
    /// The firewall program cannot be started.
    Spawn,
}

pub struct Model {
    pub obs: Observed,
    /// Every step run, undo steps included.
    pub ran: Vec<Step>,
    /// Fail the call with this 0-based number...
    pub fail_at: Option<usize>,
    /// ...and every call after it (a rollback that fails too).
    pub fail_after: bool,
    pub fault: Fault,
}

impl Model {
    pub fn new(obs: Observed) -> Model {
        Model {
            obs,
            ran: vec![],
            fail_at: None,
            fail_after: false,
            fault: Fault::Errno(libc::EPERM),
        }
    }

    fn injected(&self, step: &Step) -> HostError {
        let what = step.to_string();
        match self.fault {
            Fault::Errno(errno) => netlink::Error {
                op: netlink::Op::Change,
                what,
                errno: Some(errno),
                lost: false,
            }
            .into(),
            Fault::Lost | Fault::LostUnsent => netlink::Error {
                op: netlink::Op::Change,
                what,
                errno: None,
                lost: true,
            }
            .into(),
            Fault::Exit(code) => firewall::Error::Failed {
                program: "iptables".into(),
                what,
                code,
                stderr: "injected".into(),
            }
            .into(),
            Fault::Spawn => firewall::Error::Spawn {
                program: "nft".into(),
                what,
                source: std::io::Error::from_raw_os_error(libc::ENOMEM),
            }
            .into(),
        }
    }

    fn link_mut(&mut self, name: &str) -> Result<&mut Link, HostError> {
        self.obs
            .links
            .iter_mut()
            .find(|l| l.name == name)
            .ok_or_else(|| errno(name, libc::ENODEV))
    }

    fn index(&self, name: &str) -> Result<u32, HostError> {
        self.obs
            .link_by_name(name)
            .map(|l| l.index)
            .ok_or_else(|| errno(name, libc::ENODEV))
    }

    fn apply(&mut self, step: &Step) -> Result<(), HostError> {
        use Step::*;
        match step {
            CreateVlan {
                name,
                parent,
                vid,
                mtu,
            } => {
                if self.obs.link_by_name(name).is_some() {
                    return Err(errno(name, libc::EEXIST));
                }
                let p = self.index(parent)?;
                let pmtu = self.obs.link_by_index(p).map(|l| l.mtu).unwrap_or(1500);
                let index = self.obs.links.iter().map(|l| l.index).max().unwrap_or(0) + 1;
                self.obs.links.push(Link {
                    index,
                    name: name.clone(),
                    kind: LinkKind::Vlan,
                    vlan_id: Some(*vid),
                    parent: Some(p),
                    mtu: mtu.unwrap_or(pmtu),
                    ..Link::default()
                });
            }
            SetAlias { name, alias, .. } => self.link_mut(name)?.alias = alias.clone(),
            SetMtu { name, mtu, .. } => self.link_mut(name)?.mtu = *mtu,
            SetUp { name } => self.link_mut(name)?.up = true,
            SetDown { name } => self.link_mut(name)?.up = false,
            AddAddr { name, addr } | AddGatewayAddr { name, addr } => {
                let index = self.index(name)?;
                if self
                    .obs
                    .addrs
                    .iter()
                    .any(|a| a.index == index && a.net == *addr)
                {
                    return Err(errno(name, libc::EEXIST));
                }
                self.obs.addrs.push(Addr {
                    index,
                    net: *addr,
                    link_scope: false,
                    noprefixroute: matches!(step, AddGatewayAddr { .. }),
                });
            }
            DelAddr { name, addr } | DelGatewayAddr { name, addr } => {
                let index = self.index(name)?;
                self.obs
                    .addrs
                    .retain(|a| !(a.index == index && a.net == *addr));
            }
            DeleteLink { name } => {
                if let Ok(index) = self.index(name) {
                    self.obs.links.retain(|l| l.index != index);
                    self.obs.addrs.retain(|a| a.index != index);
                    self.obs.routes.retain(|r| r.oif != Some(index));
                    self.obs.neighs.retain(|n| n.index != index);
                    self.obs
                        .sysctls
                        .retain(|k, _| crate::plan::sysctl_dev(k) != Some(name.as_str()));
                }
            }
            BridgeVidAdd { bridge, vid } => {
                let i = self.index(bridge)?;
                let v = self.obs.bridge_vids.entry(i).or_default();
                if !v.contains(vid) {
                    v.push(*vid);
                }
            }
            BridgeVidDel { bridge, vid } => {
                let i = self.index(bridge)?;
                if let Some(v) = self.obs.bridge_vids.get_mut(&i) {
                    v.retain(|x| x != vid);
                }
            }
            IptInsert { family, pos, spec } => {
                let chain = self.ipt(*family)?;
                let at = (*pos as usize).saturating_sub(1);
                if at > chain.len() {
                    return Err(exit("iptables: Index of insertion too big"));
                }
                chain.insert(at, spec.clone());
            }
            IptDelete { family, spec, .. } => {
                let chain = self.ipt(*family)?;
                let Some(i) = chain.iter().position(|r| r == spec) else {
                    return Err(exit(
                        "iptables: Bad rule (does a matching rule exist in that chain?)",
                    ));
                };
                chain.remove(i);
            }
            NftAddTable { family } => {
                let nft = self.nft()?;
                if !nft.has_table(*family, NFT_TABLE) {
                    nft.tables.push((family.nft().into(), NFT_TABLE.into()));
                }
            }
            NftDeleteTable { family } => {
                let nft = self.nft()?;
                if !nft.has_table(*family, NFT_TABLE) {
                    return Err(exit("Error: No such file or directory"));
                }
                let f = family.nft();
                nft.tables.retain(|(tf, t)| !(tf == f && t == NFT_TABLE));
                nft.chains.retain(|(cf, t, _)| !(cf == f && t == NFT_TABLE));
                nft.rules
                    .retain(|r| !(r.family == f && r.table == NFT_TABLE));
            }
            NftSetChain {
                family,
                chain,
                network,
                rules,
                ..
            } => {
                let nft = self.nft()?;
                let f = family.nft().to_string();
                if !nft.has_table(*family, NFT_TABLE) {
                    nft.tables.push((f.clone(), NFT_TABLE.into()));
                }
                let key = (f.clone(), NFT_TABLE.to_string(), chain.clone());
                if !nft.chains.contains(&key) {
                    nft.chains.push(key);
                }
                nft.rules
                    .retain(|r| !(r.family == f && r.table == NFT_TABLE && &r.chain == chain));
                for e in rules {
                    nft.rules.push(nftables::Rule {
                        family: f.clone(),
                        table: NFT_TABLE.into(),
                        chain: chain.clone(),
                        saddr: Some(e.src),
                        daddr: Some(e.dst),
                        snat: true,
                        comment: Some(owner_mark(network)),
                    });
                }
            }
            NftDeleteChain { family, chain, .. } => {
                let nft = self.nft()?;
                let f = family.nft().to_string();
                let key = (f.clone(), NFT_TABLE.to_string(), chain.clone());
                if !nft.chains.contains(&key) {
                    return Err(exit("Error: No such file or directory"));
                }
                nft.chains.retain(|c| c != &key);
                nft.rules
                    .retain(|r| !(r.family == f && r.table == NFT_TABLE && &r.chain == chain));
            }
            ZoneSet { name, zone, .. } => {
                self.zones()?.of.insert(name.clone(), Some(zone.clone()));
            }
            ZoneRemove { name, zone } => {
                let zones = self.zones()?;
                if zones.of.get(name).cloned().flatten().as_deref() != Some(zone.as_str()) {
                    return Err(exit("Error: NOT_ENABLED"));
                }
                zones.of.insert(name.clone(), None);
            }
            CreateDummy { name, mac }
            | CreateTap {
                name,
                mac: Some(mac),
                ..
            } => self.new_link(name, step, Some(*mac))?,
            CreateTap {
                name, mac: None, ..
            } => self.new_link(name, step, None)?,
            AddRoute {
                dst,
                dev,
                protocol,
                table,
            } => {
                let oif = self.index(dev)?;
                if self
                    .obs
                    .routes
                    .iter()
                    .any(|r| r.dst == *dst && r.table == *table)
                {
                    return Err(errno(dev, libc::EEXIST));
                }
                self.obs.routes.push(Route {
                    dst: *dst,
                    oif: Some(oif),
                    protocol: *protocol,
                    table: *table,
                    metric: 0,
                });
            }
            DelRoute {
                dst, dev, table, ..
            } => {
                if let Ok(oif) = self.index(dev) {
                    self.obs
                        .routes
                        .retain(|r| !(r.dst == *dst && r.oif == Some(oif) && r.table == *table));
                }
            }
            AddNeigh { dev, addr, mac } => {
                let index = self.index(dev)?;
                self.obs
                    .neighs
                    .retain(|n| !(n.index == index && n.addr == *addr));
                self.obs.neighs.push(Neigh {
                    index,
                    addr: *addr,
                    mac: Some(*mac),
                    permanent: true,
                });
            }
            DelNeigh { dev, addr, .. } => {
                if let Ok(index) = self.index(dev) {
                    self.obs
                        .neighs
                        .retain(|n| !(n.index == index && n.addr == *addr));
                }
            }
            SetSysctl { key, value, .. } => {
                if let Some(dev) = crate::plan::sysctl_dev(key) {
                    self.index(dev)?;
                }
                self.obs.sysctls.insert(key.clone(), value.clone());
            }
        }
        Ok(())
    }

    fn new_link(&mut self, name: &str, step: &Step, mac: Option<Mac>) -> Result<(), HostError> {
        if self.obs.link_by_name(name).is_some() {
            return Err(errno(name, libc::EEXIST));
        }
        let index = self.obs.links.iter().map(|l| l.index).max().unwrap_or(0) + 1;
        let kind = match step {
            Step::CreateDummy { .. } => "dummy",
            _ => "tun",
        };
        self.obs.links.push(Link {
            index,
            name: name.to_string(),
            kind: LinkKind::Other(kind.into()),
            mtu: 1500,
            mac,
            ..Link::default()
        });
        Ok(())
    }

    fn ipt(&mut self, fam: Family) -> Result<&mut Vec<Vec<String>>, HostError> {
        let fw = self
            .obs
            .firewall
            .as_mut()
            .ok_or_else(|| exit("no firewall"))?;
        let chain = match fam {
            Family::Ip => fw.iptables.as_mut(),
            Family::Ip6 => fw.ip6tables.as_mut(),
        };
        chain.ok_or_else(|| exit("iptables: no nat table"))
    }

    fn nft(&mut self) -> Result<&mut nftables::Ruleset, HostError> {
        self.obs
            .firewall
            .as_mut()
            .and_then(|f| f.nft.as_mut())
            .ok_or_else(|| exit("nft: not installed"))
    }

    fn zones(&mut self) -> Result<&mut firewall::firewalld::Zones, HostError> {
        self.obs
            .zones
            .as_mut()
            .ok_or_else(|| exit("firewalld is not running"))
    }
}

fn errno(name: &str, e: i32) -> HostError {
    netlink::Error {
        op: netlink::Op::Change,
        what: name.into(),
        errno: Some(e),
        lost: false,
    }
    .into()
}

fn exit(msg: &str) -> HostError {
    firewall::Error::Failed {
        program: "model".into(),
        what: "step".into(),
        code: 1,
        stderr: msg.into(),
    }
    .into()
}

impl Host for Model {
    fn observe(&mut self, _scope: &Scope) -> Result<Observed, HostError> {
        Ok(self.obs.clone())
    }

    fn run(&mut self, step: &Step) -> Result<(), HostError> {
        let n = self.ran.len();
        self.ran.push(step.clone());
        let failing = self
            .fail_at
            .is_some_and(|f| n == f || (self.fail_after && n > f));
        if failing {
            if self.fault == Fault::Lost {
                // The worst case: the kernel did it, the answer was lost.
                let _ = self.apply(step);
            }
            return Err(self.injected(step));
        }
        self.apply(step)
    }
}
