use super::*;
use crate::config::VlanConfig;
use crate::model::Addr;
use crate::testutil::{MARK, addr, bridge, ip, link, net, obs, vip, vlan_link};

fn n(s: &str) -> String {
    s.to_string()
}

#[test]
fn fresh_bridge_creates_marks_addresses_and_raises() {
    let o = obs(vec![bridge()], vec![addr(5, "10.12.4.1/22")]);
    let steps = plan_links(&net(vec![vip()]), "virbr1", &o).unwrap();
    assert_eq!(
        steps,
        vec![
            Step::CreateVlan {
                name: n("virbr1.104"),
                parent: n("virbr1"),
                vid: 104,
                mtu: None
            },
            Step::SetAlias {
                name: n("virbr1.104"),
                alias: Some(n(MARK)),
                old: None
            },
            Step::AddAddr {
                name: n("virbr1.104"),
                addr: ip("10.12.8.1/22")
            },
            Step::SetUp {
                name: n("virbr1.104")
            },
        ]
    );
    let shown: Vec<String> = steps.iter().map(ToString::to_string).collect();
    assert_eq!(shown[0], "create virbr1.104 (VLAN 104 on virbr1)");
    assert_eq!(shown[2], "add 10.12.8.1/22 to virbr1.104");
}

#[test]
fn second_run_changes_nothing() {
    let o = obs(
        vec![bridge(), vlan_link(9, "virbr1.104", 5, 104, Some(MARK))],
        vec![
            addr(5, "10.12.4.1/22"),
            addr(9, "10.12.8.1/22"),
            Addr {
                index: 9,
                net: ip("fe80::1/64"),
                link_scope: true,
                noprefixroute: false,
            },
        ],
    );
    assert_eq!(plan_links(&net(vec![vip()]), "virbr1", &o).unwrap(), vec![]);
}

#[test]
fn matching_vlan_is_adopted_and_reconciled() {
    let mut l = vlan_link(9, "virbr1.104", 5, 104, Some("made by hand"));
    l.up = false;
    l.mtu = 1500;
    let o = obs(
        vec![bridge(), l],
        vec![
            addr(9, "10.12.8.1/24"),
            Addr {
                index: 9,
                net: ip("fe80::1/64"),
                link_scope: true,
                noprefixroute: false,
            },
        ],
    );
    let v = VlanConfig {
        mtu: Some(1400),
        ..vip()
    };
    let steps = plan_links(&net(vec![v]), "virbr1", &o).unwrap();
    assert_eq!(
        steps,
        vec![
            Step::SetAlias {
                name: n("virbr1.104"),
                alias: Some(n(MARK)),
                old: Some(n("made by hand"))
            },
            Step::SetMtu {
                name: n("virbr1.104"),
                mtu: 1400,
                old: 1500
            },
            Step::DelAddr {
                name: n("virbr1.104"),
                addr: ip("10.12.8.1/24")
            },
            Step::AddAddr {
                name: n("virbr1.104"),
                addr: ip("10.12.8.1/22")
            },
            Step::SetUp {
                name: n("virbr1.104")
            },
        ]
    );
}

#[test]
fn wrong_devices_of_the_target_name_are_left_alone() {
    let cases = [
        (
            link(9, "virbr1.104", "veth"),
            "already exists as a veth device, not VLAN 104 on virbr1",
        ),
        (
            vlan_link(9, "virbr1.104", 5, 105, None),
            "already exists as VLAN 105, not VLAN 104 on virbr1",
        ),
        (
            vlan_link(9, "virbr1.104", 2, 104, None),
            "VLAN 104 on another device (ifindex 2)",
        ),
        (
            Link {
                kind: crate::model::LinkKind::Physical,
                ..link(9, "virbr1.104", "x")
            },
            "a physical device",
        ),
    ];
    for (l, want) in cases {
        let o = obs(vec![bridge(), l], vec![]);
        let p = plan_links(&net(vec![vip()]), "virbr1", &o).unwrap_err();
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].to_string().contains(want), "{}", p[0]);
        assert!(p[0].to_string().contains("left untouched"), "{}", p[0]);
    }
}

#[test]
fn another_networks_vlan_is_not_adopted() {
    let o = obs(
        vec![
            bridge(),
            vlan_link(9, "virbr1.104", 5, 104, Some("net-hook:other")),
        ],
        vec![],
    );
    let p = plan_links(&net(vec![vip()]), "virbr1", &o).unwrap_err();
    assert_eq!(
        p,
        vec![Problem::OwnedByOther {
            name: n("virbr1.104"),
            owner: n("net-hook:other")
        }]
    );
}

#[test]
fn the_ordering_trap_names_the_holder_and_plans_nothing() {
    // phase-00: virbr2 (metal-admin) still holds 10.12.8.1/22.
    let o = obs(
        vec![bridge(), link(7, "virbr2", "bridge")],
        vec![addr(7, "10.12.8.1/22")],
    );
    let two = vec![
        vip(),
        VlanConfig {
            id: 105,
            name: None,
            addresses: vec![ip("10.12.20.1/24")],
            mtu: None,
        },
    ];
    let p = plan_links(&net(two), "virbr1", &o).unwrap_err();
    assert_eq!(
        p,
        vec![Problem::Conflict {
            addr: ip("10.12.8.1/22"),
            holder: n("virbr2"),
            holder_addr: ip("10.12.8.1/22")
        }]
    );
    assert_eq!(
        p[0].to_string(),
        "address 10.12.8.1/22 conflicts with 10.12.8.1/22 on virbr2; remove it from virbr2 first (or change the config)"
    );
}

#[test]
fn overlapping_prefixes_conflict_link_scope_does_not() {
    let o = obs(
        vec![bridge(), link(7, "eth0", "veth")],
        vec![
            addr(7, "10.12.9.5/24"),
            Addr {
                index: 7,
                net: ip("fd00:12:8::5/64"),
                link_scope: true,
                noprefixroute: false,
            },
        ],
    );
    let v = VlanConfig {
        addresses: vec![ip("10.12.8.1/22"), ip("fd00:12:8::1/64")],
        ..vip()
    };
    let p = plan_links(&net(vec![v]), "virbr1", &o).unwrap_err();
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(matches!(&p[0], Problem::Conflict { holder, .. } if holder == "eth0"));
    // Disjoint prefixes are fine.
    let o = obs(
        vec![bridge(), link(7, "eth0", "veth")],
        vec![addr(7, "10.12.12.1/22")],
    );
    assert!(plan_links(&net(vec![vip()]), "virbr1", &o).is_ok());
}

#[test]
fn missing_bridge_and_bad_names() {
    let p = plan_links(&net(vec![vip()]), "virbr1", &obs(vec![], vec![])).unwrap_err();
    assert_eq!(
        p,
        vec![Problem::BridgeMissing {
            bridge: n("virbr1")
        }]
    );
    let long = Link {
        name: n("virbr-long-nm"),
        ..bridge()
    };
    let v = VlanConfig { id: 4000, ..vip() };
    let p = plan_links(&net(vec![v]), "virbr-long-nm", &obs(vec![long], vec![])).unwrap_err();
    assert!(
        p[0].to_string().contains(
            "\"virbr-long-nm.4000\" for VLAN 4000 is invalid (longer than 15 bytes); set `name`"
        ),
        "{}",
        p[0]
    );
}

#[test]
fn vlan_filtering_bridge_gets_the_vid_once() {
    let mut o = obs(
        vec![Link {
            vlan_filtering: Some(true),
            ..bridge()
        }],
        vec![],
    );
    o.bridge_vids.insert(5, vec![1]);
    let steps = plan_links(&net(vec![vip()]), "virbr1", &o).unwrap();
    assert_eq!(
        steps[0],
        Step::BridgeVidAdd {
            bridge: n("virbr1"),
            vid: 104
        }
    );
    o.bridge_vids.insert(5, vec![1, 104]);
    let steps = plan_links(&net(vec![vip()]), "virbr1", &o).unwrap();
    assert!(
        !steps.iter().any(|s| matches!(s, Step::BridgeVidAdd { .. })),
        "{steps:?}"
    );
}

#[test]
fn teardown_deletes_only_owned_links_and_added_vids() {
    let mut o = obs(
        vec![
            Link {
                vlan_filtering: Some(true),
                ..bridge()
            },
            vlan_link(9, "virbr1.104", 5, 104, Some(MARK)),
            vlan_link(10, "virbr1.105", 5, 105, Some("net-hook:other")),
            vlan_link(11, "virbr1.106", 5, 106, None),
            vlan_link(12, "vip0", 5, 107, Some(MARK)),
        ],
        vec![],
    );
    o.bridge_vids.insert(5, vec![1, 104]);
    let steps = plan_down(
        "1_provider",
        &o,
        &[(n("virbr1"), 104), (n("virbr1"), 107), (n("gone"), 1)],
    )
    .steps;
    assert_eq!(
        steps,
        vec![
            Step::DeleteLink {
                name: n("virbr1.104")
            },
            Step::DeleteLink { name: n("vip0") },
            Step::BridgeVidDel {
                bridge: n("virbr1"),
                vid: 104
            },
        ]
    );
    assert_eq!(
        plan_down("1_provider", &obs(vec![], vec![]), &[]).steps,
        vec![]
    );
}

#[test]
fn preflight_sees_conflicts_before_the_bridge_exists() {
    let o = obs(
        vec![link(7, "virbr2", "bridge")],
        vec![addr(7, "10.12.8.1/22")],
    );
    let p = preflight(&net(vec![vip()]), "virbr1", &o);
    assert!(
        matches!(&p[..], [Problem::Conflict { holder, .. }] if holder == "virbr2"),
        "{p:?}"
    );
    assert!(preflight(&net(vec![vip()]), "virbr1", &obs(vec![], vec![])).is_empty());
    // A leftover device with the VLAN's name cannot be a VLAN on a bridge
    // that does not exist yet.
    let o = obs(vec![link(7, "virbr1.104", "veth")], vec![]);
    assert!(matches!(
        &preflight(&net(vec![vip()]), "virbr1", &o)[..],
        [Problem::Foreign { .. }]
    ));
}

#[test]
fn every_step_has_an_inverse_but_deletion() {
    let steps = [
        Step::CreateVlan {
            name: n("a"),
            parent: n("b"),
            vid: 1,
            mtu: None,
        },
        Step::SetAlias {
            name: n("a"),
            alias: Some(n("x")),
            old: None,
        },
        Step::AddAddr {
            name: n("a"),
            addr: ip("10.0.0.1/24"),
        },
        Step::SetMtu {
            name: n("a"),
            mtu: 1400,
            old: 1500,
        },
        Step::SetUp { name: n("a") },
        Step::BridgeVidAdd {
            bridge: n("b"),
            vid: 1,
        },
    ];
    for s in steps {
        let u = s.undo().unwrap();
        if !matches!(s, Step::CreateVlan { .. }) {
            assert_eq!(u.undo().unwrap(), s);
        }
        assert_eq!(u.driver(), s.driver());
        assert_eq!(
            u.on_link()
                .or(u.created_link().or(match &u {
                    Step::DeleteLink { name } => Some(name.as_str()),
                    _ => None,
                }))
                .is_some(),
            !matches!(s, Step::BridgeVidAdd { .. })
        );
    }
    assert_eq!(Step::DeleteLink { name: n("a") }.undo(), None);
}
