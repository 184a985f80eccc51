//! Network-namespace tier: the real binary against a real kernel, each test
//! in its own namespace. Every test needs root and is marked
//! `#[ignore = "needs root"]`: run them with `--include-ignored` (as
//! scripts/test-all does as root); without root they fail. This tier's kernel
//! may lack 802.1Q: VLAN creation itself is covered by the VM tier, and the
//! test that needs it checks both outcomes.

mod common;

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

use common::*;

const CONFIG: &str = "[networks.1_provider]\n[[networks.1_provider.vlans]]\nid = 104\naddresses = [\"10.12.8.1/22\"]\n";
const STRICT: &str = "[networks.1_provider]\nstrict = true\n[[networks.1_provider.vlans]]\nid = 104\naddresses = [\"10.12.8.1/22\"]\n";

#[test]
#[ignore = "needs root"]
fn unmanaged_network_is_a_silent_no_op() {
    let ns = Ns::new("unmanaged");
    // Even a broken file does not matter to a network it cannot name.
    ns.config("this is [not toml\n");
    let xml = started_xml().replace("1_provider", "2_other");
    let o = ns.hook(&["2_other", "started", "begin", "-"], &xml);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        o.stdout.is_empty() && o.stderr.is_empty(),
        "{}",
        text(&o.stderr)
    );
    assert!(
        !ns.run_dir().exists(),
        "an unmanaged network must not touch the run dir"
    );
    // Ops net-hook ignores do not even read the config.
    let o = ns.hook(
        &["1_provider", "port-created", "begin", "-"],
        &hookdata("1_provider_port-created_begin.xml"),
    );
    assert_eq!(o.status.code(), Some(0));
    assert!(o.stderr.is_empty());
}

#[test]
#[ignore = "needs root"]
fn address_conflict_changes_nothing_and_names_the_holder() {
    let ns = Ns::new("conflict");
    ns.provider_bridge();
    // The phase-00 ordering trap: virbr2 still holds metal-admin's old address.
    ns.ip("link add virbr2 type bridge");
    ns.ip("addr add 10.12.8.1/22 dev virbr2");
    ns.config(CONFIG);
    let before = ns.out("-br addr");
    let o = ns.hook(&["1_provider", "started", "begin", "-"], &started_xml());
    assert_eq!(
        o.status.code(),
        Some(0),
        "fail-soft must keep the network up"
    );
    let err = text(&o.stderr);
    assert!(
        err.contains("conflicts with 10.12.8.1/22 on virbr2") && err.contains("fail-soft"),
        "{err}"
    );
    assert_eq!(ns.out("-br addr"), before, "nothing may change");
    assert!(!ns.exists("virbr1.104"));
    let rec = ns.record("1_provider").expect("outcome record");
    assert!(
        rec.contains("result = \"refused\"") && rec.contains("holders = [\"virbr2\"]"),
        "{rec}"
    );

    ns.config(STRICT);
    let o = ns.hook(&["1_provider", "started", "begin", "-"], &started_xml());
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert_eq!(
        err.lines().count(),
        1,
        "libvirt shows this; one line: {err}"
    );
    assert!(
        err.starts_with(
            "net-hook: network \"1_provider\": changed nothing: address 10.12.8.1/22 conflicts"
        ),
        "{err}"
    );
    assert_eq!(ns.out("-br addr"), before);

    // A strict network fails at `start`, before libvirt creates anything
    // (libvirt 9.0 leaks the bridge when `started` fails).
    ns.ip("link del virbr1");
    let o = ns.hook(
        &["1_provider", "start", "begin", "-"],
        &hookdata("1_provider_start_begin.xml"),
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("on virbr2"), "{}", text(&o.stderr));
    ns.ip("addr flush dev virbr2");
    let o = ns.hook(
        &["1_provider", "start", "begin", "-"],
        &hookdata("1_provider_start_begin.xml"),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
}

#[test]
#[ignore = "needs root"]
fn foreign_interface_of_the_target_name_is_left_alone() {
    let ns = Ns::new("foreign");
    ns.provider_bridge();
    ns.ip("link add virbr1.104 type veth peer name peer0");
    ns.config(STRICT);
    let o = ns.hook(&["1_provider", "started", "begin", "-"], &started_xml());
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(
        err.contains(
            "virbr1.104 already exists as a veth device, not VLAN 104 on virbr1; left untouched"
        ),
        "{err}"
    );
    assert!(ns.exists("virbr1.104"));
    assert!(!ns.out("addr show dev virbr1.104").contains("10.12.8.1"));
}

#[test]
#[ignore = "needs root"]
fn started_creates_the_vlan_or_fails_cleanly_without_8021q() {
    let ns = Ns::new("create");
    ns.provider_bridge();
    let has_8021q = ns.has_8021q("virbr1");
    ns.config(CONFIG);
    let o = ns.hook(&["1_provider", "started", "begin", "-"], &started_xml());
    assert_eq!(o.status.code(), Some(0));
    let rec = ns.record("1_provider").unwrap();
    if has_8021q {
        let d = ns.out("-d addr show dev virbr1.104");
        assert!(
            d.contains("vlan protocol 802.1Q id 104")
                && d.contains("10.12.8.1/22")
                && d.contains("alias net-hook:1_provider"),
            "{d}"
        );
        assert!(rec.contains("result = \"ok\""), "{rec}");
    } else {
        let err = text(&o.stderr);
        assert!(
            err.contains("create virbr1.104 (VLAN 104 on virbr1)")
                && err.contains("modprobe 8021q"),
            "{err}"
        );
        assert!(rec.contains("result = \"failed\""), "{rec}");
        assert!(!ns.exists("virbr1.104"), "nothing half-applied");
    }
}

#[test]
#[ignore = "needs root"]
fn stopped_deletes_only_interfaces_marked_for_the_network() {
    let ns = Ns::new("stopped");
    for (dev, alias) in [
        ("own0", Some("net-hook:1_provider")),
        ("other0", Some("net-hook:2_other")),
        ("plain0", None),
    ] {
        ns.bridge(dev, alias);
    }
    ns.config(CONFIG);
    let xml = hookdata("1_provider_stopped_end.xml");
    let o = ns.hook(&["1_provider", "stopped", "end", "-"], &xml);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(!ns.exists("own0"));
    assert!(ns.exists("other0") && ns.exists("plain0"));
    let rec = ns.record("1_provider").unwrap();
    assert!(
        rec.contains("step = \"delete_link\"\nname = \"own0\""),
        "{rec}"
    );
    // Again: the kernel usually removed everything with the bridge already.
    let o = ns.hook(&["1_provider", "stopped", "end", "-"], &xml);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        ns.record("1_provider")
            .unwrap()
            .contains("result = \"unchanged\"")
    );
}

#[test]
#[ignore = "needs root"]
fn bad_input_is_reported_and_changes_nothing() {
    let ns = Ns::new("badinput");
    ns.provider_bridge();
    ns.config(STRICT);
    let o = ns.hook(&["1_provider", "started"], "");
    assert_eq!(o.status.code(), Some(2));
    let cases: Vec<(String, &str)> = vec![
        ("garbage".into(), "stdin is not libvirt hook XML"),
        (
            started_xml()[..120].to_string(),
            "stdin is not libvirt hook XML",
        ),
        (
            started_xml().replace("<bridge name='virbr1' stp='on' delay='0'/>", ""),
            "the network has no bridge",
        ),
        (
            started_xml().replace("<name>1_provider", "<name>other"),
            "stdin describes network \"other\"",
        ),
        (" ".repeat(5 << 20), "larger than 4 MiB"),
    ];
    for (stdin, want) in cases {
        let o = ns.hook(&["1_provider", "started", "begin", "-"], &stdin);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(
            err.contains(want) && err.lines().count() == 1,
            "{want}: {err}"
        );
        assert!(!ns.exists("virbr1.104"));
    }
    // A config the hook cannot trust is refused, softly.
    let p = ns.config(STRICT);
    fs::set_permissions(&p, fs::Permissions::from_mode(0o666)).unwrap();
    let o = ns.hook(&["1_provider", "started", "begin", "-"], &started_xml());
    assert_eq!(o.status.code(), Some(0));
    assert!(
        text(&o.stderr).contains("writable by group or others"),
        "{}",
        text(&o.stderr)
    );
    // An invalid config for a strict network fails it.
    ns.config("[networks.1_provider]\nstrict = true\n[[networks.1_provider.vlans]]\nid = 4095\naddresses = []\n");
    let o = ns.hook(&["1_provider", "started", "begin", "-"], &started_xml());
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr)
            .contains("net-hook.toml:4: networks.1_provider.vlans[0].id: 4095 is not a VLAN ID"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
#[ignore = "needs root"]
fn dry_run_prints_the_plan_and_changes_nothing() {
    let ns = Ns::new("dryrun");
    ns.provider_bridge();
    ns.config(CONFIG);
    let o = ns.hook(
        &["--dry-run", "1_provider", "started", "begin", "-"],
        &started_xml(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(
        out.contains("1. create virbr1.104 (VLAN 104 on virbr1)")
            && out.contains("3. add 10.12.8.1/22 to virbr1.104"),
        "{out}"
    );
    assert!(
        !out.contains("note: bridge"),
        "the bridge exists here: {out}"
    );
    assert!(!ns.exists("virbr1.104"));
    assert!(!ns.run_dir().exists());
}

#[test]
#[ignore = "needs root"]
fn hook_runs_wait_for_each_other() {
    let ns = Ns::new("lock");
    ns.bridge("own0", Some("net-hook:1_provider"));
    ns.config(CONFIG);
    fs::create_dir_all(ns.run_dir()).unwrap();
    // Another run holds the lock until we release it.
    let mut holder = Command::new("flock")
        .arg(ns.run_dir().join("lock"))
        .args(["-c", "read x"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let mut hook = ns
        .hook_cmd(&["1_provider", "stopped", "end", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    hook.stdin
        .take()
        .unwrap()
        .write_all(hookdata("1_provider_stopped_end.xml").as_bytes())
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(
        hook.try_wait().unwrap().is_none(),
        "the hook must wait for the lock"
    );
    assert!(ns.exists("own0"), "nothing changes before the lock is ours");
    drop(holder.stdin.take());
    holder.wait().unwrap();
    let o = hook.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(!ns.exists("own0"));
}

#[test]
#[ignore = "needs root"]
fn concurrent_runs_for_two_networks_both_complete() {
    let ns = Ns::new("concurrent");
    ns.config(&format!(
        "{CONFIG}[networks.2_other]\n[[networks.2_other.vlans]]\nid = 5\naddresses = []\n"
    ));
    for i in 0..20 {
        ns.bridge(&format!("a{i}"), Some("net-hook:1_provider"));
        ns.bridge(&format!("b{i}"), Some("net-hook:2_other"));
    }
    let xml1 = hookdata("1_provider_stopped_end.xml");
    let xml2 = xml1.replace("1_provider", "2_other");
    let spawn = |net: &str, xml: &str| {
        let mut c = ns
            .hook_cmd(&[net, "stopped", "end", "-"])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        c.stdin.take().unwrap().write_all(xml.as_bytes()).unwrap();
        c
    };
    let (h1, h2) = (spawn("1_provider", &xml1), spawn("2_other", &xml2));
    for h in [h1, h2] {
        let o = h.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    }
    for i in 0..20 {
        assert!(!ns.exists(&format!("a{i}")) && !ns.exists(&format!("b{i}")));
    }
    for net in ["1_provider", "2_other"] {
        let rec = ns.record(net).unwrap();
        assert_eq!(rec.matches("step = \"delete_link\"").count(), 20, "{rec}");
    }
}

#[test]
#[ignore = "needs root"]
fn run_as_a_libvirt_hook_path() {
    // Recognised by the path it runs as: libvirt's argv parses as hook args,
    // not as a subcommand.
    let d = tempfile::tempdir().unwrap();
    let nd = d.path().join("hooks/network.d");
    fs::create_dir_all(&nd).unwrap();
    std::os::unix::fs::symlink(BIN, nd.join("50-net-hook")).unwrap();
    let o = Command::new(nd.join("50-net-hook"))
        .args(["install", "port-created", "begin", "-"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    assert!(
        o.stdout.is_empty() && o.stderr.is_empty(),
        "{}",
        text(&o.stderr)
    );
    let o = Command::new(nd.join("50-net-hook"))
        .args(["x"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("expected 4 arguments"));
}

#[test]
#[ignore = "needs root"]
fn a_run_dir_or_config_that_is_not_roots_alone_is_refused_softly() {
    use std::os::unix::fs::{PermissionsExt, symlink};
    let ns = Ns::new("rundir");
    ns.bridge("own0", Some("net-hook:1_provider"));
    let xml = hookdata("1_provider_stopped_end.xml");
    let stopped = |ns: &Ns| ns.hook(&["1_provider", "stopped", "end", "-"], &xml);
    let run = ns.run_dir();
    let elsewhere = ns.dir.path().join("elsewhere");
    fs::create_dir(&elsewhere).unwrap();

    // Fail-soft: exit 0, the reason names the path and the fix, nothing changes.
    ns.config(CONFIG);
    let cases: [(&str, &dyn Fn()); 3] = [
        ("it is a symlink (to ", &|| {
            symlink(&elsewhere, &run).unwrap()
        }),
        ("owned by uid 65534, not root", &|| {
            fs::create_dir(&run).unwrap();
            nix_chown(&run, 65534);
        }),
        ("writable by group or others (mode 775)", &|| {
            fs::create_dir(&run).unwrap();
            fs::set_permissions(&run, fs::Permissions::from_mode(0o775)).unwrap();
        }),
    ];
    for (why, plant) in cases {
        plant();
        let o = stopped(&ns);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(0), "{err}");
        assert!(
            err.contains(&format!("refusing {}: {why}", run.display()))
                && err.contains("fail-soft"),
            "{why}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "said once: {err}");
        assert!(ns.exists("own0"), "nothing changes without the lock");
        assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 0);
        // Strict: the same line, as libvirt's error.
        ns.config(STRICT);
        let o = stopped(&ns);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(
            err.starts_with("net-hook: network \"1_provider\": refusing ")
                && err.lines().count() == 1,
            "{err}"
        );
        ns.config(CONFIG);
        let _ = fs::remove_file(&run);
        let _ = fs::remove_dir_all(&run);
    }
    // A symlink planted as a record is replaced, its target left alone.
    fs::create_dir_all(run.join("networks")).unwrap();
    let target = ns.dir.path().join("precious");
    fs::write(&target, "keep").unwrap();
    symlink(&target, run.join("networks/1_provider.toml")).unwrap();
    let o = stopped(&ns);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(!ns.exists("own0"));
    assert_eq!(fs::read_to_string(&target).unwrap(), "keep");
    assert!(
        ns.record("1_provider")
            .unwrap()
            .contains("op = \"stopped\"")
    );

    // A record that cannot be written is reported, not fatal.
    fs::remove_file(run.join("networks/1_provider.toml")).unwrap();
    fs::write(run.join("networks/1_provider.toml"), "").unwrap();
    fs::set_permissions(run.join("networks"), fs::Permissions::from_mode(0o777)).unwrap();
    ns.bridge("own1", Some("net-hook:1_provider"));
    let o = stopped(&ns);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        err.contains("refusing") && err.contains("networks: writable by group"),
        "{err}"
    );
    fs::set_permissions(run.join("networks"), fs::Permissions::from_mode(0o755)).unwrap();

    // The config: a symlink in its place, or a directory others can write.
    let real = ns.dir.path().join("real.toml");
    fs::write(&real, STRICT).unwrap();
    let cfg = ns.dir.path().join("net-hook.toml");
    fs::remove_file(&cfg).unwrap();
    symlink(&real, &cfg).unwrap();
    ns.bridge("own2", Some("net-hook:1_provider"));
    let o = stopped(&ns);
    let err = text(&o.stderr);
    assert_eq!(
        o.status.code(),
        Some(0),
        "an untrusted strict is not trusted: {err}"
    );
    assert!(
        err.contains("it is a symlink, which net-hook does not follow"),
        "{err}"
    );
    assert!(ns.exists("own2"));
    // ...which does not concern a network the file cannot name.
    let o = ns.hook(
        &["2_other", "stopped", "end", "-"],
        &xml.replace("1_provider", "2_other"),
    );
    assert!(
        o.status.success() && o.stderr.is_empty(),
        "{}",
        text(&o.stderr)
    );
    fs::remove_file(&cfg).unwrap();
    ns.config(CONFIG);
    fs::set_permissions(ns.dir.path(), fs::Permissions::from_mode(0o775)).unwrap();
    let o = stopped(&ns);
    let err = text(&o.stderr);
    assert!(
        err.contains(&format!(
            "refusing config {}: writable by group",
            ns.dir.path().display()
        )),
        "{err}"
    );
    assert!(ns.exists("own2"));
    fs::set_permissions(ns.dir.path(), fs::Permissions::from_mode(0o700)).unwrap();
}

fn nix_chown(p: &std::path::Path, uid: u32) {
    let c = Command::new("chown")
        .arg(uid.to_string())
        .arg(p)
        .status()
        .unwrap();
    assert!(c.success());
}

/// The recorded `started` input with net-hook's element in `<metadata>`.
fn started_with_metadata(element: &str) -> String {
    let xml = started_xml();
    let at = xml.find("</uuid>").expect("recorded XML has a uuid") + "</uuid>".len();
    format!("{}<metadata>{element}</metadata>{}", &xml[..at], &xml[at..])
}

const META: &str = "<nh:net-hook xmlns:nh='urn:net-hook:network:1'><nh:vlan id='104'><nh:address>10.12.8.1/22</nh:address></nh:vlan></nh:net-hook>";

#[test]
#[ignore = "needs root"]
fn a_network_configured_only_in_its_metadata_is_managed() {
    let ns = Ns::new("meta");
    ns.provider_bridge();
    // No config file at all.
    let o = ns.hook(
        &["1_provider", "started", "begin", "-"],
        &started_with_metadata(META),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let rec = ns
        .record("1_provider")
        .expect("the run is recorded: it was managed");
    if ns.has_8021q("virbr1") {
        assert!(ns.exists("virbr1.104"), "{}", text(&o.stderr));
        assert!(rec.contains("result = \"ok\""), "{rec}");
    } else {
        let err = text(&o.stderr);
        assert!(
            err.contains("step 1 of 4 failed: create virbr1.104") && err.contains("modprobe 8021q"),
            "{err}"
        );
        assert!(rec.contains("result = \"failed\""), "{rec}");
    }
    // The same XML without the element: not ours, silently.
    let o = ns.hook(&["1_provider", "stopped", "end", "-"], &started_xml());
    assert!(
        o.status.success() && o.stderr.is_empty(),
        "{}",
        text(&o.stderr)
    );
}

#[test]
#[ignore = "needs root"]
fn file_and_metadata_both_configuring_a_network_is_refused() {
    let ns = Ns::new("both");
    ns.provider_bridge();
    ns.config(CONFIG);
    let before = ns.out("-br addr");
    let o = ns.hook(
        &["1_provider", "started", "begin", "-"],
        &started_with_metadata(META),
    );
    assert_eq!(o.status.code(), Some(0), "fail-soft keeps the network up");
    let err = text(&o.stderr);
    assert!(
        err.contains("is configured both in") && err.contains("net-hook config export 1_provider"),
        "{err}"
    );
    assert_eq!(ns.out("-br addr"), before, "nothing may change");
    assert!(!ns.exists("virbr1.104"));
    assert!(
        ns.record("1_provider")
            .unwrap()
            .contains("result = \"refused\"")
    );
    // The file's strictness decides: libvirt fails the start, before the
    // bridge exists, with that one line.
    ns.config(STRICT);
    let strict_meta = META.replace("<nh:net-hook ", "<nh:net-hook strict='yes' ");
    let o = ns.hook(
        &["1_provider", "start", "begin", "-"],
        &started_with_metadata(META),
    );
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(text(&o.stderr).lines().count(), 1, "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("configured both"));
    // `metadata = false`: only the file counts.
    ns.config(&format!("metadata = false\n{CONFIG}"));
    let o = ns.hook(
        &["1_provider", "start", "begin", "-"],
        &started_with_metadata(&strict_meta),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    // With the file naming the network nowhere, or only in a comment (which
    // the pre-scan cannot rule out).
    for file in [
        "metadata = false\n",
        "metadata = false\n# 1_provider is configured in libvirt\n",
    ] {
        ns.config(file);
        let o = ns.hook(
            &["1_provider", "started", "begin", "-"],
            &started_with_metadata(META),
        );
        assert!(
            o.status.success() && o.stderr.is_empty(),
            "{file}: {}",
            text(&o.stderr)
        );
        assert!(!ns.exists("virbr1.104"));
    }
}

#[test]
#[ignore = "needs root"]
fn invalid_metadata_names_the_network_and_the_attribute() {
    let ns = Ns::new("badmeta");
    ns.provider_bridge();
    let bad = META.replace("id='104'", "id='4095'");
    let o = ns.hook(
        &["1_provider", "started", "begin", "-"],
        &started_with_metadata(&bad),
    );
    assert_eq!(o.status.code(), Some(0));
    let err = text(&o.stderr);
    assert!(
        err.contains("network \"1_provider\": <metadata>")
            && err.contains("vlan[1]/@id: \"4095\" is not a VLAN ID"),
        "{err}"
    );
    assert!(!ns.exists("virbr1.104"));
    assert!(
        ns.record("1_provider")
            .unwrap()
            .contains("result = \"refused\"")
    );
}
