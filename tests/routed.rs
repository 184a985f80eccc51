//! Routed interfaces over the qemu hook protocol, the real binary against a
//! real kernel in a network namespace (root: `#[ignore = "needs root"]`),
//! with input recorded from libvirt 9.0. This tier's kernel may lack dummy
//! devices: the gateway test checks the outcome the kernel allows (the VM
//! tier covers the rest on the Debian kernel).

mod common;

use std::process::Command;

use common::*;

const CONFIG: &str = include_str!("../examples/routed.toml");

fn qemu_xml(op: &str, mode: &str) -> String {
    std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!(
            "tests/hookdata/qemu-9.0/routed-demo_{op}_{mode}.xml"
        )),
    )
    .unwrap()
}

fn precreated() -> String {
    CONFIG.replace(
        "tap = \"tap-routed-demo\"",
        "tap = \"tap-routed-demo\"\ntap_mode = \"precreated\"",
    )
}

/// Whether this kernel can create dummy devices (probed in the namespace).
fn has_dummy(ns: &Ns) -> bool {
    ns.can_add(&["probe", "type", "dummy"])
}

#[test]
#[ignore = "needs root"]
fn an_unconfigured_domain_and_an_ignored_op_do_nothing_and_print_nothing() {
    let ns = Ns::new("qemu-none");
    ns.config(CONFIG);
    let xml = qemu_xml("prepare_begin", "managed").replace("routed-demo", "other-vm");
    let o = ns.hook(&["--qemu", "other-vm", "prepare", "begin", "-"], &xml);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        o.stdout.is_empty() && o.stderr.is_empty(),
        "{}",
        text(&o.stderr)
    );
    assert!(
        !ns.run_dir().exists(),
        "no run dir for a domain not configured"
    );
    // migrate and restore filter the XML through stdout: it must stay empty.
    for op in ["migrate", "restore", "attach"] {
        let o = ns.hook(
            &["--qemu", "routed-demo", op, "begin", "-"],
            &qemu_xml("prepare_begin", "managed"),
        );
        assert_eq!(o.status.code(), Some(0), "{op}");
        assert!(
            o.stdout.is_empty() && o.stderr.is_empty(),
            "{op}: {}",
            text(&o.stdout)
        );
    }
    assert!(!ns.run_dir().exists());
}

#[test]
#[ignore = "needs root"]
fn prepare_makes_the_gateway_and_tap_or_changes_nothing() {
    let ns = Ns::new("qemu-prep");
    ns.config(&precreated());
    let xml = qemu_xml("prepare_begin", "precreated");
    let o = ns.hook(&["--qemu", "routed-demo", "prepare", "begin", "-"], &xml);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "fail-soft: {err}");
    assert!(o.stdout.is_empty(), "nothing on stdout");
    let rec = std::fs::read_to_string(ns.run_dir().join("domains/routed-demo.toml"))
        .expect("an outcome record");
    if has_dummy(&ns) {
        let gw = ns.out("-d addr show dev virgw-service");
        assert!(gw.contains("link/ether 52:54:00:"), "{gw}");
        assert!(
            gw.contains("inet 172.31.16.1/24") && gw.contains("noprefixroute"),
            "{gw}"
        );
        assert!(gw.contains("alias net-hook-gw"), "{gw}");
        assert_eq!(
            ns.out("route show 172.31.16.0/24"),
            "",
            "no connected route"
        );
        let tap = ns.out("-d link show dev tap-routed-demo");
        assert!(
            tap.contains("tun type tap") && tap.contains("persist on"),
            "{tap}"
        );
        assert!(tap.contains("fe:54:00:1e:10:0a"), "{tap}");
        assert!(rec.contains("result = \"ok\""), "{rec}");
        // started: the route and the neighbour entry via the tap.
        let o = ns.hook(
            &["--qemu", "routed-demo", "started", "begin", "-"],
            &qemu_xml("started_begin", "precreated"),
        );
        assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
        let r = ns.out("route show 172.31.16.10/32");
        assert!(r.contains("dev tap-routed-demo proto 200"), "{r}");
        let n = ns.out("neigh show 172.31.16.10 dev tap-routed-demo");
        assert!(
            n.contains("52:54:00:1e:10:0a") && n.contains("PERMANENT"),
            "{n}"
        );
        let o = ns.hook(
            &["--qemu", "routed-demo", "release", "end", "-"],
            &qemu_xml("release_end", "precreated"),
        );
        assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
        assert!(
            !ns.exists("tap-routed-demo"),
            "release deletes the pre-created tap"
        );
        assert!(ns.exists("virgw-service"), "the gateway stays");
    } else {
        // The gateway cannot be made: the whole op is refused or rolled
        // back, the operator is told what to do, and nothing is left.
        assert!(
            err.contains("domain routed-demo") && err.contains("modprobe dummy"),
            "{err}"
        );
        assert!(err.contains("fail-soft"), "{err}");
        assert!(!ns.exists("virgw-service") && !ns.exists("tap-routed-demo"));
        assert!(rec.contains("result = \"failed\""), "{rec}");
        // strict: the start fails, with the one line libvirt shows.
        ns.config(&precreated().replace(
            "[domains.routed-demo]\n",
            "[domains.routed-demo]\nstrict = true\n",
        ));
        let o = ns.hook(&["--qemu", "routed-demo", "prepare", "begin", "-"], &xml);
        assert_eq!(o.status.code(), Some(1));
        let err = text(&o.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.starts_with("net-hook: domain \"routed-demo\": step 1 of"),
            "{err}"
        );
        assert!(!ns.exists("virgw-service") && !ns.exists("tap-routed-demo"));
    }
}

#[test]
#[ignore = "needs root"]
fn stopped_removes_only_the_configured_routes_and_entries() {
    let ns = Ns::new("qemu-stop");
    ns.config(CONFIG);
    // A tap as libvirt leaves it, with net-hook's route and entry, and a
    // route of someone else's beside them.
    ns.ip("tuntap add dev tap-routed-demo mode tap");
    ns.ip("link set tap-routed-demo up");
    ns.ip("route add 172.31.16.10/32 dev tap-routed-demo proto 200");
    ns.ip("route add 172.31.16.99/32 dev tap-routed-demo proto 200");
    ns.ip("route add 172.31.16.10/32 dev tap-routed-demo proto static table 100");
    ns.ip("neigh add 172.31.16.10 lladdr 52:54:00:1e:10:0a dev tap-routed-demo nud permanent");
    let o = ns.hook(
        &["--qemu", "routed-demo", "stopped", "end", "-"],
        &qemu_xml("stopped_end", "managed"),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(ns.out("route show 172.31.16.10/32"), "");
    assert_eq!(ns.out("neigh show 172.31.16.10 dev tap-routed-demo"), "");
    assert!(
        ns.out("route show 172.31.16.99/32").contains("proto 200"),
        "not configured: kept"
    );
    assert!(
        ns.out("route show table 100").contains("172.31.16.10"),
        "another table's: kept"
    );
    assert!(
        ns.exists("tap-routed-demo"),
        "libvirt's tap is libvirt's to delete"
    );
    let o = ns.hook(
        &["--qemu", "routed-demo", "stopped", "end", "-"],
        &qemu_xml("stopped_end", "managed"),
    );
    assert_eq!(o.status.code(), Some(0));
    assert!(
        text(&o.stderr).contains("nothing to do"),
        "idempotent: {}",
        text(&o.stderr)
    );
}

#[test]
fn routed_xml_prints_the_interface_for_a_configured_tap() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("net-hook.toml");
    std::fs::write(&cfg, precreated()).unwrap();
    let o = Command::new(BIN)
        .arg("--config")
        .arg(&cfg)
        .args([
            "routed",
            "xml",
            "routed-demo",
            "tap-routed-demo",
            "--mac",
            "52:54:00:1e:10:0a",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let x = text(&o.stdout);
    assert!(x.contains("<interface type='ethernet'>"), "{x}");
    assert!(
        x.contains("<target dev='tap-routed-demo' managed='no'/>"),
        "{x}"
    );
    assert!(x.contains("<mac address='52:54:00:1e:10:0a'/>"), "{x}");
    let o = Command::new(BIN)
        .arg("--config")
        .arg(&cfg)
        .args(["routed", "xml", "routed-demo", "tap-nope"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("no interface with tap = \"tap-nope\""),
        "{}",
        text(&o.stderr)
    );
}
