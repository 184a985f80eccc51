//! Property tests of the two parsers that read untrusted input: the config
//! file and the hook's XML on stdin. Whatever the bytes, they return (never
//! panic, never recurse without bound), and every config error names a line
//! of the file. Case counts are kept small: the whole suite runs in seconds.

mod common;

use net_hook::config::{self, Config};
use net_hook::hookdata;
use proptest::prelude::*;

const FILE: &str = "/etc/net-hook/net-hook.toml";

const EXAMPLE: &str = r#"[networks.1_provider]
strict = false
firewalld_zone = "libvirt"
[[networks.1_provider.vlans]]
id = 104
addresses = ["10.12.8.1/22", "fd00:12:8::1/64"]
mtu = 1500
[[networks.1_provider.vlans]]
id = 105
name = "vip105"
addresses = []
[networks.1_provider.unnat]
destinations = ["10.12.8.0/22"]
sources = ["10.12.4.0/22"]
backend = "auto"

[networks."provider vip"]
[[networks."provider vip".vlans]]
id = 300
addresses = ["10.77.0.1/24"]
"#;

/// Pieces of config syntax, so that generated files get past the TOML
/// grammar often enough to reach the schema and value checks.
const TOKENS: &[&str] = &[
    "[networks.",
    "[[networks.",
    "1_provider",
    "\"provider vip\"",
    "'x'",
    ".vlans",
    ".unnat",
    "]",
    "]]",
    "\n",
    " ",
    "=",
    "id = ",
    "104",
    "4095",
    "-1",
    "99999999999999999999",
    "addresses = [",
    "\"10.12.8.1/22\"",
    "\"10.12.8.0/22\"",
    "\"fe80::1/64\"",
    "\"fd00::1/129\"",
    "\"not an address\"",
    ",",
    "{",
    "}",
    "strict = true",
    "strict = \"yes\"",
    "mtu = ",
    "name = \"virbr1.104\"",
    "name = \"a/b\"",
    "destinations = [",
    "backend = \"nft\"",
    "firewalld_zone = ",
    "# comment",
    "\"",
    "'''",
    "\\",
    "\\u0000",
    "1979-05-27T07:32:00Z",
    "inf",
    "nan",
    "0x10",
    "\u{e9}",
    "\r\n",
    "\t",
];

fn token_soup() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(TOKENS), 0..80).prop_map(|t| t.concat())
}

fn bytes_as_text() -> impl Strategy<Value = String> {
    prop::collection::vec(any::<u8>(), 0..600)
        .prop_map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// A valid file with something inserted or cut at a random place.
fn mutated() -> impl Strategy<Value = String> {
    (
        0..=EXAMPLE.len(),
        0..=EXAMPLE.len(),
        prop::sample::select(TOKENS),
    )
        .prop_map(|(a, b, tok)| {
            let (a, b) = (a.min(b), a.max(b));
            let at = |i: usize| {
                (0..=i)
                    .rev()
                    .find(|&j| EXAMPLE.is_char_boundary(j))
                    .unwrap_or(0)
            };
            format!("{}{tok}{}", &EXAMPLE[..at(a)], &EXAMPLE[at(b)..])
        })
}

/// Every error of a config that failed to parse names a line of it.
fn errors_name_lines(
    text: &str,
    res: Result<impl Sized, config::Error>,
) -> Result<(), TestCaseError> {
    let Err(e) = res else { return Ok(()) };
    let config::Error::Invalid(errs) = &e else {
        return Err(TestCaseError::fail(format!("not a validation error: {e}")));
    };
    prop_assert!(!errs.is_empty());
    let lines = text.split('\n').count();
    for err in errs {
        prop_assert!(
            err.line >= 1 && err.line <= lines,
            "line {} of {lines}: {err}",
            err.line
        );
        prop_assert!(
            err.to_string()
                .starts_with(&format!("{FILE}:{}: ", err.line)),
            "{err}"
        );
    }
    let line = e.to_string();
    prop_assert!(!line.contains('\n') || text.contains('\n'), "{line}");
    Ok(())
}

fn check_config(text: &str) -> Result<(), TestCaseError> {
    errors_name_lines(text, Config::parse(text, FILE))?;
    for n in ["1_provider", "provider vip", "x"] {
        let res = Config::parse_network(text, FILE, n);
        // The pre-scan may rule a network out only if parsing would not find it.
        let mentioned = config::might_mention(&mut text.as_bytes(), n).unwrap();
        if let Ok(Some(_)) = &res {
            prop_assert!(mentioned, "pre-scan missed {n:?}");
        }
        errors_name_lines(text, res)?;
        let _ = config::strict_hint(text, n);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn config_parser_never_panics_and_errors_name_a_line(text in prop_oneof![token_soup(), bytes_as_text(), mutated()]) {
        check_config(&text)?;
    }

    #[test]
    fn hook_xml_parser_never_panics(xml in prop_oneof![xml_soup(), bytes_as_text(), xml_mutated()]) {
        let _ = hookdata::parse(&xml);
        let _ = hookdata::read_capped(xml.as_bytes());
    }
}

#[test]
fn every_truncation_of_a_valid_config_is_handled() {
    for i in (0..=EXAMPLE.len()).filter(|&i| EXAMPLE.is_char_boundary(i)) {
        check_config(&EXAMPLE[..i]).unwrap();
    }
    assert!(Config::parse(EXAMPLE, FILE).is_ok());
}

#[test]
fn deeply_nested_and_huge_configs_are_handled() {
    for depth in [10, 1_000, 20_000] {
        let arrays = format!("x = {}{}\n", "[".repeat(depth), "]".repeat(depth));
        let tables = format!("x = {}{}\n", "{a = ".repeat(depth), "}".repeat(depth));
        let keys = format!("{} = 1\n", vec!["a"; depth].join("."));
        let open = format!("x = {}\n", "[".repeat(depth));
        for text in [arrays, tables, keys, open] {
            check_config(&text).unwrap();
        }
    }
    // 2000 networks, 8000 VLANs: valid, and parsed in well under a second.
    let mut big = String::new();
    for i in 0..2000 {
        big.push_str(&format!("[networks.n{i}]\n"));
        for v in 0..4 {
            big.push_str(&format!(
                "[[networks.n{i}.vlans]]\nid = {}\nname = \"n{i}v{v}\"\naddresses = [\"10.{}.{}.1/24\"]\n",
                v + 1,
                i / 64,
                (i % 64) * 4 + v
            ));
        }
    }
    let t = std::time::Instant::now();
    let res = Config::parse(&big, FILE);
    assert!(t.elapsed().as_secs() < 5, "{:?}", t.elapsed());
    assert_eq!(res.map(|c| c.networks.len()).ok(), Some(2000));
}

const XML: &str = "<hookData><network><name>1_provider</name><uuid>3c2a</uuid>\
<forward mode='nat'><nat ipv6='yes'><port start='1024' end='65535'/></nat></forward>\
<bridge name='virbr1' stp='on' delay='0'/><mac address='52:54:00:aa:bb:cc'/>\
<ip address='10.12.4.1' prefix='22'><dhcp><range start='10.12.4.100' end='10.12.4.200'/></dhcp></ip>\
<ip family='ipv6' address='fd00:12:4::1' prefix='64'/></network></hookData>";

const XML_TOKENS: &[&str] = &[
    "<hookData>",
    "</hookData>",
    "<network>",
    "</network>",
    "<name>",
    "</name>",
    "1_provider",
    "<bridge name='virbr1'/>",
    "<bridge name=\"\"/>",
    "<forward mode='nat'/>",
    "<forward>",
    "</forward>",
    "<nat ipv6='yes'/>",
    "<ip address='10.12.4.1' prefix='22'/>",
    "<ip address='::' prefix='300'/>",
    "<ip address='999.1.1.1' netmask='255.0.255.0'/>",
    "<!DOCTYPE network [<!ENTITY a 'b'>]>",
    "&a;",
    "&amp;",
    "&#0;",
    "&#x110000;",
    "<![CDATA[",
    "]]>",
    "<!--",
    "-->",
    "<?xml version='1.0'?>",
    "<?pi?>",
    "xmlns:n='urn:x'",
    "<n:name>",
    "</n:name>",
    "<",
    ">",
    "/>",
    "'",
    "\"",
    "=",
    " ",
    "\n",
    "\u{feff}",
    "\u{0}",
];

fn xml_soup() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(XML_TOKENS), 0..60).prop_map(|t| t.concat())
}

fn xml_mutated() -> impl Strategy<Value = String> {
    (
        0..=XML.len(),
        0..=XML.len(),
        prop::sample::select(XML_TOKENS),
    )
        .prop_map(|(a, b, tok)| {
            let (a, b) = (a.min(b), a.max(b));
            format!("{}{tok}{}", &XML[..a], &XML[b..])
        })
}

#[test]
fn every_truncation_of_recorded_hook_xml_is_handled() {
    let mut inputs = vec![XML.to_string()];
    for e in std::fs::read_dir(common::hookdata_dir()).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "xml") {
            inputs.push(std::fs::read_to_string(p).unwrap());
        }
    }
    for xml in &inputs {
        for i in (0..=xml.len()).filter(|&i| xml.is_char_boundary(i)) {
            let _ = hookdata::parse(&xml[..i]);
        }
    }
    assert!(hookdata::parse(XML).is_ok());
}

#[test]
fn deeply_nested_and_huge_xml_is_handled() {
    for depth in [10, 10_000, 100_000] {
        let open = "<a>".repeat(depth);
        let inside = format!(
            "<network><name>x</name>{}{}</network>",
            "<x>".repeat(depth),
            "</x>".repeat(depth)
        );
        let ip = format!(
            "<network><name>x</name><ip address='10.0.0.1' prefix='8'>{}{}</ip></network>",
            "<dhcp>".repeat(depth),
            "</dhcp>".repeat(depth)
        );
        for xml in [open, inside.clone(), ip] {
            let _ = hookdata::parse(&xml);
        }
        assert_eq!(hookdata::parse(&inside).unwrap().name, "x");
    }
    let many_ips: String = (0..20_000)
        .map(|i| format!("<ip address='10.{}.{}.1' prefix='24'/>", i / 250, i % 250))
        .collect();
    let xml = format!("<network><name>x</name>{many_ips}</network>");
    let t = std::time::Instant::now();
    assert_eq!(hookdata::parse(&xml).unwrap().subnets.len(), 20_000);
    assert!(t.elapsed().as_secs() < 5, "{:?}", t.elapsed());
}
