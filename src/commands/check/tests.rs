use super::*;
use crate::model::{Addr, Link};
use crate::testutil::{addr, bridge, info, provider, vlan_link};

fn statuses(checks: &[Check]) -> Vec<Status> {
    checks.iter().map(|c| c.status).collect()
}

#[test]
fn g1_vlan_filtering() {
    assert_eq!(g1("virbr1", Some("0\n")).status, Status::Pass);
    let w = g1("virbr1", Some("1\n"));
    assert_eq!(w.status, Status::Warn);
    assert!(w.reason.contains("own VLAN list"), "{}", w.reason);
    let f = g1("virbr1", None);
    assert_eq!(f.status, Status::Fail);
    assert!(f.reason.contains("not a Linux bridge"), "{}", f.reason);
}

#[test]
fn g2_forwarding() {
    assert_eq!(statuses(&g2(Some("1\n"), None, false)), [Status::Pass]);
    assert_eq!(statuses(&g2(Some("0\n"), None, false)), [Status::Fail]);
    assert_eq!(
        statuses(&g2(Some("1"), Some("0"), true)),
        [Status::Pass, Status::Warn]
    );
}

#[test]
fn g3_bridge() {
    let obs = |links| Observed {
        links,
        ..Observed::default()
    };
    assert_eq!(
        g3(&info(true, true, Some("nat")), &obs(vec![bridge()])).status,
        Status::Pass
    );
    assert_eq!(
        g3(
            &info(true, true, Some("nat")),
            &obs(vec![Link {
                up: false,
                ..bridge()
            }])
        )
        .status,
        Status::Fail
    );
    assert_eq!(
        g3(&info(true, true, Some("nat")), &obs(vec![])).status,
        Status::Fail
    );
    assert_eq!(
        g3(&info(false, true, Some("nat")), &obs(vec![])).status,
        Status::Warn
    );
    let veth = Link {
        kind: crate::model::LinkKind::Other("veth".into()),
        ..bridge()
    };
    let f = g3(&info(true, true, Some("nat")), &obs(vec![veth]));
    assert!(
        f.status == Status::Fail && f.reason.contains("is a veth device, not a Linux bridge"),
        "{}",
        f.reason
    );
}

#[test]
fn g4_autostart_off_fails_with_the_fix() {
    let checks = g4(&info(true, false, Some("nat")), false);
    let f = checks.iter().find(|c| c.status == Status::Fail).unwrap();
    assert!(
        f.reason.contains("virsh net-autostart 1_provider"),
        "{}",
        f.reason
    );
    // NAT: warn that traffic to the VLANs is masqueraded, unless exempted.
    assert_eq!(checks.last().unwrap().status, Status::Warn);
    assert_eq!(
        g4(&info(true, true, Some("nat")), true)
            .last()
            .unwrap()
            .status,
        Status::Pass
    );
    assert!(
        statuses(&g4(&info(true, true, Some("route")), false))
            .iter()
            .all(|s| *s == Status::Pass)
    );
}

#[test]
fn g5_finds_other_managers_on_a_file_tree() {
    let root = tempfile::tempdir().unwrap();
    let w = |rel: &str, text: &str| {
        let p = root.path().join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    };
    w(
        "etc/netplan/50-cloud.yaml",
        "network:\n  vlans:\n    virbr1.104:\n      addresses: [10.12.8.1/22]\n",
    );
    w(
        "etc/systemd/system/provider-vip-gw.service",
        "ExecStart=/sbin/ip link add link virbr1 name virbr1.104 type vlan id 104\n",
    );
    w("etc/systemd/system/other.timer", "virbr1\n");
    w(
        "etc/network/interfaces",
        "auto eth0\niface eth0 inet dhcp\n# virbr10 is not ours\naddress 10.12.8.10\n",
    );
    w(
        "etc/NetworkManager/system-connections/x.nmconnection",
        "[ipv4]\naddress1=192.168.1.5/24\n",
    );
    let needles = vec![
        "virbr1".to_string(),
        "virbr1.104".to_string(),
        "10.12.8.1".to_string(),
    ];
    let checks = g5(&manager_files(root.path()), &needles);
    let text: Vec<&str> = checks.iter().map(|c| c.reason.as_str()).collect();
    assert_eq!(checks.len(), 2, "{text:?}");
    assert!(
        text[0].contains(
            "/etc/netplan/50-cloud.yaml (netplan) mentions virbr1, virbr1.104, 10.12.8.1"
        ),
        "{text:?}"
    );
    assert!(
        text[1].contains("/etc/systemd/system/provider-vip-gw.service (a systemd unit)")
            && text[1].contains("two managers"),
        "{text:?}"
    );
    assert!(checks.iter().all(|c| c.status == Status::Warn));
    let empty = tempfile::tempdir().unwrap();
    assert_eq!(
        statuses(&g5(&manager_files(empty.path()), &needles)),
        [Status::Pass]
    );
}

#[test]
fn g6_states() {
    let base = |extra: Vec<Link>, addrs: Vec<Addr>| {
        let mut links = vec![bridge()];
        links.extend(extra);
        Observed {
            links,
            addrs,
            ..Observed::default()
        }
    };
    let vlan = |alias| vlan_link(9, "virbr1.104", 5, 104, alias);
    let a = addr;
    let one = |obs: &Observed, active| {
        let c = g6(&provider(), &info(active, true, Some("nat")), obs);
        assert_eq!(c.len(), 1, "{c:?}");
        c.into_iter().next().unwrap()
    };
    assert_eq!(one(&base(vec![], vec![]), false).status, Status::Pass);
    assert_eq!(one(&base(vec![], vec![]), true).status, Status::Warn);
    let owned = one(
        &base(
            vec![vlan(Some("net-hook:1_provider"))],
            vec![a(9, "10.12.8.1/22")],
        ),
        true,
    );
    assert!(
        owned.status == Status::Pass && owned.reason.contains("owned by net-hook"),
        "{}",
        owned.reason
    );
    let adopt = one(&base(vec![vlan(None)], vec![a(9, "10.12.8.1/22")]), true);
    assert!(
        adopt.status == Status::Warn && adopt.reason.contains("will be adopted"),
        "{}",
        adopt.reason
    );
    let drift = one(&base(vec![vlan(Some("net-hook:1_provider"))], vec![]), true);
    assert!(
        drift.status == Status::Warn && drift.reason.contains("add 10.12.8.1/22 to virbr1.104"),
        "{}",
        drift.reason
    );
    let holder = Link {
        index: 7,
        name: "virbr2".into(),
        ..bridge()
    };
    let conflict = one(&base(vec![holder], vec![a(7, "10.12.8.1/22")]), true);
    assert!(
        conflict.status == Status::Fail && conflict.reason.contains("on virbr2"),
        "{}",
        conflict.reason
    );
    let foreign = Link {
        kind: crate::model::LinkKind::Other("veth".into()),
        ..vlan(None)
    };
    assert_eq!(one(&base(vec![foreign], vec![]), true).status, Status::Fail);
}

#[test]
fn hook_entry_and_daemon_start() {
    let st = |entry, target_ok, oldest, daemons: Vec<(String, i64)>| HookState {
        entry,
        target_ok,
        oldest_hook: oldest,
        daemons,
    };
    let link = |p: &str| Some(Some(PathBuf::from(p)));
    assert_eq!(
        statuses(&hook_checks(&st(None, false, None, vec![]))),
        [Status::Fail]
    );
    assert_eq!(
        statuses(&hook_checks(&st(
            link("/usr/bin/net-hook"),
            true,
            Some(100),
            vec![]
        ))),
        [Status::Pass, Status::Pass]
    );
    let d = |t| vec![("libvirtd".to_string(), t)];
    // The daemon started before any hook existed: it never runs them.
    let late = hook_checks(&st(link("/usr/bin/net-hook"), true, Some(200), d(100)));
    assert_eq!(statuses(&late), [Status::Pass, Status::Fail]);
    assert!(
        late[1].reason.contains("systemctl restart libvirtd"),
        "{}",
        late[1].reason
    );
    assert_eq!(
        statuses(&hook_checks(&st(
            link("/usr/bin/net-hook"),
            true,
            Some(50),
            d(100)
        ))),
        [Status::Pass, Status::Pass]
    );
    let local = hook_checks(&st(link("/usr/local/bin/net-hook"), true, Some(50), vec![]));
    assert!(
        local[0].status == Status::Fail && local[0].reason.contains("AppArmor"),
        "{}",
        local[0].reason
    );
    assert_eq!(
        hook_checks(&st(Some(None), true, Some(50), vec![]))[0].status,
        Status::Warn
    );
    assert_eq!(
        hook_checks(&st(link("/usr/bin/net-hook"), false, Some(50), vec![]))[0].status,
        Status::Fail
    );
}

#[test]
fn hook_state_reads_a_hooks_tree() {
    let d = tempfile::tempdir().unwrap();
    let nd = d.path().join("network.d");
    fs::create_dir_all(&nd).unwrap();
    std::os::unix::fs::symlink("/bin/true", nd.join(ENTRY_NAME)).unwrap();
    let root = tempfile::tempdir().unwrap();
    let h = hook_state(d.path(), root.path());
    assert_eq!(h.entry, Some(Some(PathBuf::from("/bin/true"))));
    assert!(h.target_ok);
    assert!(h.oldest_hook.is_some());
    assert!(h.daemons.is_empty(), "no /proc under the fake root");
}
