use super::model::{Fault, Model};
use super::*;
use crate::config::{BackendChoice, NetworkConfig, Unnat, VlanConfig};
use crate::firewall::firewalld::Zones;
use crate::firewall::{DetectInputs, FirewallView, nftables};
use crate::hookdata::HookNetwork;
use crate::log::Log;
use crate::model::Link;
use crate::ops;
use crate::state::{RunDir, RunOp, RunResult};
use crate::testutil::{addr, bridge, ip, net};

/// Two VLANs with IPv4 and IPv6 addresses, an un-NAT exemption of both
/// families, on a NAT network whose bridge filters VLANs.
fn config() -> NetworkConfig {
    let vlan = |id, v4: &str, v6: &str| VlanConfig {
        id,
        name: None,
        addresses: vec![ip(v4), ip(v6)],
        mtu: None,
    };
    NetworkConfig {
        unnat: Some(Unnat {
            destinations: vec![ip("10.12.8.0/22"), ip("fd00:12:8::/64")],
            sources: None,
            backend: BackendChoice::Auto,
        }),
        ..net(vec![
            vlan(104, "10.12.8.1/22", "fd00:12:8::1/64"),
            vlan(105, "10.12.12.1/22", "fd00:12:12::1/64"),
        ])
    }
}

fn hook_network() -> HookNetwork {
    HookNetwork {
        name: "1_provider".into(),
        bridge: Some("virbr1".into()),
        forward_mode: Some("nat".into()),
        subnets: vec![ip("10.12.4.0/22"), ip("fd00:12:4::/64")],
        nat_ipv6: true,
    }
}

fn words(s: &str) -> Vec<String> {
    s.split(' ').map(String::from).collect()
}

/// The host before the run: the filtering bridge with libvirt's NAT, a
/// stale exemption of an older config, firewalld running. `conf`: what
/// libvirt's network.conf says.
fn host(conf: Option<&str>) -> Observed {
    let mut obs = crate::testutil::obs(
        vec![Link {
            vlan_filtering: Some(true),
            ..bridge()
        }],
        vec![addr(5, "10.12.4.1/22")],
    );
    obs.bridge_vids.insert(5, vec![1]);
    obs.firewall = Some(FirewallView {
        inputs: DetectInputs {
            network_conf: conf.map(String::from),
            libvirt_iptables: true,
            libvirt_nftables: false,
        },
        iptables: Some(vec![
            words(
                "-s 10.12.4.0/22 -d 10.99.0.0/16 -m comment --comment net-hook:1_provider -j RETURN",
            ),
            words("-j LIBVIRT_PRT"),
        ]),
        ip6tables: Some(vec![words("-j LIBVIRT_PRT")]),
        nft: Some(nftables::Ruleset::default()),
    });
    // As firewalld::observe reads it: the VLANs are in no zone yet.
    obs.zones = Some(Zones {
        of: ["virbr1.104", "virbr1.105"]
            .map(|n| (n.to_string(), None))
            .into(),
    });
    obs
}

fn plan_for(obs: &Observed) -> Vec<Step> {
    crate::plan::plan_up(&config(), "virbr1", &hook_network(), obs)
        .expect("plan")
        .steps
}

#[test]
fn the_realistic_plans_touch_every_kind_of_host_state() {
    let ipt = plan_for(&host(None));
    let drivers: Vec<Driver> = ipt.iter().map(Step::driver).collect();
    for d in [Driver::Netlink, Driver::Iptables, Driver::Firewalld] {
        assert!(drivers.contains(&d), "{d:?} missing from {ipt:#?}");
    }
    assert!(ipt.iter().any(|s| matches!(s, Step::BridgeVidAdd { .. })));
    assert!(
        ipt.iter().any(|s| matches!(s, Step::IptDelete { .. })),
        "the stale rule"
    );
    let nft = plan_for(&host(Some("firewall_backend = \"nftables\"\n")));
    assert!(
        nft.iter().any(|s| s.driver() == Driver::Nftables),
        "{nft:#?}"
    );
    // The iptables leftovers of the earlier backend go too.
    assert!(
        nft.iter().any(|s| matches!(s, Step::IptDelete { .. })),
        "{nft:#?}"
    );
}

/// For each step k of both realistic plans and each kind of failure, step k
/// fails: the host is left exactly as it was, and the error and the outcome
/// record name step k.
#[test]
fn a_failure_at_any_step_leaves_the_host_as_it_was() {
    let mut runs = 0;
    for conf in [None, Some("firewall_backend = \"nftables\"\n")] {
        let before = host(conf);
        let steps = plan_for(&before);
        eprintln!("plan with {:?}: {} steps", conf, steps.len());
        for k in 0..steps.len() {
            for fault in [
                Fault::Errno(libc::EPERM),
                Fault::Exit(4),
                Fault::Spawn,
                Fault::Lost,
                Fault::LostUnsent,
            ] {
                // Only netlink answers can be lost; programs exit with a status.
                if matches!(fault, Fault::Lost | Fault::LostUnsent)
                    && steps[k].driver() != Driver::Netlink
                {
                    continue;
                }
                let mut m = Model::new(before.clone());
                m.fail_at = Some(k);
                m.fault = fault;
                let err = apply(&mut m, &steps, |_| {}).unwrap_err();
                assert_eq!(m.obs, before, "step {k} ({}), {fault:?}", steps[k]);
                let Error::Apply {
                    index,
                    step,
                    undo_failed,
                    ..
                } = &err
                else {
                    panic!("{err}")
                };
                assert_eq!((*index, &**step), (k, &steps[k]));
                assert!(undo_failed.is_empty(), "{undo_failed:?}");
                let text = err.to_string();
                assert!(
                    text.starts_with(&format!("step {} of {}", k + 1, steps.len()))
                        && text.contains(&steps[k].to_string()),
                    "{text}"
                );
                runs += 1;
            }
        }
    }
    // Shown with --nocapture: the counts of the matrix.
    eprintln!("fault injection: {runs} runs (steps x kinds of failure), 0 leftovers");
    assert!(runs >= 4 * 20, "only {runs} runs");
}

#[test]
fn the_outcome_of_a_failed_bring_up_names_the_step() {
    let before = host(None);
    let steps = plan_for(&before);
    let dir = tempfile::tempdir().unwrap();
    let rundir = RunDir::new(dir.path());
    for (k, step) in steps.iter().enumerate() {
        let mut m = Model::new(before.clone());
        m.fail_at = Some(k);
        let mut log = Log::dry_run("1_provider", "started");
        let res = ops::up(
            &config(),
            "virbr1",
            &hook_network(),
            &mut m,
            &rundir,
            &mut log,
        );
        assert_eq!(m.obs, before);
        let o = ops::outcome("1_provider", RunOp::Started, &res);
        assert_eq!(o.result, RunResult::Failed);
        assert_eq!(o.failed_step.as_ref(), Some(step));
        assert!(o.actions.is_empty(), "{:?}", o.actions);
        // The record survives a round trip through its file.
        rundir.write(&o).unwrap();
        assert_eq!(rundir.read("1_provider").as_ref(), Some(&o));
    }
}

#[test]
fn a_rollback_that_fails_names_what_is_left() {
    let before = host(None);
    let steps = plan_for(&before);
    for k in 1..steps.len() {
        let mut m = Model::new(before.clone());
        m.fail_at = Some(k);
        m.fail_after = true;
        let err = apply(&mut m, &steps, |_| {}).unwrap_err();
        let Error::Apply { undo_failed, .. } = &err else {
            panic!("{err}")
        };
        // Every undo the journal needed was tried, and each failure is named.
        assert_eq!(undo_failed.len(), m.ran.len() - k - 1, "{undo_failed:?}");
        assert!(!undo_failed.is_empty());
        assert!(
            err.to_string().contains("rollback incomplete, fix by hand"),
            "{err}"
        );
        assert_ne!(m.obs, before);
    }
}

#[test]
fn applied_plans_converge_and_teardown_leaves_nothing_owned() {
    for conf in [None, Some("firewall_backend = \"nftables\"\n")] {
        let mut m = Model::new(host(conf));
        let steps = plan_for(&m.obs);
        apply(&mut m, &steps, |_| {}).unwrap();
        // Idempotent: planning again changes nothing.
        assert_eq!(plan_for(&m.obs), vec![], "{conf:?}");
        let vids = [("virbr1".into(), 104), ("virbr1".into(), 105)];
        let down = crate::plan::plan_down("1_provider", &m.obs, &vids);
        teardown(&mut m, &down.steps, |_| {}).unwrap();
        assert!(m.obs.owners().is_empty());
        let fw = m.obs.firewall.as_ref().unwrap();
        assert!(
            fw.iptables
                .iter()
                .chain(&fw.ip6tables)
                .flatten()
                .all(|r| !r.join(" ").contains("net-hook:")),
            "{fw:?}"
        );
        let nft = fw.nft.as_ref().unwrap();
        assert!(nft.tables.is_empty() && nft.rules.is_empty(), "{nft:?}");
        assert_eq!(m.obs.bridge_vids.get(&5), Some(&vec![1]));
    }
}

#[test]
fn teardown_runs_everything_and_gathers_every_failure() {
    let mut m = Model::new(host(None));
    let steps = vec![
        Step::BridgeVidDel {
            bridge: "nope".into(),
            vid: 1,
        },
        Step::DeleteLink { name: "b".into() },
        Step::ZoneRemove {
            name: "c".into(),
            zone: "libvirt".into(),
        },
    ];
    let mut ok = 0;
    let err = teardown(&mut m, &steps, |_| ok += 1).unwrap_err();
    assert_eq!(m.ran.len(), 3);
    assert_eq!(ok, 1);
    let Error::Teardown(f) = &err else {
        panic!("{err}")
    };
    assert_eq!(f.len(), 2);
    assert!(
        err.to_string().starts_with("2 step(s) could not be done"),
        "{err}"
    );
}

#[test]
fn rollback_skips_changes_to_links_it_deletes_and_undoes_adopted_ones() {
    let n = "virbr1.104".to_string();
    let created = vec![
        Step::CreateVlan {
            name: n.clone(),
            parent: "virbr1".into(),
            vid: 104,
            mtu: None,
        },
        Step::SetAlias {
            name: n.clone(),
            alias: Some("net-hook:1_provider".into()),
            old: None,
        },
        Step::AddAddr {
            name: n.clone(),
            addr: ip("10.12.8.1/22"),
        },
        Step::SetUp { name: n.clone() },
    ];
    let mut m = Model::new(host(None));
    m.fail_at = Some(3);
    apply(&mut m, &created, |_| {}).unwrap_err();
    assert_eq!(m.ran[4..], [Step::DeleteLink { name: n.clone() }]);
}

#[test]
fn failed_runs_report_their_journal_event() {
    use crate::error::{self, Error as E};
    use crate::log::Event;
    let before = host(None);
    let steps = plan_for(&before);
    let event_at = |k: usize, after: bool| {
        let mut m = Model::new(before.clone());
        m.fail_at = Some(k);
        m.fail_after = after;
        error::event(&E::Exec(apply(&mut m, &steps, |_| {}).unwrap_err()))
    };
    assert_eq!(event_at(0, false), Event::Failed, "nothing was changed");
    assert_eq!(event_at(3, false), Event::RolledBack);
    assert_eq!(event_at(3, true), Event::Failed, "rollback incomplete");
    assert_eq!(error::event(&E::Refused(vec![])), Event::Refused);
    let insecure = crate::state::Error::Insecure {
        path: "/run/net-hook".into(),
        why: "x".into(),
        fix: "y",
    };
    assert_eq!(error::event(&E::State(insecure)), Event::Refused);
}
