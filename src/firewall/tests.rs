use super::*;
use std::collections::HashMap;

use crate::config::BackendChoice;
use crate::hookdata::HookNetwork;

/// Answers commands from a table of (argv prefix -> reply) and records them.
#[derive(Default)]
struct Fake {
    ran: Vec<String>,
    stdin: Vec<String>,
    replies: HashMap<String, (i32, String, String)>,
    missing: Vec<&'static str>,
}

impl Fake {
    fn reply(mut self, cmd: &str, code: i32, out: &str) -> Self {
        self.replies
            .insert(cmd.to_string(), (code, out.to_string(), String::new()));
        self
    }
}

impl Runner for Fake {
    fn run(
        &mut self,
        argv: &[String],
        stdin: Option<&str>,
    ) -> Result<(i32, String, String), Error> {
        let line = argv.join(" ");
        self.ran.push(line.clone());
        if let Some(s) = stdin {
            self.stdin.push(s.to_string());
        }
        // Longest matching prefix wins; unknown commands fail like a missing rule.
        let best = self
            .replies
            .iter()
            .filter(|(k, _)| line.starts_with(k.as_str()))
            .max_by_key(|(k, _)| k.len());
        Ok(best
            .map(|(_, v)| v.clone())
            .unwrap_or((1, String::new(), String::new())))
    }
    fn has(&self, program: &str) -> bool {
        !self.missing.contains(&program)
    }
}

fn hn(mode: Option<&str>, subnets: &[&str], nat_ipv6: bool) -> HookNetwork {
    HookNetwork {
        name: "1_provider".into(),
        bridge: Some("virbr1".into()),
        forward_mode: mode.map(Into::into),
        subnets: subnets.iter().map(|s| s.parse().unwrap()).collect(),
        nat_ipv6,
    }
}

fn unnat(dst: &[&str]) -> Unnat {
    Unnat {
        destinations: dst.iter().map(|s| s.parse().unwrap()).collect(),
        sources: None,
        backend: BackendChoice::Auto,
    }
}

fn ex(src: &str, dst: &str) -> Exemption {
    Exemption {
        src: src.parse().unwrap(),
        dst: dst.parse().unwrap(),
    }
}

#[test]
fn exemptions_follow_the_networks_subnets() {
    let u = unnat(&["10.12.8.0/22", "fd00:12:8::/64"]);
    // IPv6 only when libvirt masquerades it (<nat ipv6='yes'>).
    let e = exemptions(
        &u,
        &hn(Some("nat"), &["10.12.4.0/22", "fd00:12:4::/64"], false),
    )
    .unwrap();
    assert_eq!(e, vec![ex("10.12.4.0/22", "10.12.8.0/22")]);
    let e = exemptions(
        &u,
        &hn(Some("nat"), &["10.12.4.0/22", "fd00:12:4::/64"], true),
    )
    .unwrap();
    assert_eq!(
        e,
        vec![
            ex("10.12.4.0/22", "10.12.8.0/22"),
            ex("fd00:12:4::/64", "fd00:12:8::/64")
        ]
    );
    assert!(
        exemptions(&u, &hn(Some("route"), &["10.12.4.0/22"], false))
            .unwrap_err()
            .contains("masquerades nothing")
    );
    assert!(
        exemptions(&u, &hn(Some("nat"), &[], false))
            .unwrap_err()
            .contains("set `unnat.sources`")
    );
    let mut explicit = unnat(&["10.12.8.0/22"]);
    explicit.sources = Some(vec!["10.12.5.0/24".parse().unwrap()]);
    assert_eq!(
        exemptions(&explicit, &hn(Some("nat"), &["10.12.4.0/22"], false)).unwrap(),
        vec![ex("10.12.5.0/24", "10.12.8.0/22")]
    );
    assert!(
        exemptions(
            &unnat(&["10.12.0.0/16"]),
            &hn(Some("nat"), &["10.12.4.0/22"], false)
        )
        .unwrap_err()
        .contains("overlaps")
    );
}

fn inputs(conf: Option<&str>, ipt: bool, nft: bool) -> DetectInputs {
    DetectInputs {
        network_conf: conf.map(String::from),
        libvirt_iptables: ipt,
        libvirt_nftables: nft,
    }
}

#[test]
fn backend_detection_order() {
    let conf = "# firewall_backend = \"iptables\"\nfirewall_backend = \"nftables\"\n";
    assert_eq!(
        detect(BackendChoice::Iptables, &inputs(Some(conf), true, false)).0,
        Backend::Nftables
    );
    assert!(
        detect(BackendChoice::Auto, &inputs(Some(conf), true, false))
            .1
            .contains("network.conf")
    );
    assert_eq!(
        detect(
            BackendChoice::Auto,
            &inputs(Some("#firewall_backend = \"nftables\"\n"), true, false)
        )
        .0,
        Backend::Iptables
    );
    assert_eq!(
        detect(BackendChoice::Auto, &inputs(None, false, true)).0,
        Backend::Nftables
    );
    assert_eq!(
        detect(BackendChoice::Nftables, &inputs(None, false, false)),
        (
            Backend::Nftables,
            "backend = \"nftables\" in net-hook's config".into()
        )
    );
    // Both or neither installed: the config decides, auto means iptables.
    assert_eq!(
        detect(BackendChoice::Auto, &inputs(None, true, true)).0,
        Backend::Iptables
    );
    assert_eq!(
        detect(BackendChoice::Nftables, &inputs(None, true, true)).0,
        Backend::Nftables
    );
}

const LIBVIRT_NAT: &str = "-P POSTROUTING ACCEPT\n-A POSTROUTING -j LIBVIRT_PRT\n";

fn nft_json() -> String {
    let p =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/firewall/nft-ruleset.json");
    std::fs::read_to_string(p).unwrap()
}

#[test]
fn observe_reads_what_the_choice_needs_once_and_detects_from_it() {
    // network.conf decides: only that backend is read.
    let mut f = Fake::default().reply("nft -j list ruleset", 0, &nft_json());
    let v = observe(
        Read::Chosen(BackendChoice::Auto),
        Some("firewall_backend = \"nftables\"\n".into()),
        &mut f,
    )
    .unwrap();
    assert_eq!(f.ran, ["nft -j list ruleset"]);
    assert_eq!(v.backend(BackendChoice::Auto).0, Backend::Nftables);
    assert!(v.iptables.is_none());
    // Otherwise both, once each; libvirt's jump decides.
    let mut f = Fake::default()
        .reply("iptables -w -t nat -S POSTROUTING", 0, LIBVIRT_NAT)
        .reply(
            "ip6tables -w -t nat -S POSTROUTING",
            0,
            "-P POSTROUTING ACCEPT\n",
        )
        .reply("nft -j list ruleset", 0, "{\"nftables\": []}");
    let v = observe(Read::Chosen(BackendChoice::Nftables), None, &mut f).unwrap();
    assert_eq!(f.ran.len(), 3, "{:?}", f.ran);
    assert_eq!(v.backend(BackendChoice::Nftables).0, Backend::Iptables);
    // A host without ip6tables' nat table: nothing there, not an error.
    let mut f = Fake::default()
        .reply("iptables -w -t nat -S POSTROUTING", 0, LIBVIRT_NAT)
        .reply("ip6tables -w -t nat -S POSTROUTING", 3, "");
    f.missing.push("nft");
    let v = observe(Read::Both, None, &mut f).unwrap();
    assert!(v.ip6tables.is_none() && v.nft.is_none());
    // A teardown must see both: an iptables that cannot list is an error
    // naming it.
    let mut f = Fake::default().reply("iptables -w -t nat -S POSTROUTING", 4, "");
    let e = observe(Read::Both, None, &mut f).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("iptables: listing nat POSTROUTING"),
        "{e}"
    );
    // Read only to tell the backend: it is not the one, and a plan that
    // chooses it all the same says it cannot list.
    let mut f = Fake::default()
        .reply("iptables -w -t nat -S POSTROUTING", 4, "")
        .reply("nft -j list ruleset", 1, "");
    let v = observe(Read::Chosen(BackendChoice::Auto), None, &mut f).unwrap();
    assert!(v.iptables.is_none() && v.nft.is_none());
    let e = iptables::Iptables
        .plan("n", &[ex("10.12.4.0/22", "10.12.8.0/22")], &v)
        .unwrap_err();
    assert!(e.contains("iptables cannot list its nat table"), "{e}");
}

fn view(ipt: &str, nft: Option<&str>) -> FirewallView {
    FirewallView {
        inputs: DetectInputs::default(),
        iptables: Some(iptables::parse_listing(ipt)),
        ip6tables: Some(vec![]),
        nft: nft.map(|j| nftables::parse(j).unwrap()),
    }
}

#[test]
fn iptables_plans_inserts_ahead_of_libvirt_and_removes_stale_rules_in_place() {
    let d = &iptables::Iptables;
    let want = [ex("10.12.4.0/22", "10.12.8.0/22")];
    let steps = d
        .plan("1_provider", &want, &view(LIBVIRT_NAT, None))
        .unwrap();
    assert_eq!(steps.len(), 1);
    let mut f = Fake::default().reply("iptables -w -t nat -I", 0, "");
    d.run(&steps[0], &mut f).unwrap();
    assert_eq!(
        f.ran,
        [
            "iptables -w -t nat -I POSTROUTING 1 -s 10.12.4.0/22 -d 10.12.8.0/22 -m comment --comment net-hook:1_provider -j RETURN"
        ]
    );
    // In place already: nothing to do.
    let present = "-A POSTROUTING -s 10.12.4.0/22 -d 10.12.8.0/22 -m comment --comment net-hook:1_provider -j RETURN\n-A POSTROUTING -j LIBVIRT_PRT\n";
    assert_eq!(
        d.plan("1_provider", &want, &view(present, None)).unwrap(),
        vec![]
    );
    // Another network's rule and libvirt's stay; ours that the config no
    // longer names goes, remembering where it was.
    let listing = "-A POSTROUTING -s 10.1.0.0/16 -d 10.2.0.0/16 -m comment --comment \"net-hook:provider vip\" -j RETURN\n\
        -A POSTROUTING -s 10.12.4.0/22 -d 10.99.0.0/16 -m comment --comment net-hook:1_provider -j RETURN\n\
        -A POSTROUTING -j LIBVIRT_PRT\n";
    let steps = d.plan("1_provider", &want, &view(listing, None)).unwrap();
    assert!(
        matches!(&steps[0], Step::IptDelete { pos: 2, spec, .. } if spec.contains(&"10.99.0.0/16".to_string())),
        "{steps:?}"
    );
    assert!(
        matches!(&steps[1], Step::IptInsert { pos: 1, .. }),
        "{steps:?}"
    );
    assert_eq!(steps.len(), 2);
    // Removal: every rule of the network, or of every network.
    assert_eq!(
        d.plan_remove(Owner::Network("1_provider"), &view(listing, None))
            .len(),
        1
    );
    assert_eq!(d.plan_remove(Owner::All, &view(listing, None)).len(), 2);
    // IPv6 wanted but ip6tables has no nat table: cannot be planned.
    let mut v = view(LIBVIRT_NAT, None);
    v.ip6tables = None;
    let e = d
        .plan("n", &[ex("fd00:1::/64", "fd00:2::/64")], &v)
        .unwrap_err();
    assert!(e.contains("ip6tables cannot list its nat table"), "{e}");
}

#[test]
fn nft_state_is_parsed_from_json() {
    let r = nftables::parse(&nft_json()).unwrap();
    assert!(r.has_table(Family::Ip, "libvirt_network"));
    assert!(r.has_table(Family::Ip6, NFT_TABLE));
    let c = "unnat_1_provider_0a1b2c3d";
    assert_eq!(
        r.chain_exemptions(Family::Ip, c).unwrap(),
        vec![
            ex("10.12.4.0/22", "10.12.8.0/22"),
            ex("10.12.4.7/32", "10.12.9.0/24")
        ]
    );
    assert_eq!(
        r.chain_exemptions(Family::Ip6, c).unwrap(),
        vec![ex("fd00:12:4::/64", "fd00:12:8::/64")]
    );
    assert_eq!(r.chain_exemptions(Family::Ip, "unnat_other"), None);
    // libvirt's own rules are seen, never ours.
    assert!(r.rules.iter().any(|x| x.table == "libvirt_network"));
    assert!(nftables::parse("not json").is_err());
    assert!(nftables::parse("{}").is_err());
}

#[test]
fn nft_plans_one_transaction_per_change_in_our_own_table() {
    let d = &nftables::Nftables;
    let chain = nftables::chain_name("1_provider");
    let empty = view("", Some("{\"nftables\": []}"));
    let want = [ex("10.12.4.0/22", "10.12.8.0/22")];
    let steps = d.plan("1_provider", &want, &empty).unwrap();
    assert_eq!(steps.len(), 2, "{steps:?}");
    assert_eq!(steps[0], Step::NftAddTable { family: Family::Ip });
    assert_eq!(
        nftables::script(&steps[1]).unwrap(),
        format!(
            "add table ip net_hook\n\
             add chain ip net_hook {chain} {{ type nat hook postrouting priority srcnat - 1; }}\n\
             flush chain ip net_hook {chain}\n\
             add rule ip net_hook {chain} ip saddr 10.12.4.0/22 ip daddr 10.12.8.0/22 snat ip prefix to ip saddr map {{ 10.12.4.0/22 : 10.12.4.0/22 }} comment \"net-hook:1_provider\"\n"
        )
    );
    let mut f = Fake::default().reply("nft -f -", 0, "");
    d.run(&steps[1], &mut f).unwrap();
    assert_eq!(f.stdin.len(), 1);
    assert!(!f.stdin[0].contains("libvirt_network"));
    // The recorded chain is named for another network: ours is missing,
    // its table is there.
    let rec = view("", Some(&nft_json()));
    let steps = d.plan("1_provider", &want, &rec).unwrap();
    assert!(
        matches!(&steps[..], [Step::NftSetChain { old: None, .. }]),
        "{steps:?}"
    );
    // Same rules, any order: nothing to do; other rules: replaced, with the
    // old ones kept for the undo.
    let json = nft_json().replace("unnat_1_provider_0a1b2c3d", &chain);
    let rec = view("", Some(&json));
    let both = [
        ex("10.12.4.7/32", "10.12.9.0/24"),
        ex("10.12.4.0/22", "10.12.8.0/22"),
        ex("fd00:12:4::/64", "fd00:12:8::/64"),
    ];
    assert_eq!(d.plan("1_provider", &both, &rec).unwrap(), vec![]);
    let steps = d.plan("1_provider", &want, &rec).unwrap();
    assert_eq!(steps.len(), 2, "{steps:?}");
    assert!(matches!(&steps[0], Step::NftSetChain { old: Some(o), .. } if o.len() == 2));
    assert!(matches!(
        &steps[1],
        Step::NftDeleteChain {
            family: Family::Ip6,
            ..
        }
    ));
    // Removal: the chain, then the table it leaves empty.
    let steps = d.plan_remove(Owner::Network("1_provider"), &rec);
    assert_eq!(steps.len(), 4, "{steps:?}");
    assert!(matches!(
        steps[1],
        Step::NftDeleteTable { family: Family::Ip }
    ));
    // Names are readable, nft-safe and distinct.
    assert!(nftables::chain_name("provider vip").starts_with("unnat_provider_vip_"));
    assert_ne!(nftables::chain_name("a b"), nftables::chain_name("a_b"));
    assert!(nftables::chain_name(&"x".repeat(200)).len() < 64);
}

#[test]
fn firewalld_zones_are_read_planned_and_set() {
    let names = vec!["virbr1.104".to_string(), "virbr1.105".to_string()];
    let mut f = Fake::default()
        .reply("firewall-cmd --state", 0, "running\n")
        .reply(
            "firewall-cmd --get-zone-of-interface=virbr1.104",
            0,
            "libvirt\n",
        )
        .reply(
            "firewall-cmd --get-zone-of-interface=virbr1.105",
            2,
            "no zone\n",
        )
        .reply("firewall-cmd --zone=libvirt", 0, "");
    let z = firewalld::observe(&names, &mut f).unwrap().unwrap();
    assert_eq!(z.of["virbr1.104"].as_deref(), Some("libvirt"));
    assert_eq!(z.of["virbr1.105"], None);
    assert_eq!(firewalld::plan("virbr1.104", "libvirt", &z), None);
    let s = firewalld::plan("virbr1.105", "libvirt", &z).unwrap();
    firewalld::run(&s, &mut f).unwrap();
    firewalld::run(&s.undo().unwrap(), &mut f).unwrap();
    assert_eq!(
        f.ran[3..],
        [
            "firewall-cmd --zone=libvirt --change-interface=virbr1.105",
            "firewall-cmd --zone=libvirt --remove-interface=virbr1.105"
        ]
    );
    // Not installed, or not running: not asked again.
    let mut none = Fake {
        missing: vec!["firewall-cmd"],
        ..Fake::default()
    };
    assert_eq!(firewalld::observe(&names, &mut none).unwrap(), None);
    assert!(none.ran.is_empty());
    let mut stopped = Fake::default().reply("firewall-cmd --state", 252, "not running");
    assert_eq!(firewalld::observe(&names, &mut stopped).unwrap(), None);
    assert_eq!(stopped.ran.len(), 1);
}

#[test]
fn steps_undo_each_other_and_keep_their_json() {
    let steps = vec![
        Step::IptInsert {
            family: Family::Ip6,
            pos: 3,
            spec: vec!["-j".into(), "RETURN".into()],
        },
        Step::NftSetChain {
            family: Family::Ip,
            chain: "c".into(),
            network: "n".into(),
            rules: vec![ex("10.0.0.0/8", "192.168.0.0/16")],
            old: Some(vec![]),
        },
        Step::NftDeleteChain {
            family: Family::Ip,
            chain: "c".into(),
            network: "n".into(),
            old: vec![ex("10.0.0.0/8", "192.168.0.0/16")],
        },
        Step::ZoneSet {
            name: "v".into(),
            zone: "libvirt".into(),
            old: Some("public".into()),
        },
    ];
    for s in steps {
        assert_eq!(s.undo().unwrap().undo().unwrap(), s);
        let j = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<Step>(&j).unwrap(), s, "{j}");
    }
    let j = serde_json::to_value(Step::AddAddr {
        name: "virbr1.104".into(),
        addr: "10.12.8.1/22".parse().unwrap(),
    })
    .unwrap();
    assert_eq!(
        j,
        serde_json::json!({"step": "add_addr", "name": "virbr1.104", "addr": "10.12.8.1/22"})
    );
}
