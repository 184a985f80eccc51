use super::prescan::scan;
use super::*;
use std::path::Path;

const FILE: &str = "/etc/net-hook/net-hook.toml";

fn errors(text: &str) -> Vec<String> {
    match Config::parse(text, FILE) {
        Ok(c) => panic!("accepted: {c:?}"),
        Err(Error::Invalid(e)) => e.iter().map(ToString::to_string).collect(),
        Err(e) => panic!("unexpected error {e}"),
    }
}

fn one_error(text: &str) -> String {
    let e = errors(text);
    assert_eq!(e.len(), 1, "{e:?}");
    e.into_iter().next().unwrap()
}

fn vlan(body: &str) -> String {
    format!("[networks.1_provider]\n[[networks.1_provider.vlans]]\n{body}\n")
}

#[test]
fn the_example_config() {
    let c = Config::parse(include_str!("../../examples/1_provider.toml"), FILE).unwrap();
    let net = &c.networks["1_provider"];
    assert!(!net.strict);
    assert_eq!(
        net.vlans,
        vec![VlanConfig {
            id: 104,
            name: None,
            addresses: vec!["10.12.8.1/22".parse().unwrap()],
            mtu: None
        }]
    );
    assert_eq!(net.vlans[0].ifname("virbr1"), "virbr1.104");
}

#[test]
fn full_shape_with_quoted_names_and_ipv6() {
    let text = r#"
[networks."provider vip"]
strict = true
[[networks."provider vip".vlans]]
id = 4094
name = "vip0"
addresses = ["10.12.8.1/22", "fd00:12:8::1/64"]
mtu = 1400
[[networks."provider vip".vlans]]
id = 1
addresses = []
"#;
    let c = Config::parse(text, FILE).unwrap();
    let net = &c.networks["provider vip"];
    assert!(net.strict);
    assert_eq!(net.vlans.len(), 2);
    assert_eq!(net.vlans[0].mtu, Some(1400));
    assert_eq!(net.vlans[0].ifname("virbr1"), "vip0");
    assert_eq!(net.vlans[1].addresses, vec![]);
}

#[test]
fn errors_name_file_line_and_key() {
    assert_eq!(
        one_error(&vlan("id = 4095\naddresses = []")),
        "/etc/net-hook/net-hook.toml:3: networks.1_provider.vlans[0].id: 4095 is not a VLAN ID (1-4094)"
    );
    assert_eq!(
        one_error(&vlan("id = 104\naddresses = [\"10.12.8.1/22\"]\nmtu = 9")),
        "/etc/net-hook/net-hook.toml:5: networks.1_provider.vlans[0].mtu: 9 is not a valid MTU (68-65535)"
    );
    let e = one_error(&vlan("id = 0\naddresses = []"));
    assert!(
        e.contains(":3: networks.1_provider.vlans[0].id: 0 is not a VLAN ID"),
        "{e}"
    );
}

#[test]
fn interface_names_follow_the_kernel() {
    for (name, why) in [
        ("virbr1.104.toolong", "longer than 15 bytes"),
        ("a/b", "contains '/'"),
        ("a b", "contains whitespace"),
        ("", "empty"),
        ("..", "reserved"),
        ("a:1", "contains ':'"),
    ] {
        let e = one_error(&vlan(&format!("id = 5\naddresses = []\nname = {name:?}")));
        assert!(
            e.contains("networks.1_provider.vlans[0].name") && e.contains(why),
            "{name}: {e}"
        );
    }
    assert!(
        Config::parse(
            &vlan("id = 5\naddresses = []\nname = \"abcdefghijklmno\""),
            FILE
        )
        .is_ok()
    );
}

#[test]
fn addresses_must_be_host_addresses_with_a_prefix() {
    for (a, why) in [
        ("10.12.8.1", "no prefix length"),
        (
            "10.12.8.0/22",
            "network address of 10.12.8.0/22; use a host address such as 10.12.8.1/22",
        ),
        ("10.12.11.255/22", "broadcast address"),
        ("10.12.8.1/33", "not an address with a prefix"),
        ("banana/8", "not an address with a prefix"),
        ("224.0.0.1/24", "not a unicast host address"),
        ("fe80::1/64", "link-local"),
        ("fd00::/64", "subnet-router anycast"),
        ("::1/128", "not a unicast host address"),
    ] {
        let e = one_error(&vlan(&format!("id = 5\naddresses = [{a:?}]")));
        assert!(
            e.contains("networks.1_provider.vlans[0].addresses[0]") && e.contains(why),
            "{a}: {e}"
        );
    }
    for ok in [
        "10.12.8.1/32",
        "10.0.0.0/31",
        "fd00::1/64",
        "2001:db8::ffff/127",
    ] {
        assert!(
            Config::parse(&vlan(&format!("id = 5\naddresses = [{ok:?}]")), FILE).is_ok(),
            "{ok}"
        );
    }
}

#[test]
fn duplicates_within_a_network() {
    let text = "[networks.n]\n\
        [[networks.n.vlans]]\nid = 5\nname = \"v5\"\naddresses = [\"10.0.0.1/24\"]\n\
        [[networks.n.vlans]]\nid = 5\nname = \"v5\"\naddresses = [\"10.0.0.1/16\"]\n";
    let e = errors(text);
    assert_eq!(e.len(), 3, "{e:?}");
    assert!(
        e[0].contains(
            "networks.n.vlans[1].id: VLAN 5 is already configured at networks.n.vlans[0]"
        ),
        "{e:?}"
    );
    assert!(
        e[1].contains("networks.n.vlans[1].name: interface v5 is already configured"),
        "{e:?}"
    );
    assert!(
        e[2].contains("networks.n.vlans[1].addresses[0]: address 10.0.0.1 is already configured"),
        "{e:?}"
    );
    assert!(e[0].starts_with(&format!("{FILE}:7:")), "{e:?}");
    assert!(e[1].starts_with(&format!("{FILE}:8:")), "{e:?}");
    assert!(e[2].starts_with(&format!("{FILE}:9:")), "{e:?}");
}

#[test]
fn duplicates_across_networks() {
    let text = "[networks.a]\n[[networks.a.vlans]]\nid = 5\nname = \"v5\"\naddresses = [\"10.0.0.1/24\"]\n\
        [networks.b]\n[[networks.b.vlans]]\nid = 6\nname = \"v5\"\naddresses = [\"10.0.0.1/24\"]\n";
    let e = errors(text);
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(
        e.iter()
            .any(|l| l.contains("networks.b: address 10.0.0.1 is also configured for network a")),
        "{e:?}"
    );
    assert!(
        e.iter()
            .any(|l| l.contains("networks.b: interface v5 is also configured for network a")),
        "{e:?}"
    );
    assert!(
        e.iter().all(|l| l.starts_with(&format!("{FILE}:6:"))),
        "{e:?}"
    );
}

#[test]
fn errors_come_in_file_order() {
    // The clash is found after the whole walk, but its line (b's header)
    // comes before c's mistake.
    let text = "[networks.b]\n[[networks.b.vlans]]\nid = 5\naddresses = [\"10.0.0.1/24\"]\n\
        [networks.a]\n[[networks.a.vlans]]\nid = 6\naddresses = [\"10.0.0.1/24\"]\n\
        [networks.c]\n[[networks.c.vlans]]\nid = 4095\naddresses = []\n";
    let e = errors(text);
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(
        e[0].starts_with(&format!(
            "{FILE}:1: networks.b: address 10.0.0.1 is also configured for network a"
        )),
        "{e:?}"
    );
    assert!(
        e[1].starts_with(&format!("{FILE}:11: networks.c.vlans[0].id: 4095")),
        "{e:?}"
    );
    // The summary shows the first in the file.
    match Config::parse(text, FILE) {
        Err(err) => assert!(err.to_string().starts_with(&format!("{FILE}:1: ")), "{err}"),
        Ok(c) => panic!("accepted: {c:?}"),
    }
}

#[test]
fn unknown_keys_and_wrong_types() {
    assert_eq!(
        one_error("netwroks = 1\n"),
        format!(
            "{FILE}:1: netwroks: unknown key (expected: networks, gateways, domains, metadata)"
        )
    );
    assert_eq!(
        one_error("metadata = \"no\"\n"),
        format!(
            "{FILE}:1: metadata: expected true or false (read network config from libvirt's <metadata>), found string"
        )
    );
    assert!(!Config::parse("metadata = false\n", FILE).unwrap().metadata);
    assert!(Config::parse("", FILE).unwrap().metadata);
    let e = one_error("[networks.n]\nstrct = true\nvlans = []\n");
    assert_eq!(
        e,
        format!(
            "{FILE}:2: networks.n.strct: unknown key (expected: strict, vlans, unnat, firewalld_zone)"
        )
    );
    let e = one_error(&vlan("id = 5\naddresses = []\nmtuu = 1500"));
    assert!(e.contains(":5: networks.1_provider.vlans[0].mtuu: unknown key (expected: id, addresses, name, mtu)"), "{e}");
    assert!(
        one_error("[networks.n]\nstrict = \"yes\"\nvlans = []\n")
            .contains(":2: networks.n.strict: expected true or false, found string")
    );
    assert!(
        one_error(&vlan("id = \"104\"\naddresses = []"))
            .contains("vlans[0].id: expected an integer, found string")
    );
    assert!(
        one_error(&vlan("id = 104\naddresses = \"10.12.8.1/22\""))
            .contains("vlans[0].addresses: expected an array")
    );
    assert!(one_error("networks = 5\n").contains(":1: networks: expected a table, found integer"));
    assert!(one_error("[networks.n]\n").contains("networks.n: missing key `vlans`"));
    assert!(one_error(&vlan("addresses = []")).contains("vlans[0]: missing key `id`"));
    assert!(one_error(&vlan("id = 3")).contains("vlans[0]: missing key `addresses`"));
}

#[test]
fn ipv6_needs_mtu_1280() {
    let e = one_error(&vlan("id = 5\naddresses = [\"fd00::1/64\"]\nmtu = 1000"));
    assert!(e.contains("vlans[0].mtu: 1000 is below 1280"), "{e}");
}

#[test]
fn syntax_errors_have_a_line() {
    let e = one_error("[networks.n]\nstrict = tru\n");
    assert!(
        e.starts_with(&format!("{FILE}:2: TOML syntax error")),
        "{e}"
    );
}

#[test]
fn network_names() {
    assert!(one_error("[networks.\"a/b\"]\nvlans = []\n").contains("cannot contain '/'"));
    let long = "n".repeat(201);
    assert!(
        one_error(&format!("[networks.{long}]\nvlans = []\n")).contains("longer than 200 bytes")
    );
}

#[test]
fn parse_network_ignores_other_networks_mistakes() {
    let text = "[networks.good]\n[[networks.good.vlans]]\nid = 5\naddresses = []\n[networks.bad]\nvlans = 7\n";
    assert!(Config::parse(text, FILE).is_err());
    assert!(Config::parse_network(text, FILE, "good").unwrap().is_some());
    assert!(
        Config::parse_network(text, FILE, "other")
            .unwrap()
            .is_none()
    );
    assert!(Config::parse_network(text, FILE, "bad").is_err());
    // Structural mistakes at the top still count.
    assert!(Config::parse_network("bogus = 1\n", FILE, "good").is_err());
}

fn mentions(text: &str, network: &str) -> bool {
    might_mention(&mut text.as_bytes(), network).unwrap()
}

#[test]
fn prescan_rules_out_only_what_cannot_match() {
    let text = include_str!("../../examples/1_provider.toml");
    assert!(mentions(text, "1_provider"));
    assert!(!mentions(text, "default"));
    assert!(!mentions(text, "provider")); // only inside "1_provider"
    assert!(!mentions(text, "1_provide"));
    assert!(mentions("[networks.\"provider vip\"]", "provider vip"));
    assert!(mentions(
        "networks = { \"x y\" = { strict = true } }",
        "x y"
    ));
    assert!(mentions("[networks.'lit']", "lit"));
    assert!(mentions("networks.n.strict = true", "n"));
    assert!(mentions("n", "n"));
    assert!(!mentions("", "n"));
    // Escapes could spell any name: parse for real.
    assert!(mentions("[networks.\"\\u0061\"]", "a"));
    assert!(mentions("x", "we\"ird"));
    // A non-ASCII neighbour might be Unicode whitespace: not ruled out.
    assert!(mentions("[networks.\u{3000}n]", "n"));
    assert!(mentions("[networks.\"caf\u{e9}\"]", "caf\u{e9}"));
    assert!(!mentions("[networks.\"caf\u{e9}s\"]", "caf\u{e9}"));
}

#[test]
fn prescan_sees_names_split_across_reads() {
    // Each case at every chunk size must give what one whole read gives; the
    // name lands at, before and after every chunk boundary on the way.
    let pad = "# padding\n".repeat(3);
    let cases = [
        (format!("{pad}[networks.net0]\n"), true),
        (format!("{pad}[networks.xnet0]\n"), false),
        (format!("{pad}[networks.net0x]\n"), false),
        (format!("{pad}[networks.xnet0][networks.net0]"), true),
        ("net0".to_string(), true),
        ("net0net0 net0x".to_string(), false),
        ("xnet0 net0".to_string(), true),
        (format!("{pad}[networks.a] # \\"), true),
    ];
    for (text, want) in &cases {
        for chunk in 1..=text.len() + 1 {
            let got = scan(&mut text.as_bytes(), "net0", chunk).unwrap();
            assert_eq!(got, *want, "chunk {chunk}: {text:?}");
        }
    }
}

/// A reader that returns at most `n` bytes per read, like a pipe might.
struct Trickle<'a>(&'a [u8], usize);

impl std::io::Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.1.min(buf.len()).min(self.0.len());
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

#[test]
fn prescan_copes_with_short_reads() {
    let text = "[networks.other]\n[networks.net0]\n";
    for n in 1..8 {
        assert!(scan(&mut Trickle(text.as_bytes(), n), "net0", 4).unwrap());
        assert!(!scan(&mut Trickle(text.as_bytes(), n), "net", 4).unwrap());
    }
}

#[test]
fn strict_hint_reads_invalid_files() {
    let text = "[networks.n]\nstrict = true\nvlans = 5\n";
    assert!(Config::parse_network(text, FILE, "n").is_err());
    assert!(strict_hint(text, "n"));
    assert!(!strict_hint(text, "m"));
    assert!(!strict_hint("garbage [", "n"));
}

#[test]
fn ownership_rules() {
    let p = Path::new("/etc/net-hook/net-hook.toml");
    assert!(check_secure(p, 0, 0o100644).is_ok());
    assert!(check_secure(p, 0, 0o100600).is_ok());
    let e = check_secure(p, 1000, 0o100644).unwrap_err().to_string();
    assert!(
        e.contains("owned by uid 1000, not root") && e.contains("chown root:root"),
        "{e}"
    );
    let e = check_secure(p, 0, 0o100664).unwrap_err().to_string();
    assert!(e.contains("writable by group or others (mode 664)"), "{e}");
    assert!(check_secure(p, 0, 0o100646).is_err());
}

#[test]
fn unnat_table() {
    let text = "[networks.1_provider]\nvlans = []\n[networks.1_provider.unnat]\ndestinations = [\"10.12.8.0/22\", \"fd00:12:8::/64\"]\nbackend = \"nftables\"\n";
    let c = Config::parse(text, FILE).unwrap();
    let u = c.networks["1_provider"].unnat.clone().unwrap();
    assert_eq!(u.destinations.len(), 2);
    assert_eq!(u.sources, None);
    assert_eq!(u.backend, BackendChoice::Nftables);
    // Only unnat, no VLANs: fine.
    assert!(
        Config::parse(
            "[networks.n.unnat]\ndestinations = [\"10.12.8.0/22\"]\n",
            FILE
        )
        .is_ok()
    );
    let u = |body: &str| {
        one_error(&format!(
            "[networks.n]\nvlans = []\n[networks.n.unnat]\n{body}\n"
        ))
    };
    let e = u("destinations = [\"10.12.8.1/22\"]");
    assert!(e.contains(":4: networks.n.unnat.destinations[0]: \"10.12.8.1/22\" is a host address; write the prefix 10.12.8.0/22"), "{e}");
    assert!(u("destinations = []").contains("networks.n.unnat.destinations: is empty"));
    assert!(u("sources = [\"10.12.4.0/22\"]").contains("missing key `destinations`"));
    assert!(
        u("destinations = [\"10.12.8.0/22\"]\nsources = [\"10.12.0.0/16\"]")
            .contains("10.12.0.0/16 overlaps destination 10.12.8.0/22")
    );
    assert!(
        u("destinations = [\"10.12.8.0/22\"]\nbackend = \"pf\"")
            .contains("networks.n.unnat.backend: expected \"auto\"")
    );
    assert!(
        u("destinations = [\"10.12.8.0/22\"]\nzone = 1")
            .contains("networks.n.unnat.zone: unknown key")
    );
}

#[test]
fn load_if_mentions_reads_large_files_in_chunks() {
    // 200 networks (beyond several 16 KiB chunks); the last one is asked for.
    let mut text = String::new();
    for i in 0..200 {
        text += &format!(
            "[networks.net{i:03}]\n[[networks.net{i:03}.vlans]]\nid = 104\naddresses = [\"10.12.8.1/22\"]\n# {}\n",
            "x".repeat(200)
        );
    }
    assert!(text.len() > 3 * 16 * 1024);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("net-hook.toml");
    std::fs::write(&path, &text).unwrap();
    match load_if_mentions(&path, "net199").unwrap() {
        Loaded::Text { text: got, .. } => assert_eq!(got, text),
        _ => panic!("net199 is in the file"),
    }
    assert!(matches!(
        load_if_mentions(&path, "net200").unwrap(),
        Loaded::NotMentioned
    ));
    assert!(matches!(
        load_if_mentions(&dir.path().join("absent.toml"), "net199").unwrap(),
        Loaded::Missing
    ));
}
