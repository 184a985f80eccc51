//! The hook protocol over input recorded from a real libvirtd 9.0
//! (tests/hookdata/libvirt-9.0: `<name>_<op>_<subop>.argv` holds the exact
//! argv after the program name, `.xml` the exact stdin).

mod common;

use std::fs;
use std::path::PathBuf;

use net_hook::config::Config;
use net_hook::hookdata;
use net_hook::model::{Link, LinkKind, Observed};
use net_hook::plan::{self, Step};

fn recorded() -> Vec<(PathBuf, Vec<String>, String)> {
    let dir = common::hookdata_dir();
    let mut out = Vec::new();
    for e in fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "argv") {
            let argv = fs::read_to_string(&p).unwrap();
            // NETWORK may contain spaces; OP SUBOP - are the last three words.
            let words: Vec<&str> = argv.trim_end_matches('\n').split(' ').collect();
            assert!(words.len() >= 4, "{}: {argv:?}", p.display());
            let n = words.len();
            let args = vec![
                words[..n - 3].join(" "),
                words[n - 3].into(),
                words[n - 2].into(),
                words[n - 1].into(),
            ];
            let xml = fs::read_to_string(p.with_extension("xml")).unwrap();
            out.push((p, args, xml));
        }
    }
    out.sort();
    out
}

#[test]
fn every_recording_parses_and_names_its_network() {
    let all = recorded();
    assert!(all.len() >= 25, "only {} recordings", all.len());
    for (p, args, xml) in &all {
        assert_eq!(args[3], "-", "{}", p.display());
        let known = [
            "start begin",
            "started begin",
            "stopped end",
            "port-created begin",
            "port-deleted begin",
            "updated begin",
        ];
        assert!(
            known.contains(&format!("{} {}", args[1], args[2]).as_str()),
            "{}: {args:?}",
            p.display()
        );
        let hn = hookdata::parse(xml).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert_eq!(hn.name, args[0], "{}", p.display());
        // Every network recorded here has a bridge (forward mode 'bridge'
        // included, as `<bridge name=.../>`).
        assert!(hn.bridge.is_some(), "{}: no bridge", p.display());
        assert!(
            !xml.ends_with('\n'),
            "{}: libvirt sends no trailing newline",
            p.display()
        );
    }
}

#[test]
fn forward_modes_and_names_with_spaces() {
    let all = recorded();
    let mode = |name: &str| {
        let (_, _, xml) = all.iter().find(|(p, _, _)| p.ends_with(name)).unwrap();
        hookdata::parse(xml).unwrap()
    };
    let m = |n: &str| mode(n).forward_mode;
    assert_eq!(m("1_provider_started_begin.argv").as_deref(), Some("nat"));
    assert_eq!(m("test-route_started_begin.argv").as_deref(), Some("route"));
    assert_eq!(m("test-open_started_begin.argv").as_deref(), Some("open"));
    assert_eq!(
        m("test-bridge_started_begin.argv").as_deref(),
        Some("bridge")
    );
    assert_eq!(m("test-isolated_started_begin.argv"), None);
    let space = mode("provider_vip_test_started_begin.argv");
    assert_eq!(space.name, "provider vip test");
    // Foreign namespaces and a decoy <vlan> in <metadata> are ignored.
    let meta = mode("test-metadata_started_begin.argv");
    assert_eq!(meta.bridge.as_deref(), Some("virbr27"));
}

#[test]
fn recorded_started_input_plans_the_runbook_gateway() {
    let (_, args, xml) = recorded()
        .into_iter()
        .find(|(p, _, _)| p.ends_with("1_provider_started_begin.argv"))
        .unwrap();
    let cfg = Config::parse(
        include_str!("../examples/1_provider.toml"),
        "examples/1_provider.toml",
    )
    .unwrap();
    let net = &cfg.networks[&args[0]];
    let hn = hookdata::parse(&xml).unwrap();
    let bridge = hn.bridge.clone().unwrap();
    // What the host looks like when libvirt runs `started`: the bridge is up
    // with the provider address.
    let obs = Observed {
        links: vec![Link {
            index: 7,
            name: bridge.clone(),
            kind: LinkKind::Bridge,
            mtu: 1500,
            up: true,
            vlan_filtering: Some(false),
            ..Link::default()
        }],
        addrs: vec![net_hook::model::Addr {
            index: 7,
            net: "10.12.4.1/22".parse().unwrap(),
            link_scope: false,
            noprefixroute: false,
        }],
        ..Observed::default()
    };
    let steps: Vec<String> = plan::plan_up(net, &bridge, &hn, &obs)
        .unwrap()
        .steps
        .iter()
        .map(Step::to_string)
        .collect();
    assert_eq!(
        steps,
        [
            "create virbr1.104 (VLAN 104 on virbr1)",
            "mark virbr1.104 as \"net-hook:1_provider\"",
            "add 10.12.8.1/22 to virbr1.104",
            "bring virbr1.104 up",
        ]
    );
}

/// libvirt passes a network's `<metadata>` to every op that matters; the
/// recordings come from tests/vm/scenarios/metadata.sh.
#[test]
fn recorded_metadata_reaches_start_started_and_stopped() {
    let versions = ["libvirt-9.0", "libvirt-11.3"];
    for v in versions {
        let dir = common::hookdata_dir().with_file_name(v);
        for op in ["start_begin", "started_begin", "stopped_end"] {
            let p = dir.join(format!("1_provider-metadata_{op}.xml"));
            let xml = fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            let net = net_hook::config::metadata::parse(&xml, "1_provider")
                .unwrap_or_else(|e| panic!("{}: {e:?}", p.display()))
                .unwrap_or_else(|| panic!("{}: no net-hook element", p.display()));
            assert_eq!(net.vlans.len(), 1, "{}", p.display());
            assert_eq!(net.vlans[0].id, 104);
            assert_eq!(
                net.vlans[0].addresses,
                ["10.12.8.1/22".parse::<ipnet::IpNet>().unwrap()]
            );
            assert_eq!(hookdata::parse(&xml).unwrap().name, "1_provider");
        }
    }
}

/// The qemu hook's input from libvirt 9.0 for xml-templates/routed-demo.xml
/// in both tap modes (tests/vm/scenarios/record-qemu-hookdata.sh): every op
/// names the domain and shows its routed interface, its tap named except at
/// `release` of a tap libvirt made.
#[test]
fn recorded_qemu_hook_input_shows_the_routed_interface() {
    let dir = common::hookdata_dir().with_file_name("qemu-9.0");
    let ops = [
        "prepare begin",
        "start begin",
        "started begin",
        "reconnect begin",
        "stopped end",
        "release end",
    ];
    for mode in ["managed", "precreated"] {
        for op in ops {
            let base = format!("routed-demo_{}_{mode}", op.replace(' ', "_"));
            let argv = fs::read_to_string(dir.join(format!("{base}.argv"))).unwrap();
            assert_eq!(argv, format!("routed-demo {op} -\n"), "{base}");
            let xml = fs::read_to_string(dir.join(format!("{base}.xml"))).unwrap();
            let d = net_hook::domaindata::parse(&xml).unwrap_or_else(|e| panic!("{base}: {e}"));
            assert_eq!(d.name, "routed-demo");
            assert_eq!(d.interfaces.len(), 1, "{base}");
            let i = &d.interfaces[0];
            // Seen on 9.0: by `release`, libvirt has dropped the name of a tap
            // it created from the live XML; the config must name it.
            let gone = op == "release end" && mode == "managed";
            let want = (!gone).then_some("tap-routed-demo");
            assert_eq!(i.tap.as_deref(), want, "{base}");
            assert_eq!(i.precreated, mode == "precreated", "{base}");
            assert_eq!(i.mac.as_deref(), Some("52:54:00:1e:10:0a"));
            assert_eq!((i.model.as_deref(), i.queues), (Some("virtio"), 1));
        }
    }
}
