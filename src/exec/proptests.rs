//! The planner's invariants on generated configs and hosts, carried out on
//! the host model: applying a plan makes the host satisfy the config,
//! planning again gives nothing to do, teardown leaves nothing owned, and a
//! failure at any step leaves the host exactly as it was.

use proptest::prelude::*;

use super::model::{Fault, Model};
use super::*;
use crate::config::{BackendChoice, NetworkConfig, Unnat, VlanConfig};
use crate::firewall::firewalld::Zones;
use crate::firewall::{DetectInputs, FirewallView, nftables};
use crate::hookdata::HookNetwork;
use crate::model::{Addr, Link, LinkKind, owner_mark};
use crate::plan::{plan_down, plan_up};
use crate::testutil::{ip, net};

const NETWORK: &str = "1_provider";
const BRIDGE: u32 = 5;

/// What a configured VLAN finds on the host before the run.
#[derive(Debug, Clone)]
enum Before {
    Absent,
    /// A VLAN of the right parent and VID: adoptable.
    Vlan {
        alias: Option<&'static str>,
        up: bool,
        mtu: u32,
        /// Which configured addresses it has already, and a stale one.
        have: Vec<bool>,
        stale: bool,
    },
    /// Something else of that name: the plan is refused.
    Foreign,
}

#[derive(Debug, Clone)]
struct Case {
    vlans: Vec<(u16, bool, bool, Option<u32>)>, // id, own name, IPv6 too, mtu
    before: Vec<Before>,
    filtering: bool,
    /// VIDs already on the bridge (indexes into `vlans`).
    vids: Vec<bool>,
    /// Another interface holds the first VLAN's address.
    conflict: bool,
    unnat: Option<(bool, bool)>, // (nftables, a stale rule)
    zones: Option<Vec<Option<&'static str>>>,
}

fn case() -> impl Strategy<Value = Case> {
    let vlan = (
        100u16..=103,
        any::<bool>(),
        any::<bool>(),
        prop::option::of(prop::sample::select(vec![1400u32, 1500, 9000])),
    );
    prop::collection::vec(vlan, 1..=3)
        .prop_map(|mut v| {
            v.sort_by_key(|x| x.0);
            v.dedup_by_key(|x| x.0);
            v
        })
        .prop_flat_map(|vlans| {
            let n = vlans.len();
            let before = prop_oneof![
                3 => Just(Before::Absent),
                3 => (
                    prop::sample::select(vec![None, Some("net-hook:1_provider"), Some("kept by hand")]),
                    any::<bool>(),
                    prop::sample::select(vec![1400u32, 1500]),
                    prop::collection::vec(any::<bool>(), 2),
                    any::<bool>(),
                )
                    .prop_map(|(alias, up, mtu, have, stale)| Before::Vlan { alias, up, mtu, have, stale }),
                1 => Just(Before::Foreign),
            ];
            (
                Just(vlans),
                prop::collection::vec(before, n),
                any::<bool>(),
                prop::collection::vec(any::<bool>(), n),
                prop::bool::weighted(0.15),
                prop::option::of((any::<bool>(), any::<bool>())),
                prop::option::of(prop::collection::vec(
                    prop::sample::select(vec![None, Some("public"), Some("libvirt")]),
                    n,
                )),
            )
        })
        .prop_map(|(vlans, before, filtering, vids, conflict, unnat, zones)| Case {
            vlans,
            before,
            filtering,
            vids,
            conflict,
            unnat,
            zones,
        })
}

fn v4(id: u16) -> ipnet::IpNet {
    ip(&format!("10.50.{id}.1/24"))
}
fn v6(id: u16) -> ipnet::IpNet {
    ip(&format!("fd00:50:{id}::1/64"))
}

fn ifname(c: &Case, i: usize) -> String {
    let (id, own, ..) = c.vlans[i];
    if own {
        format!("v{id}")
    } else {
        format!("virbr1.{id}")
    }
}

fn config(c: &Case) -> NetworkConfig {
    let vlans = c
        .vlans
        .iter()
        .enumerate()
        .map(|(i, &(id, own, six, mtu))| VlanConfig {
            id,
            name: own.then(|| ifname(c, i)),
            addresses: if six {
                vec![v4(id), v6(id)]
            } else {
                vec![v4(id)]
            },
            mtu,
        })
        .collect();
    NetworkConfig {
        unnat: c.unnat.map(|_| Unnat {
            destinations: vec![ip("10.50.0.0/16")],
            sources: None,
            backend: BackendChoice::Auto,
        }),
        ..net(vlans)
    }
}

fn hook_network() -> HookNetwork {
    HookNetwork {
        name: NETWORK.into(),
        bridge: Some("virbr1".into()),
        forward_mode: Some("nat".into()),
        subnets: vec![ip("10.12.4.0/22")],
        nat_ipv6: false,
    }
}

fn host(c: &Case) -> Observed {
    let mut obs = crate::testutil::obs(
        vec![Link {
            vlan_filtering: Some(c.filtering),
            ..crate::testutil::bridge()
        }],
        vec![Addr {
            index: BRIDGE,
            net: ip("10.12.4.1/22"),
            link_scope: false,
            noprefixroute: false,
        }],
    );
    if c.filtering {
        let mut vids = vec![1];
        vids.extend(
            c.vlans
                .iter()
                .zip(&c.vids)
                .filter(|(_, on)| **on)
                .map(|(v, _)| v.0),
        );
        obs.bridge_vids.insert(BRIDGE, vids);
    }
    let mut index = 10;
    for (i, b) in c.before.iter().enumerate() {
        let (id, _, six, _) = c.vlans[i];
        index += 1;
        let name = ifname(c, i);
        match b {
            Before::Absent => {}
            Before::Foreign => obs.links.push(crate::testutil::link(index, &name, "veth")),
            Before::Vlan {
                alias,
                up,
                mtu,
                have,
                stale,
            } => {
                obs.links.push(Link {
                    kind: LinkKind::Vlan,
                    vlan_id: Some(id),
                    parent: Some(BRIDGE),
                    alias: alias.map(String::from),
                    up: *up,
                    mtu: *mtu,
                    ..crate::testutil::link(index, &name, "vlan")
                });
                let mut addrs = vec![];
                if have[0] {
                    addrs.push(v4(id));
                }
                if have[1] && six {
                    addrs.push(v6(id));
                }
                if *stale {
                    addrs.push(ip(&format!("10.77.{id}.5/24")));
                }
                obs.addrs.extend(addrs.into_iter().map(|net| Addr {
                    index,
                    net,
                    link_scope: false,
                    noprefixroute: false,
                }));
            }
        }
    }
    if c.conflict {
        obs.links
            .push(crate::testutil::link(40, "virbr2", "bridge"));
        obs.addrs.push(Addr {
            index: 40,
            net: v4(c.vlans[0].0),
            link_scope: false,
            noprefixroute: false,
        });
    }
    if let Some((nft, stale)) = c.unnat {
        let words = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        let mut chain = vec![words("-j LIBVIRT_PRT")];
        if stale {
            chain.insert(
                0,
                words("-s 10.12.4.0/22 -d 10.99.0.0/16 -m comment --comment net-hook:1_provider -j RETURN"),
            );
        }
        obs.firewall = Some(FirewallView {
            inputs: DetectInputs {
                network_conf: nft.then(|| "firewall_backend = \"nftables\"\n".to_string()),
                libvirt_iptables: true,
                libvirt_nftables: false,
            },
            iptables: Some(chain),
            ip6tables: Some(vec![words("-j LIBVIRT_PRT")]),
            nft: Some(nftables::Ruleset::default()),
        });
    }
    if let Some(z) = &c.zones {
        obs.zones = Some(Zones {
            of: (0..c.vlans.len())
                .map(|i| (ifname(c, i), z[i].map(String::from)))
                .collect(),
        });
    }
    obs
}

/// The host carries out `net` exactly, as `plan_up` means it.
fn satisfies(obs: &Observed, net: &NetworkConfig) -> Result<(), TestCaseError> {
    let mark = owner_mark(NETWORK);
    for vlan in &net.vlans {
        let name = vlan.ifname("virbr1");
        let l = obs.link_by_name(&name);
        prop_assert!(l.is_some(), "{name} missing");
        let l = l.unwrap();
        prop_assert_eq!(&l.kind, &LinkKind::Vlan);
        prop_assert_eq!((l.vlan_id, l.parent), (Some(vlan.id), Some(BRIDGE)));
        prop_assert_eq!(l.alias.as_deref(), Some(mark.as_str()));
        prop_assert!(l.up, "{} down", name);
        if let Some(m) = vlan.mtu {
            prop_assert_eq!(l.mtu, m);
        }
        let mut have: Vec<_> = obs.addrs_of(l.index).map(|a| a.net).collect();
        let mut want = vlan.addresses.clone();
        have.sort();
        want.sort();
        prop_assert_eq!(have, want, "addresses of {}", name);
        if obs.link_by_index(BRIDGE).and_then(|b| b.vlan_filtering) == Some(true) {
            prop_assert!(obs.bridge_vids[&BRIDGE].contains(&vlan.id));
        }
        if let Some(z) = &obs.zones {
            let zone = z.of.get(&name).cloned().flatten();
            prop_assert_eq!(zone.as_deref(), Some(net.zone()));
        }
    }
    Ok(())
}

/// The host with its lists in a fixed order: the kernel lists a
/// re-added address last, which is not a difference.
fn norm(obs: &Observed) -> Observed {
    let mut o = obs.clone();
    o.links.sort_by_key(|l| l.index);
    o.addrs.sort_by_key(|a| (a.index, a.net));
    for v in o.bridge_vids.values_mut() {
        v.sort();
    }
    o
}

fn vids_added(steps: &[Step]) -> Vec<(String, u16)> {
    steps
        .iter()
        .filter_map(|s| match s {
            Step::BridgeVidAdd { bridge, vid } => Some((bridge.clone(), *vid)),
            _ => None,
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn plans_converge_are_idempotent_tear_down_and_roll_back(c in case(), faults in prop::collection::vec(0usize..4, 1..40)) {
        let net = config(&c);
        let hn = hook_network();
        let before = host(&c);
        let plan = match plan_up(&net, "virbr1", &hn, &before) {
            Ok(p) => p,
            Err(problems) => {
                // Refused only for what the case planted.
                let planted = c.conflict || c.before.iter().any(|b| matches!(b, Before::Foreign));
                prop_assert!(planted && !problems.is_empty(), "{problems:?}");
                return Ok(());
            }
        };
        // A failure at any step, of any kind, leaves the host as it was.
        for (k, step) in plan.steps.iter().enumerate() {
            let fault = match (faults[k % faults.len()], step.driver()) {
                (0, _) => Fault::Errno(libc::EPERM),
                (1, Driver::Netlink) => Fault::Lost,
                (2, Driver::Netlink) => Fault::LostUnsent,
                (_, Driver::Netlink) => Fault::Errno(libc::EBUSY),
                (1, _) => Fault::Exit(4),
                _ => Fault::Spawn,
            };
            let mut m = Model::new(before.clone());
            m.fail_at = Some(k);
            m.fault = fault;
            let err = apply(&mut m, &plan.steps, |_| {}).unwrap_err();
            prop_assert_eq!(norm(&m.obs), norm(&before), "step {} ({}), {:?}: {}", k, step, fault, err);
        }
        // Applied, the host is as configured, and a second plan is empty.
        let mut m = Model::new(before.clone());
        apply(&mut m, &plan.steps, |_| {}).map_err(|e| TestCaseError::fail(e.to_string()))?;
        satisfies(&m.obs, &net)?;
        let again = plan_up(&net, "virbr1", &hn, &m.obs).map_err(|p| TestCaseError::fail(format!("{p:?}")))?;
        prop_assert!(again.steps.is_empty(), "not idempotent: {:?}", again.steps);
        // Torn down, nothing is owned, the bridge's VIDs are as before, and
        // no exemption is left on either backend.
        let down = plan_down(NETWORK, &m.obs, &vids_added(&plan.steps));
        teardown(&mut m, &down.steps, |_| {}).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(m.obs.owners().is_empty(), "{:?}", m.obs.owners());
        prop_assert_eq!(m.obs.bridge_vids.get(&BRIDGE), before.bridge_vids.get(&BRIDGE));
        if let Some(fw) = &m.obs.firewall {
            let marked = fw.iptables.iter().chain(&fw.ip6tables).flatten().any(|r| r.join(" ").contains("net-hook:"));
            prop_assert!(!marked, "{fw:?}");
            let nft = fw.nft.as_ref().unwrap();
            prop_assert!(nft.rules.is_empty() && nft.chains.is_empty(), "{nft:?}");
        }
        // Foreign state survives: the bridge, its address, the conflict holder.
        prop_assert!(m.obs.link_by_index(BRIDGE).is_some());
        prop_assert!(m.obs.addrs_of(BRIDGE).any(|a| a.net == ip("10.12.4.1/22")));
    }
}
