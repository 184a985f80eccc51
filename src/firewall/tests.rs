use super::*;
use std::collections::HashMap;

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
    fn run(&mut self, argv: &[String], stdin: Option<&str>) -> Result<(i32, String, String)> {
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

#[test]
fn backend_detection_order() {
    let conf = "# firewall_backend = \"iptables\"\nfirewall_backend = \"nftables\"\n";
    assert_eq!(
        detect(BackendChoice::Iptables, Some(conf), true, false).0,
        Backend::Nftables
    );
    assert!(
        detect(BackendChoice::Auto, Some(conf), true, false)
            .1
            .contains("network.conf")
    );
    assert_eq!(
        detect(
            BackendChoice::Auto,
            Some("#firewall_backend = \"nftables\"\n"),
            true,
            false
        )
        .0,
        Backend::Iptables
    );
    assert_eq!(
        detect(BackendChoice::Auto, None, false, true).0,
        Backend::Nftables
    );
    assert_eq!(
        detect(BackendChoice::Nftables, None, false, false),
        (
            Backend::Nftables,
            "backend = \"nftables\" in net-hook's config".into()
        )
    );
    // Both or neither installed: the config decides, auto means iptables.
    assert_eq!(
        detect(BackendChoice::Auto, None, true, true).0,
        Backend::Iptables
    );
    assert_eq!(
        detect(BackendChoice::Nftables, None, true, true).0,
        Backend::Nftables
    );
}

#[test]
fn iptables_inserts_once_ahead_of_libvirt_with_w_and_a_comment() {
    let mut f = Fake::default()
        .reply("iptables -w -t nat -S LIBVIRT_PRT", 0, "")
        .reply("iptables -w -t nat -I", 0, "")
        .reply(
            "iptables -w -t nat -S POSTROUTING",
            0,
            "-P POSTROUTING ACCEPT\n",
        );
    let a = ensure(
        "1_provider",
        &[ex("10.12.4.0/22", "10.12.8.0/22")],
        BackendChoice::Auto,
        &mut f,
    )
    .unwrap();
    assert_eq!(a.backend, Backend::Iptables);
    assert_eq!(a.actions.len(), 1);
    assert!(f.ran.contains(&"iptables -w -t nat -I POSTROUTING 1 -s 10.12.4.0/22 -d 10.12.8.0/22 -m comment --comment net-hook:1_provider -j RETURN".to_string()), "{:#?}", f.ran);
    // Present already (-C succeeds): nothing inserted.
    let mut f = Fake::default()
        .reply("iptables -w -t nat -S LIBVIRT_PRT", 0, "")
        .reply("iptables -w -t nat -C", 0, "")
        .reply("iptables -w -t nat -S POSTROUTING", 0, "");
    let a = ensure(
        "1_provider",
        &[ex("10.12.4.0/22", "10.12.8.0/22")],
        BackendChoice::Auto,
        &mut f,
    )
    .unwrap();
    assert!(a.actions.is_empty());
    assert!(!f.ran.iter().any(|l| l.contains(" -I ")), "{:#?}", f.ran);
}

#[test]
fn iptables_failure_takes_back_what_it_inserted() {
    let mut f = Fake::default()
        .reply("iptables -w -t nat -S LIBVIRT_PRT", 0, "")
        .reply("iptables -w -t nat -I POSTROUTING 1 -s 10.12.4.0/22", 0, "")
        .reply("iptables -w -t nat -D", 0, "");
    f.replies.insert(
        "iptables -w -t nat -I POSTROUTING 1 -s 10.12.5.0/24".into(),
        (4, String::new(), "iptables: Resource problem".into()),
    );
    let err = ensure(
        "n",
        &[
            ex("10.12.4.0/22", "10.12.8.0/22"),
            ex("10.12.5.0/24", "10.12.8.0/22"),
        ],
        BackendChoice::Auto,
        &mut f,
    )
    .unwrap_err();
    assert!(err.to_string().contains("Resource problem"), "{err}");
    assert!(f.ran.contains(&"iptables -w -t nat -D POSTROUTING -s 10.12.4.0/22 -d 10.12.8.0/22 -m comment --comment net-hook:n -j RETURN".to_string()), "{:#?}", f.ran);
}

#[test]
fn owned_rules_are_found_by_comment_only() {
    let listing = "-P POSTROUTING ACCEPT\n\
        -A POSTROUTING -s 10.12.4.0/22 -d 10.12.8.0/22 -m comment --comment \"net-hook:provider vip\" -j RETURN\n\
        -A POSTROUTING -s 10.1.0.0/16 -d 10.2.0.0/16 -m comment --comment net-hook:other -j RETURN\n\
        -A POSTROUTING -j LIBVIRT_PRT\n";
    let mine = owned_ipt_rules(listing, "net-hook:provider vip");
    assert_eq!(mine.len(), 1);
    assert_eq!(
        mine[0],
        [
            "-s",
            "10.12.4.0/22",
            "-d",
            "10.12.8.0/22",
            "-m",
            "comment",
            "--comment",
            "net-hook:provider vip",
            "-j",
            "RETURN"
        ]
    );
    assert_eq!(owned_ipt_rules(listing, "net-hook:other").len(), 1);
    assert!(owned_ipt_rules(listing, "net-hook:1_provider").is_empty());
}

#[test]
fn nft_script_is_one_transaction_in_our_own_table() {
    let s = nft_apply_script(
        "1_provider",
        &[ex("10.12.4.0/22", "10.12.8.0/22")],
        &["ip6"],
    );
    let chain = nft_chain("1_provider");
    assert_eq!(
        s,
        format!(
            "add table ip net_hook\n\
             add chain ip net_hook {chain} {{ type nat hook postrouting priority srcnat - 1; }}\n\
             flush chain ip net_hook {chain}\n\
             add rule ip net_hook {chain} ip saddr 10.12.4.0/22 ip daddr 10.12.8.0/22 snat ip prefix to ip saddr map {{ 10.12.4.0/22 : 10.12.4.0/22 }} comment \"net-hook:1_provider\"\n\
             delete chain ip6 net_hook {chain}\n"
        )
    );
    assert!(!s.contains("libvirt_network"));
    // Names are readable, nft-safe and distinct.
    assert!(nft_chain("provider vip").starts_with("unnat_provider_vip_"));
    assert_ne!(nft_chain("a b"), nft_chain("a_b"));
    assert!(nft_chain(&"x".repeat(200)).len() < 64);
}

#[test]
fn nft_is_idempotent_and_remove_cleans_both_backends() {
    let chain = nft_chain("n");
    let listing = format!(
        "table ip net_hook {{\n\tchain {chain} {{\n\t\ttype nat hook postrouting priority srcnat - 1; policy accept;\n\t\tip saddr 10.12.4.0/22 ip daddr 10.12.8.0/22 snat ip prefix to ip saddr map {{ 10.12.4.0/22 : 10.12.4.0/22 }} comment \"net-hook:n\"\n\t}}\n}}\n"
    );
    let mut f = Fake::default()
        .reply("nft list table ip libvirt_network", 0, "")
        .reply(&format!("nft list chain ip net_hook {chain}"), 0, &listing);
    let a = ensure(
        "n",
        &[ex("10.12.4.0/22", "10.12.8.0/22")],
        BackendChoice::Auto,
        &mut f,
    )
    .unwrap();
    assert_eq!(a.backend, Backend::Nftables);
    assert!(a.actions.is_empty(), "already in place");
    assert!(f.stdin.is_empty(), "no transaction when nothing changes");

    let mut f = Fake::default()
        .reply("iptables -w -t nat -S POSTROUTING", 0, "-A POSTROUTING -s 10.12.4.0/22 -d 10.12.8.0/22 -m comment --comment net-hook:n -j RETURN\n")
        .reply("iptables -w -t nat -D", 0, "")
        .reply("ip6tables -w -t nat -S POSTROUTING", 0, "")
        .reply(&format!("nft list chain ip net_hook {chain}"), 0, &listing)
        .reply("nft delete chain ip net_hook", 0, "")
        .reply("nft list table ip net_hook", 0, "table ip net_hook {\n}\n")
        .reply("nft delete table ip net_hook", 0, "");
    let (actions, errors) = remove("n", &mut f);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(actions.len(), 2, "{actions:?}");
    assert!(
        f.ran.contains(&"nft delete table ip net_hook".to_string()),
        "{:#?}",
        f.ran
    );
}

#[test]
fn firewalld_zone_commands() {
    let mut f = Fake::default()
        .reply("firewall-cmd --state", 0, "running\n")
        .reply("firewall-cmd --zone=libvirt", 0, "");
    assert!(firewalld_running(&mut f));
    firewalld_zone("libvirt", "virbr1.104", true, &mut f).unwrap();
    firewalld_zone("libvirt", "virbr1.104", false, &mut f).unwrap();
    assert_eq!(
        f.ran[1..],
        [
            "firewall-cmd --zone=libvirt --change-interface=virbr1.104",
            "firewall-cmd --zone=libvirt --remove-interface=virbr1.104"
        ]
    );
    let mut none = Fake {
        missing: vec!["firewall-cmd"],
        ..Fake::default()
    };
    assert!(!firewalld_running(&mut none));
    assert!(none.ran.is_empty());
}
