//! The companion commands against libvirt's test driver (`test:///default`:
//! an active, persistent NAT network `default` on bridge `virbr0`, no daemon
//! needed) and a real kernel in a network namespace. The tests that need root
//! are marked `#[ignore = "needs root"]` (run with `--include-ignored`).

mod common;

use common::*;

const TEST_URI: &str = "--connect=test:///default";
const DEFAULT_NET: &str =
    "[networks.default]\n[[networks.default.vlans]]\nid = 104\naddresses = [\"10.12.8.1/22\"]\n";

fn json(o: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o.stdout)))
}

#[test]
#[ignore = "needs root"]
fn check_reports_each_gate_and_exits_by_the_worst() {
    let ns = Ns::new("check");
    ns.config(DEFAULT_NET);
    // virbr0 is missing in this namespace: G3 fails.
    let o = ns.nh(&[
        "check",
        TEST_URI,
        "default",
        "--json",
        "--hooks-dir",
        "/nonexistent",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let j = json(&o);
    assert_eq!(j["network"], "default");
    assert_eq!(j["result"], "fail");
    let checks = j["checks"].as_array().unwrap();
    let find = |id: &str, needle: &str| {
        checks
            .iter()
            .find(|c| c["id"] == id && c["reason"].as_str().unwrap().contains(needle))
            .unwrap_or_else(|| panic!("no {id} check with {needle:?} in {checks:#?}"))
            .clone()
    };
    assert_eq!(find("CONFIG", "valid")["status"], "pass");
    assert_eq!(find("G3", "virbr0 does not exist")["status"], "fail");
    assert_eq!(find("G4", "is active")["status"], "pass");
    assert_eq!(find("G4", "forward mode nat")["status"], "warn");
    assert_eq!(find("HOOK", "missing")["status"], "fail");
    for id in ["G1", "G2", "G5", "G6"] {
        assert!(checks.iter().any(|c| c["id"] == id), "{id} missing");
    }

    // With the bridge there, G3 passes and G6 sees the VLAN absent.
    ns.ip("link add virbr0 type bridge");
    ns.ip("link set virbr0 up");
    let o = ns.nh(&["check", TEST_URI, "default", "--json"]);
    let j = json(&o);
    let g3 = j["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "G3")
        .unwrap()
        .clone();
    assert_eq!(g3["status"], "pass", "{g3}");

    // Human output: aligned lines and a summary.
    let o = ns.nh(&["check", TEST_URI, "default"]);
    let out = text(&o.stdout);
    assert!(
        out.lines()
            .any(|l| l.starts_with("PASS  G3      virbr0 is a Linux bridge, up")),
        "{out}"
    );
    assert!(
        !out.contains('\x1b'),
        "no colours when stdout is not a terminal"
    );
    assert!(out.contains("network \"default\": "), "{out}");
}

#[test]
#[ignore = "needs root"]
fn check_and_apply_say_when_they_cannot_run() {
    let ns = Ns::new("cantrun");
    ns.config(DEFAULT_NET);
    let o = ns.nh(&["check", TEST_URI, "nosuchnet"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("libvirt has no network \"nosuchnet\""),
        "{}",
        text(&o.stderr)
    );
    let o = ns.nh(&["check", "--connect=test:///nonexistent/file.xml", "default"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("cannot connect to test:///nonexistent/file.xml"),
        "{}",
        text(&o.stderr)
    );
    let o = ns.nh(&["apply", TEST_URI, "other"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("network \"other\" is not in"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
#[ignore = "needs root"]
fn apply_status_teardown_reconcile() {
    let ns = Ns::new("apply");
    ns.config(DEFAULT_NET);
    ns.ip("link add virbr0 type bridge");
    ns.ip("link set virbr0 up");
    // A leftover of a network that is gone from libvirt and the config.
    ns.bridge("old0", Some("net-hook:gone"));

    let o = ns.nh(&["apply", TEST_URI, "--dry-run", "default"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("1. create virbr0.104 (VLAN 104 on virbr0)"),
        "{}",
        text(&o.stdout)
    );
    assert!(!ns.exists("virbr0.104"));

    let o = ns.nh(&["status", TEST_URI, "--json"]);
    assert_eq!(o.status.code(), Some(1), "missing VLAN is drift");
    let j = json(&o);
    assert_eq!(j[0]["state"], "drift");
    assert_eq!(j[0]["vlans"][0]["state"], "missing");

    let has_8021q = ns.has_8021q("virbr0");
    let o = ns.nh(&["apply", TEST_URI, "default"]);
    if has_8021q {
        assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
        assert!(ns.exists("virbr0.104"));
        let again = ns.nh(&["apply", TEST_URI, "default"]);
        assert!(
            again.stdout.is_empty(),
            "a second apply changes nothing: {}",
            text(&again.stdout)
        );
        assert_eq!(
            json(&ns.nh(&["status", TEST_URI, "--json"]))[0]["state"],
            "ok"
        );
    } else {
        assert_eq!(o.status.code(), Some(1));
        assert!(
            text(&o.stderr).contains("modprobe 8021q")
                && text(&o.stderr).contains("step 1 of 4 failed")
                && text(&o.stderr).contains("nothing had been changed"),
            "{}",
            text(&o.stderr)
        );
        assert!(!ns.exists("virbr0.104"));
    }
    let rec = ns.record("default").unwrap();
    assert!(rec.contains("op = \"apply\""), "{rec}");

    // reconcile removes the leftover and leaves everything else alone.
    let o = ns.nh(&["reconcile", TEST_URI]);
    assert!(
        text(&o.stdout).contains("gone: not active; delete old0"),
        "{}",
        text(&o.stdout)
    );
    assert!(!ns.exists("old0") && ns.exists("virbr0"));

    // teardown needs no libvirt and removes only what is marked.
    ns.bridge("mine0", Some("net-hook:default"));
    let o = ns.nh(&["teardown", "default"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("delete mine0"));
    assert!(!ns.exists("mine0") && ns.exists("virbr0"));
    assert_eq!(ns.nh(&["teardown", "default"]).stdout, b"");
}

#[test]
fn the_hook_binary_does_not_link_libvirt() {
    // Loading libvirt costs ~11 ms on every hook run; only net-hook-virt may.
    let ldd = |bin: &str| {
        text(
            &std::process::Command::new("ldd")
                .arg(bin)
                .output()
                .unwrap()
                .stdout,
        )
    };
    let hook = ldd(BIN);
    assert!(hook.contains("libc.so"), "ldd output looks wrong: {hook}");
    assert!(!hook.contains("libvirt"), "{hook}");
    assert!(ldd(env!("CARGO_BIN_EXE_net-hook-virt")).contains("libvirt.so"));
}

#[test]
#[ignore = "needs root"]
fn teardown_all_removes_everything_net_hook_owns_and_nothing_else() {
    let ns = Ns::new("tdall");
    for (dev, alias) in [
        ("a0", Some("net-hook:one")),
        ("b0", Some("net-hook:two")),
        ("keep0", Some("admin")),
        ("keep1", None),
    ] {
        ns.bridge(dev, alias);
    }
    // Words split at single spaces, as the shell would split these.
    let nsx = |cmd: &str| {
        let w: Vec<&str> = cmd.split(' ').collect();
        ns.run(w[0], &w[1..], None);
    };
    nsx(
        "iptables -w -t nat -A POSTROUTING -s 10.1.0.0/16 -d 10.2.0.0/16 -m comment --comment net-hook:gone -j RETURN",
    );
    nsx("iptables -w -t nat -A POSTROUTING -s 10.3.0.0/16 -j MASQUERADE");
    nsx("nft add table ip net_hook");
    nsx("nft add table ip other");
    let o = ns.nh(&["teardown", "--all", "--dry-run"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(ns.exists("a0"), "a dry run changes nothing");
    let o = ns.nh(&["teardown", "--all"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(
        out.contains("one: delete a0") && out.contains("two: delete b0"),
        "{out}"
    );
    assert!(!ns.exists("a0") && !ns.exists("b0") && ns.exists("keep0") && ns.exists("keep1"));
    let ipt = text(
        &ns.exec("iptables", &["-t", "nat", "-S", "POSTROUTING"], None)
            .stdout,
    );
    assert!(
        !ipt.contains("net-hook:") && ipt.contains("MASQUERADE"),
        "{ipt}"
    );
    let nft = text(&ns.exec("nft", &["list", "tables"], None).stdout);
    assert!(
        !nft.contains("net_hook") && nft.contains("table ip other"),
        "{nft}"
    );
    assert!(
        ns.nh(&["teardown"]).status.code() == Some(2),
        "a network or --all is required"
    );
}

/// A test-driver node whose network `metanet` carries its config in
/// `<metadata>`, and `metafile`, which the file configures as well.
fn metadata_node(ns: &Ns) -> String {
    let meta = "<metadata><nh:net-hook xmlns:nh='urn:net-hook:network:1'><nh:vlan id='104'>\
                <nh:address>10.12.8.1/22</nh:address></nh:vlan></nh:net-hook></metadata>";
    let node = format!(
        "<node><network><name>metanet</name>{meta}<forward mode='nat'/><bridge name='virbr9'/>\
         <ip address='10.12.4.1' prefix='22'/></network>\
         <network><name>metafile</name>{}<forward mode='nat'/><bridge name='virbr8'/>\
         <ip address='10.13.4.1' prefix='22'/></network></node>",
        meta.replace("104", "105").replace("10.12.8.1", "10.13.8.1")
    );
    let p = ns.dir.path().join("node.xml");
    std::fs::write(&p, node).unwrap();
    format!("--connect=test://{}", p.display())
}

#[test]
#[ignore = "needs root"]
fn status_check_and_export_know_where_a_networks_config_comes_from() {
    let ns = Ns::new("metacmd");
    let uri = metadata_node(&ns);
    ns.config("[networks.metafile]\n[[networks.metafile.vlans]]\nid = 7\naddresses = []\n");
    let o = ns.nh(&["status", &uri, "--json"]);
    let j = json(&o);
    let by = |n: &str| {
        j.as_array()
            .unwrap()
            .iter()
            .find(|x| x["network"] == n)
            .unwrap_or_else(|| panic!("{n} missing: {j}"))
            .clone()
    };
    assert_eq!(by("metanet")["config"], "metadata");
    assert_eq!(by("metanet")["vlans"][0]["id"], 104);
    assert_eq!(by("metanet")["vlans"][0]["state"], "missing");
    assert_eq!(by("metafile")["config"], serde_json::Value::Null);
    assert!(
        by("metafile")["config_error"]
            .as_str()
            .unwrap()
            .contains("configured both"),
        "{j}"
    );
    assert_eq!(o.status.code(), Some(1), "drift: nothing is up");
    let o = ns.nh(&["check", &uri, "metanet", "--json"]);
    let c = json(&o);
    let config = c["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == "CONFIG")
        .unwrap()
        .clone();
    assert_eq!(config["status"], "pass");
    assert!(
        config["reason"].as_str().unwrap().contains("<metadata>"),
        "{config}"
    );
    // `metadata = false` in the file: only the file counts.
    ns.config("metadata = false\n[networks.metafile]\n[[networks.metafile.vlans]]\nid = 7\naddresses = []\n");
    let j = json(&ns.nh(&["status", &uri, "--json"]));
    let names: Vec<&str> = j
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["network"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["metafile"]);
    assert_eq!(j[0]["config"], "file");
    // export prints the file's config as metadata, which parses back the same.
    let o = ns.nh(&["config", "export", "metafile"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(
        text(&o.stdout),
        "<nh:net-hook xmlns:nh=\"urn:net-hook:network:1\">\n  <nh:vlan id=\"7\"/>\n</nh:net-hook>\n"
    );
    let o = ns.nh(&["config", "export", "nonesuch"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("\"nonesuch\" is not in"),
        "{}",
        text(&o.stderr)
    );
}
