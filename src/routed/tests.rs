use super::*;
use crate::config::Config;
use crate::exec::{self, model::Model};
use crate::model::{Neigh, Route};
use crate::testutil::{addr, link, obs};

const CONFIG: &str = r#"
[gateways.virgw-service]
addresses = ["172.31.16.1/24"]

[domains.routed-demo]

[[domains.routed-demo.interfaces]]
tap = "tap-routed-demo"
gateway = "virgw-service"
addresses = ["172.31.16.10/32"]
"#;

const XML: &str = "<domain type='qemu'><name>routed-demo</name><devices>\
    <interface type='ethernet'><mac address='52:54:00:1e:10:0a'/>\
    <target dev='tap-routed-demo'/><model type='virtio'/></interface>\
    </devices></domain>";

const SEED: &[u8] = b"0123456789abcdef0123456789abcdef";

fn want<'a>(
    domain: &'a crate::config::DomainConfig,
    gateways: &'a [crate::config::GatewayConfig],
) -> Want<'a> {
    Want {
        domain,
        gateways,
        seed: SEED,
    }
}

fn cfg(text: &str) -> Config {
    Config::parse(text, "t.toml").unwrap()
}

fn errors(text: &str) -> String {
    Config::parse(text, "t.toml").unwrap_err().to_string()
}

fn xml(s: &str) -> HookDomain {
    crate::domaindata::parse(s).unwrap()
}

/// Plans `op` on `m`'s host, applies it (all or nothing, or a teardown),
/// and returns the steps.
fn run(c: &Config, x: &HookDomain, op: &str, m: &mut Model) -> Vec<Step> {
    let d = &c.domains["routed-demo"];
    let gws = c.gateways_of(d);
    let w = want(d, &gws);
    let steps = match op {
        "prepare" => plan_prepare(&w, x, &m.obs).unwrap().steps,
        "started" => plan_started(&w, x, &m.obs).unwrap().steps,
        "stopped" => plan_stop(d, &m.obs, false),
        _ => plan_stop(d, &m.obs, true),
    };
    if op == "prepare" || op == "started" {
        exec::apply(m, &steps, |_| {}).unwrap();
    } else {
        exec::teardown(m, &steps, |_| {}).unwrap();
    }
    steps
}

#[test]
fn the_seeds_setup_parses() {
    let c = cfg(CONFIG);
    let g = &c.gateways["virgw-service"];
    assert_eq!(
        g.addresses,
        vec!["172.31.16.1/24".parse::<IpNet>().unwrap()]
    );
    assert_eq!(g.mac, None);
    let i = &c.domains["routed-demo"].interfaces[0];
    assert_eq!(i.tap, "tap-routed-demo");
    assert_eq!(i.route_protocol, 200);
    assert_eq!(i.table, 254);
    assert_eq!(i.tap_mode, TapMode::Libvirt);
    assert_eq!(i.rp_filter, 1);
    let shipped = include_str!("../../examples/routed.toml");
    let c = Config::parse(shipped, "examples/routed.toml").unwrap();
    assert_eq!(
        c.domains["routed-demo"].interfaces[0].tap,
        "tap-routed-demo"
    );
    assert!(c.gateways.contains_key("virgw-service"));
}

#[test]
fn config_mistakes_name_file_line_and_key() {
    let e = errors(&CONFIG.replace(
        "addresses = [\"172.31.16.10/32\"]",
        "addresses = [\"172.31.16.10/24\"]\ncolour = 1",
    ));
    assert!(
        e.contains("t.toml:10: domains.routed-demo.interfaces[0].addresses[0]"),
        "{e}"
    );
    assert!(e.contains("write 172.31.16.10/32"), "{e}");
    let Err(Error::Invalid(all)) = Config::parse(
        &CONFIG.replace("gateway = ", "colour = 1\ngateway = "),
        "t.toml",
    ) else {
        panic!("an unknown key is an error")
    };
    assert!(
        all[0]
            .to_string()
            .contains("interfaces[0].colour: unknown key"),
        "{all:?}"
    );
    let e = errors(&CONFIG.replace("172.31.16.1/24", "fd00::1/64"));
    assert!(
        e.contains("gateways.virgw-service.addresses[0]") && e.contains("IPv6"),
        "{e}"
    );
    let e = errors(&CONFIG.replace("gateway = \"virgw-service\"", "gateway = \"virgw-other\""));
    assert!(
        e.contains("no gateway \"virgw-other\" is configured"),
        "{e}"
    );
    let e = errors(
        &format!("{CONFIG}mac = \"01:00:5e:00:00:01\"\n")
            .replace("mac = \"01:00:5e:00:00:01\"\n", "")
            .replace(
                "[gateways.virgw-service]\n",
                "[gateways.virgw-service]\nmac = \"01:00:5e:00:00:01\"\n",
            ),
    );
    assert!(
        e.contains("gateways.virgw-service.mac") && e.contains("libvirt's format 52:54:00"),
        "{e}"
    );
    let e = errors(&CONFIG.replace("route_protocol", "x").replace(
        "tap = \"tap-routed-demo\"",
        "tap = \"tap-routed-demo\"\nroute_protocol = 12",
    ));
    assert!(e.contains("route_protocol") && e.contains("BIRD"), "{e}");
}

#[test]
fn names_and_addresses_are_used_once_and_never_overlap_vlans() {
    let two = format!(
        "{CONFIG}\n[domains.other]\n[[domains.other.interfaces]]\ntap = \"tap-routed-demo\"\ngateway = \"virgw-service\"\naddresses = [\"172.31.16.10/32\"]\n"
    );
    let e = errors(&two);
    assert!(
        e.contains("interface tap-routed-demo is also domain "),
        "{e}"
    );
    let vlan = format!(
        "{CONFIG}\n[networks.n]\n[[networks.n.vlans]]\nid = 104\nname = \"virgw-service\"\naddresses = [\"172.31.16.2/24\"]\n"
    );
    let e = Config::parse(&vlan, "t.toml").unwrap_err();
    let Error::Invalid(list) = &e else {
        panic!("{e}")
    };
    let all: Vec<String> = list.iter().map(ToString::to_string).collect();
    assert!(
        all.iter()
            .any(|m| m.contains("interface virgw-service is also network n's VLAN 104")),
        "{all:?}"
    );
    assert!(all.iter().any(|m| m.contains("overlaps")), "{all:?}");
    assert!(
        all.iter().any(|m| m.contains("172.31.16.10/32 is inside")),
        "{all:?}"
    );
}

use crate::config::Error;

#[test]
fn the_qemu_hooks_view_skips_networks_and_other_domains() {
    let text = format!("{CONFIG}\n[networks.broken]\nvlans = 3\n[domains.broken]\nx = 1\n");
    let c = Config::parse_domain(&text, "t.toml", "routed-demo").unwrap();
    assert!(c.domains.contains_key("routed-demo") && c.domains.len() == 1);
    assert!(c.networks.is_empty());
    // And the network hook's view skips gateways and domains.
    let bad = CONFIG.replace("addresses = [\"172.31.16.1/24\"]", "addresses = 7");
    assert!(
        Config::parse_network(&bad, "t.toml", "n")
            .unwrap()
            .is_none()
    );
}

#[test]
fn derived_macs_are_stable_libvirt_style_and_differ_by_host() {
    let a = Mac::derived(SEED, "virgw-service");
    assert_eq!(a, Mac::derived(SEED, "virgw-service"));
    assert_eq!(&a.0[..3], &[0x52, 0x54, 0x00]);
    assert_ne!(a, Mac::derived(b"another-host", "virgw-service"));
    assert_ne!(a, Mac::derived(SEED, "virgw-other"));
    assert_eq!(a.to_string().parse::<Mac>(), Ok(a));
    let guest: Mac = "52:54:00:1e:10:0a".parse().unwrap();
    assert_eq!(guest.tap_side().to_string(), "fe:54:00:1e:10:0a");
}

#[test]
fn prepare_makes_a_marked_dummy_without_a_connected_route_once() {
    let c = cfg(CONFIG);
    let mut m = Model::new(obs(vec![link(1, "eth0", "")], vec![]));
    let steps = run(&c, &xml(XML), "prepare", &mut m);
    let mac = Mac::derived(SEED, "virgw-service");
    assert_eq!(
        steps,
        vec![
            Step::CreateDummy {
                name: "virgw-service".into(),
                mac
            },
            Step::SetAlias {
                name: "virgw-service".into(),
                alias: Some(GATEWAY_MARK.into()),
                old: None
            },
            Step::AddGatewayAddr {
                name: "virgw-service".into(),
                addr: "172.31.16.1/24".parse().unwrap()
            },
            Step::SetUp {
                name: "virgw-service".into()
            },
        ]
    );
    let gw = m.obs.link_by_name("virgw-service").unwrap();
    assert!(gw.up && gw.mac == Some(mac));
    assert!(m.obs.addrs_of(gw.index).all(|a| a.noprefixroute));
    assert_eq!(run(&c, &xml(XML), "prepare", &mut m), vec![], "idempotent");
}

#[test]
fn a_matching_dummy_is_adopted_and_a_foreign_one_refused() {
    let c = cfg(CONFIG);
    let d = &c.domains["routed-demo"];
    let gws = c.gateways_of(d);
    let w = want(d, &gws);
    let mut gw = link(2, "virgw-service", "dummy");
    gw.mac = Some(Mac::derived(SEED, "virgw-service"));
    // The seed's by-hand address, with its connected route: replaced.
    let o = obs(vec![gw.clone()], vec![addr(2, "172.31.16.1/24")]);
    let steps = plan_prepare(&w, &xml(XML), &o).unwrap().steps;
    assert!(matches!(&steps[0], Step::SetAlias { alias: Some(a), .. } if a == GATEWAY_MARK));
    assert!(steps.iter().any(|s| matches!(s, Step::DelAddr { .. })));
    assert!(
        steps
            .iter()
            .any(|s| matches!(s, Step::AddGatewayAddr { .. }))
    );
    gw.mac = Some("52:54:00:99:99:99".parse().unwrap());
    let p = plan_prepare(&w, &xml(XML), &obs(vec![gw], vec![])).unwrap_err();
    assert!(
        p[0].to_string().contains("with mac 52:54:00:99:99:99"),
        "{}",
        p[0]
    );
    let p = plan_prepare(
        &w,
        &xml(XML),
        &obs(vec![link(2, "virgw-service", "bridge")], vec![]),
    )
    .unwrap_err();
    assert!(p[0].to_string().contains("must be a dummy"), "{}", p[0]);
    let holder = obs(
        vec![link(3, "br0", "bridge")],
        vec![addr(3, "172.31.16.1/24")],
    );
    let p = plan_prepare(&w, &xml(XML), &holder).unwrap_err();
    assert_eq!(
        p,
        vec![Problem::Conflict {
            addr: "172.31.16.1/24".parse().unwrap(),
            holder: "br0".into()
        }]
    );
}

#[test]
fn started_routes_the_vm_through_its_tap_and_reconnect_changes_nothing() {
    let c = cfg(CONFIG);
    let x = xml(XML);
    let mut m = Model::new(obs(vec![link(1, "eth0", "")], vec![]));
    run(&c, &x, "prepare", &mut m);
    // libvirt creates the tap between prepare and started.
    m.obs.links.push(link(9, "tap-routed-demo", "tun"));
    m.obs
        .sysctls
        .insert("net/ipv4/conf/tap-routed-demo/proxy_arp".into(), "0".into());
    let steps = run(&c, &x, "started", &mut m);
    let vm: IpNet = "172.31.16.10/32".parse().unwrap();
    assert!(steps.contains(&Step::SetSysctl {
        key: "net/ipv4/conf/tap-routed-demo/proxy_arp".into(),
        value: "1".into(),
        old: "0".into()
    }));
    assert!(steps.contains(&Step::AddRoute {
        dst: vm,
        dev: "tap-routed-demo".into(),
        protocol: 200,
        table: 254
    }));
    assert_eq!(
        m.obs.neighs,
        vec![Neigh {
            index: 9,
            addr: vm.addr(),
            mac: Some("52:54:00:1e:10:0a".parse().unwrap()),
            permanent: true
        }]
    );
    assert_eq!(
        run(&c, &x, "started", &mut m),
        vec![],
        "a reconnect re-applies nothing"
    );
    // stopped: routes and neighbours go, the gateway stays.
    let stop = run(&c, &x, "stopped", &mut m);
    assert_eq!(stop.len(), 2, "{stop:?}");
    assert!(m.obs.routes.is_empty() && m.obs.neighs.is_empty());
    assert!(m.obs.link_by_name("virgw-service").is_some());
    assert!(
        m.obs.link_by_name("tap-routed-demo").is_some(),
        "libvirt's tap is libvirt's"
    );
}

#[test]
fn a_precreated_tap_is_made_at_prepare_and_deleted_at_release() {
    let text = CONFIG.replace(
        "tap = \"tap-routed-demo\"",
        "tap = \"tap-routed-demo\"\ntap_mode = \"precreated\"",
    );
    let c = cfg(&text);
    let x = xml(&XML.replace(
        "<target dev='tap-routed-demo'/>",
        "<target dev='tap-routed-demo' managed='no'/><driver queues='4'/>",
    ));
    let mut m = Model::new(obs(vec![], vec![]));
    let steps = run(&c, &x, "prepare", &mut m);
    assert!(steps.contains(&Step::CreateTap {
        name: "tap-routed-demo".into(),
        mac: Some("fe:54:00:1e:10:0a".parse().unwrap()),
        vnet_hdr: true,
        multi_queue: true
    }));
    let tap = m.obs.link_by_name("tap-routed-demo").unwrap();
    assert_eq!(tap_owner(tap), Some("routed-demo"));
    run(&c, &x, "started", &mut m);
    assert_eq!(m.obs.routes.len(), 1);
    run(&c, &x, "stopped", &mut m);
    assert!(
        m.obs.link_by_name("tap-routed-demo").is_some(),
        "stopped keeps the tap"
    );
    let rel = run(&c, &x, "release", &mut m);
    assert_eq!(
        rel,
        vec![Step::DeleteLink {
            name: "tap-routed-demo".into()
        }]
    );
    assert!(m.obs.link_by_name("tap-routed-demo").is_none());
    // A tap net-hook did not make is never taken over.
    let d = &c.domains["routed-demo"];
    let gws = c.gateways_of(d);
    let w = want(d, &gws);
    let p = plan_prepare(
        &w,
        &x,
        &obs(vec![link(4, "tap-routed-demo", "tun")], vec![]),
    )
    .unwrap_err();
    assert!(
        p[0].to_string().contains("net-hook did not create"),
        "{}",
        p[0]
    );
}

#[test]
fn the_domain_xml_must_agree_with_the_config() {
    let c = cfg(CONFIG);
    let d = &c.domains["routed-demo"];
    let gws = c.gateways_of(d);
    let w = want(d, &gws);
    let o = obs(vec![link(9, "tap-routed-demo", "tun")], vec![]);
    // Not (yet) in the domain: skipped with a warning, or refused if strict.
    let other = xml(&XML.replace("tap-routed-demo", "tap-x"));
    let s = plan_started(&w, &other, &o).unwrap();
    assert!(
        s.steps.iter().all(|s| !matches!(s, Step::AddRoute { .. })),
        "{s:?}"
    );
    assert!(
        s.warnings
            .iter()
            .any(|w| w.contains("tap-routed-demo is skipped")),
        "{s:?}"
    );
    let mut strict = d.clone();
    strict.strict = true;
    let ws = want(&strict, &gws);
    let p = plan_started(&ws, &other, &o).unwrap_err();
    assert_eq!(
        p,
        vec![Problem::NotInDomain {
            tap: "tap-routed-demo".into()
        }]
    );
    let managed_no = XML.replace(
        "<target dev='tap-routed-demo'/>",
        "<target dev='tap-routed-demo' managed='no'/>",
    );
    let p = plan_started(&w, &xml(&managed_no), &o).unwrap_err();
    assert!(
        p[0].to_string().contains("set tap_mode = \"precreated\""),
        "{}",
        p[0]
    );
    let p = plan_started(&w, &xml(XML), &obs(vec![], vec![])).unwrap_err();
    assert!(
        p.iter().any(|p| matches!(p, Problem::TapMissing { .. })),
        "{p:?}"
    );
    // A route to the VM's address that net-hook did not make: refused.
    let mut taken = o.clone();
    taken.routes.push(Route {
        dst: "172.31.16.10/32".parse().unwrap(),
        oif: Some(9),
        protocol: 12,
        table: 254,
        metric: 0,
    });
    let p = plan_started(&w, &xml(XML), &taken).unwrap_err();
    assert!(
        p.iter()
            .any(|p| matches!(p, Problem::RouteTaken { protocol: 12, .. })),
        "{p:?}"
    );
    // BIRD's copy of it, learned with metric 32 (the VM just moved here):
    // ours is added beside it and wins.
    taken.routes[0].metric = 32;
    let s = plan_started(&w, &xml(XML), &taken).unwrap();
    assert!(
        s.steps.iter().any(|s| matches!(s, Step::AddRoute { .. })),
        "{s:?}"
    );
    assert!(
        s.warnings
            .iter()
            .any(|w| w.contains("metric 32") && w.contains("net-hook's wins")),
        "{s:?}"
    );
}

#[test]
fn host_wide_settings_that_defeat_the_tap_are_warned_about() {
    let c = cfg(CONFIG);
    let d = &c.domains["routed-demo"];
    let gws = c.gateways_of(d);
    let w = want(d, &gws);
    let mut o = obs(vec![link(9, "tap-routed-demo", "tun")], vec![]);
    for (k, v) in [
        ("net/ipv4/conf/all/arp_ignore", "2"),
        ("net/ipv4/conf/all/rp_filter", "2"),
        ("net/ipv4/ip_forward", "0"),
    ] {
        o.sysctls.insert(k.into(), v.into());
    }
    let s = plan_started(&w, &xml(XML), &o).unwrap();
    assert_eq!(s.warnings.len(), 3, "{:?}", s.warnings);
    assert!(s.warnings.iter().any(|w| w.contains("arp_ignore is 2")));
    assert_eq!(
        effective(
            &o,
            "net/ipv4/conf/all/rp_filter",
            "net/ipv4/conf/tap-routed-demo/rp_filter"
        ),
        Some(2)
    );
}

#[test]
fn a_failed_step_rolls_the_whole_op_back() {
    let c = cfg(CONFIG);
    let x = xml(XML);
    let mut m = Model::new(obs(vec![link(9, "tap-routed-demo", "tun")], vec![]));
    let before = m.obs.clone();
    let d = &c.domains["routed-demo"];
    let gws = c.gateways_of(d);
    let w = want(d, &gws);
    let steps = plan_started(&w, &x, &m.obs).unwrap().steps;
    // Fail the route: everything before it (gateway, sysctls) is undone.
    let at = steps
        .iter()
        .position(|s| matches!(s, Step::AddRoute { .. }))
        .unwrap();
    m.fail_at = Some(at);
    let e = exec::apply(&mut m, &steps, |_| {}).unwrap_err();
    assert!(
        e.to_string()
            .contains(&format!("step {} of {}", at + 1, steps.len())),
        "{e}"
    );
    assert_eq!(m.obs.links, before.links);
    assert!(m.obs.routes.is_empty() && m.obs.neighs.is_empty());
}

/// Every recorded qemu hook call: its argv maps to the op net-hook acts on
/// (or to none), and its stdin parses with the tap and mode of its mode.
#[test]
fn recorded_qemu_hook_input_from_real_libvirt() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hookdata");
    let mut seen = 0;
    for dir in ["qemu-9.0", "qemu-11.3"] {
        let Ok(rd) = std::fs::read_dir(root.join(dir)) else {
            assert_ne!(dir, "qemu-9.0", "the 9.0 recordings are in the repository");
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.extension().and_then(|x| x.to_str()) != Some("argv") {
                continue;
            }
            let argv = std::fs::read_to_string(&p).unwrap();
            let a: Vec<&str> = argv.split_whitespace().collect();
            assert_eq!(a.len(), 4, "{}: {argv}", p.display());
            assert_eq!(a[0], "routed-demo");
            // `start begin` is the one op recorded that net-hook leaves alone.
            let op = crate::qemu_hook::op_of(a[1], a[2]);
            assert_eq!(
                op.is_none(),
                (a[1], a[2]) == ("start", "begin"),
                "{}: {argv}",
                p.display()
            );
            let x = std::fs::read_to_string(p.with_extension("xml")).unwrap();
            let d = crate::domaindata::parse(&x).unwrap();
            assert_eq!(d.name, "routed-demo");
            assert_eq!(d.interfaces.len(), 1, "{}", p.display());
            let i = &d.interfaces[0];
            // At `release end` libvirt has already dropped the <target> of
            // a tap it made: the stop plans go by the config's tap names.
            let name = p.to_string_lossy();
            let want = if name.contains("release_end_managed") {
                None
            } else {
                Some("tap-routed-demo")
            };
            assert_eq!(i.tap.as_deref(), want, "{name}");
            assert_eq!(i.precreated, p.to_string_lossy().contains("precreated"));
            assert_eq!(i.mac.as_deref(), Some("52:54:00:1e:10:0a"));
            seen += 1;
        }
    }
    assert!(seen >= 12, "only {seen} recordings");
    for ignored in [
        ("migrate", "begin"),
        ("restore", "begin"),
        ("attach", "begin"),
        ("start", "begin"),
    ] {
        assert_eq!(crate::qemu_hook::op_of(ignored.0, ignored.1), None);
    }
}

/// A domain's whole life as libvirt 9.0 and 11.3 told it (the recorded
/// argv and XML of each op, in libvirt's order), on the model host: what
/// each op leaves behind, in both tap modes.
#[test]
fn a_recorded_life_from_real_libvirt_on_the_model_host() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hookdata");
    for dir in ["qemu-9.0", "qemu-11.3"] {
        for mode in ["managed", "precreated"] {
            let text = if mode == "precreated" {
                CONFIG.replace(
                    "tap = \"tap-routed-demo\"",
                    "tap = \"tap-routed-demo\"\ntap_mode = \"precreated\"",
                )
            } else {
                CONFIG.to_string()
            };
            let c = cfg(&text);
            let d = &c.domains["routed-demo"];
            let gws = c.gateways_of(d);
            let mut m = Model::new(obs(vec![link(1, "eth0", "")], vec![]));
            let at = format!("{dir} {mode}");
            for op in [
                "prepare_begin",
                "start_begin",
                "started_begin",
                "reconnect_begin",
                "stopped_end",
                "release_end",
            ] {
                let base = root.join(dir).join(format!("routed-demo_{op}_{mode}"));
                let argv = std::fs::read_to_string(base.with_extension("argv")).unwrap();
                let a: Vec<&str> = argv.split_whitespace().collect();
                let x = crate::domaindata::parse(
                    &std::fs::read_to_string(base.with_extension("xml")).unwrap(),
                )
                .unwrap();
                let Some(run_op) = crate::qemu_hook::op_of(a[1], a[2]) else {
                    // `start begin`: libvirt made its tap just before.
                    if mode == "managed" {
                        m.obs.links.push(link(50, "tap-routed-demo", "tun"));
                    }
                    continue;
                };
                let (steps, _) = crate::qemu_hook::plan(d, &gws, SEED, &x, run_op, &m.obs)
                    .unwrap_or_else(|e| panic!("{at} {op}: {e}"));
                let res = match run_op {
                    crate::state::RunOp::Stopped | crate::state::RunOp::Release => {
                        exec::teardown(&mut m, &steps, |_| {})
                    }
                    _ => exec::apply(&mut m, &steps, |_| {}),
                };
                res.unwrap_or_else(|e| panic!("{at} {op}: {e}"));
                let routed = m
                    .obs
                    .routes
                    .iter()
                    .any(|r| r.dst.to_string() == "172.31.16.10/32" && r.protocol == 200);
                let tap = m.obs.link_by_name("tap-routed-demo").is_some();
                match op {
                    "prepare_begin" => assert_eq!(tap, mode == "precreated", "{at} {op}"),
                    "started_begin" => assert!(routed && !steps.is_empty(), "{at} {op}"),
                    "reconnect_begin" => assert!(
                        routed && steps.is_empty(),
                        "{at} {op}: re-applies nothing: {steps:?}"
                    ),
                    "stopped_end" => assert!(!routed && m.obs.neighs.is_empty(), "{at} {op}"),
                    _ => assert!(
                        !tap || mode == "managed",
                        "{at} {op}: the pre-created tap is gone"
                    ),
                }
                assert!(
                    m.obs.link_by_name("virgw-service").is_some(),
                    "{at} {op}: the gateway stays"
                );
            }
        }
    }
}

#[test]
fn removing_a_gateway_address_is_undone_with_its_flag() {
    // The gateway moves from .1 to .254; a later step fails: the rollback
    // must put .1 back without a connected route.
    let c = cfg(&CONFIG.replace("172.31.16.1/24", "172.31.16.254/24"));
    let d = &c.domains["routed-demo"];
    let gws = c.gateways_of(d);
    let w = want(d, &gws);
    let mut gw = link(2, "virgw-service", "dummy");
    gw.alias = Some(GATEWAY_MARK.into());
    let mut old = addr(2, "172.31.16.1/24");
    old.noprefixroute = true;
    let mut m = Model::new(obs(vec![gw], vec![old.clone()]));
    let steps = plan_prepare(&w, &xml(XML), &m.obs).unwrap().steps;
    assert!(
        matches!(&steps[0], Step::DelGatewayAddr { .. }),
        "{steps:?}"
    );
    m.fail_at = Some(1);
    exec::apply(&mut m, &steps, |_| {}).unwrap_err();
    assert_eq!(
        m.obs.addrs,
        vec![old],
        "back as it was, noprefixroute and all"
    );
}

#[test]
fn tap_names_libvirt_reserves_or_xml_cannot_hold_and_twice_used_macs_are_refused() {
    for (bad, why) in [("vnet7", "libvirt reserves"), ("tap'x", "letters, digits")] {
        let e = errors(&CONFIG.replace("tap = \"tap-routed-demo\"", &format!("tap = \"{bad}\"")));
        assert!(
            e.contains("interfaces[0].tap") && e.contains(why),
            "{bad}: {e}"
        );
    }
    let two = format!(
        "{CONFIG}\n[gateways.virgw-b]\naddresses = [\"172.31.17.1/24\"]\nmac = \"52:54:00:00:00:01\"\n"
    )
    .replace("[gateways.virgw-service]\n", "[gateways.virgw-service]\nmac = \"52:54:00:00:00:01\"\n");
    let e = errors(&two);
    assert!(e.contains("mac 52:54:00:00:00:01 is also gateway"), "{e}");
}
