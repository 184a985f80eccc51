//! Real packets across libvirt's NAT: the `unnat` exemption keeps traffic
//! from 1_provider to the provider-vip plane unmasqueraded. Needs root: every
//! test is marked `#[ignore = "needs root"]` (run with `--include-ignored`).
//!
//! Three namespaces per test. "router" is the libvirt host: bridge virbr1
//! with 10.12.4.1/22, ip_forward=1 and libvirt's exact rules, loaded from
//! tests/firewall/ (recorded from libvirtd 9.0 for iptables; written from
//! libvirt's source for nftables). "client" is a guest on virbr1
//! (10.12.5.20/22). "server" sits behind a veth whose router end holds
//! 10.12.8.1/22: this machine's kernel has no 802.1Q, so a plain interface
//! stands in for virbr1.104, and the config has `vlans = []` so the hook
//! manages only the exemption. A UDP datagram from client to server shows
//! which source address the server sees.
//!
//! `cargo test --test unnat baseline -- --include-ignored` checks the harness and the rule shapes
//! by hand, without net-hook's feature; the other tests drive the hook.

mod common;

use std::fs::{self, File};
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use common::*;

const ROUTER: Ipv4Addr = Ipv4Addr::new(10, 12, 8, 1);
const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 12, 5, 20);
const SERVER: Ipv4Addr = Ipv4Addr::new(10, 12, 8, 50);

/// strict: a failure is exit 1 with the reason, not a silent exit 0.
const UNNAT: &str = "[networks.1_provider]\nstrict = true\nvlans = []\n\n[networks.1_provider.unnat]\ndestinations = [\"10.12.8.0/22\"]\n";

/// libvirt's recorded iptables rules, each with the program that loads it.
const IPT_FIXTURES: [(&str, &str); 2] = [
    ("iptables-restore", "libvirt-9.0/iptables-save.txt"),
    ("ip6tables-restore", "libvirt-9.0/ip6tables-save.txt"),
];
/// How `iptables -S` prints net-hook's rule (it quotes the comment).
const IPT_EXEMPTION: &str = "-A POSTROUTING -s 10.12.4.0/22 -d 10.12.8.0/22 -m comment --comment \"net-hook:1_provider\" -j RETURN";
/// The nftables backend's own tables, `table ip net_hook` and `table ip6 net_hook`:
/// NFT_TABLE in src/firewall.rs, written out so that a rename fails these tests.
const NFT_TABLE: &str = "net_hook";
const NFT_EXEMPTION: &str = "ip saddr 10.12.4.0/22 ip daddr 10.12.8.0/22 snat ip prefix to ip saddr map { 10.12.4.0/22 : 10.12.4.0/22 }";

#[derive(Clone, Copy, PartialEq, Debug)]
enum Backend {
    Iptables,
    Nftables,
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/firewall")
        .join(name)
}

fn read_fixture(name: &str) -> String {
    let p = fixture(name);
    fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Runs `f` on a thread that entered namespace `ns`; sockets it creates stay
/// in that namespace after the thread ends.
fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let fd = File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        // SAFETY: setns on a valid namespace fd; affects only this thread.
        let rc = unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {path}: {}", io::Error::last_os_error());
        f()
    })
    .join()
    .unwrap()
}

/// `iptables-save` output without the dated comments and chain counters, so
/// two dumps compare equal when the rules are equal.
fn stable_save(dump: &str) -> String {
    dump.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| match (l.starts_with(':'), l.rfind(" [")) {
            (true, Some(i)) => &l[..i],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// An iptables-restore script that does what libvirt does to its rules on a
/// reload (SIGHUP, daemon restart, net-update): delete every rule in its
/// LIBVIRT_* chains and insert them again. The jumps from the built-in chains
/// stay: libvirt re-inserts a jump only if it is missing (iptablesPrivateChainCreate
/// in libvirt's src/network/network_iptables.c, src/util/viriptables.c in 9.0;
/// observed by tests/vm/scenarios/record-firewall.sh: rule handles change,
/// the jump stays where it was).
fn iptables_reload_script(saved: &str) -> String {
    let mut out = String::new();
    for l in saved.lines() {
        if l.starts_with('*') || l == "COMMIT" || l.starts_with("-A LIBVIRT_") {
            out.push_str(l);
            out.push('\n');
        } else if let Some(rest) = l.strip_prefix(":LIBVIRT_") {
            let chain = rest.split(' ').next().unwrap();
            out.push_str(&format!("-F LIBVIRT_{chain}\n"));
        }
    }
    out
}

static NEXT_PORT: AtomicU16 = AtomicU16::new(20000);

/// The libvirt host, a guest on its bridge and a server on the provider-vip
/// plane; the namespaces go away on drop.
struct Lab {
    backend: Backend,
    /// `nft list tables` with libvirt's rules loaded, before net-hook ran.
    tables_before: String,
    router: Ns,
    client: Ns,
    server: Ns,
}

impl Lab {
    /// The topology with libvirt's rules for `backend` in the router.
    fn new(tag: &str, backend: Backend) -> Lab {
        let mut lab = Lab::bare(tag, backend);
        lab.load_libvirt();
        lab.tables_before = lab.nft_tables();
        lab
    }

    /// The topology without any firewall rule.
    fn bare(tag: &str, backend: Backend) -> Lab {
        let lab = Lab {
            backend,
            tables_before: String::new(),
            router: Ns::new(&format!("{tag}-r")),
            client: Ns::new(&format!("{tag}-c")),
            server: Ns::new(&format!("{tag}-s")),
        };
        let (r, c, s) = (&lab.router, &lab.client, &lab.server);
        // libvirt's bridge has stp='on' delay='0', which the kernel raises to
        // 2 s of listening plus 2 s of learning per new port; STP is
        // irrelevant to NAT, so this bridge forwards at once.
        r.ip("link add virbr1 type bridge stp_state 0 forward_delay 0");
        r.ip("addr add 10.12.4.1/22 dev virbr1");
        r.ip("link set virbr1 up");
        r.ip(&format!(
            "link add vguest type veth peer name eth0 netns {}",
            c.name
        ));
        r.ip("link set vguest master virbr1 up");
        c.ip("addr add 10.12.5.20/22 dev eth0");
        c.ip("link set eth0 up");
        c.ip("route add default via 10.12.4.1");
        // Stands in for virbr1.104 = 10.12.8.1/22.
        r.ip(&format!(
            "link add vip104 type veth peer name eth0 netns {}",
            s.name
        ));
        r.ip("addr add 10.12.8.1/22 dev vip104");
        r.ip("link set vip104 up");
        s.ip("addr add 10.12.8.50/22 dev eth0");
        s.ip("link set eth0 up");
        s.ip("route add default via 10.12.8.1");
        r.run("sysctl", &["-qw", "net.ipv4.ip_forward=1"], None);
        lab.router.config(UNNAT);
        lab
    }

    fn load_libvirt(&self) {
        match self.backend {
            Backend::Iptables => {
                let v = self.router.run("iptables", &["-V"], None);
                if !v.contains("nf_tables") {
                    eprintln!("note: iptables is not iptables-nft here: {}", v.trim());
                }
                self.ipt_restore(&["-w"], |saved| saved);
            }
            Backend::Nftables => {
                let f = fixture("libvirt-nftables.nft");
                self.router.run("nft", &["-f", f.to_str().unwrap()], None);
            }
        }
    }

    /// libvirt reloading its rules: removed, then inserted again at the head
    /// of its own chains.
    fn reload_libvirt(&self) {
        match self.backend {
            Backend::Iptables => {
                self.ipt_restore(&["-w", "--noflush"], |saved| iptables_reload_script(&saved));
            }
            Backend::Nftables => {
                // Worst case for anything living in libvirt's tables.
                self.delete_libvirt_nft_tables();
                self.load_libvirt();
            }
        }
    }

    /// For each of IPT_FIXTURES, in order: `PROG ARGS` in the router with
    /// `script(fixture)` as its stdin.
    fn ipt_restore(&self, args: &[&str], script: impl Fn(String) -> String) {
        for (prog, file) in IPT_FIXTURES {
            self.router
                .run(prog, args, Some(&script(read_fixture(file))));
        }
    }

    fn delete_libvirt_nft_tables(&self) {
        self.router.run(
            "nft",
            &["delete table ip libvirt_network; delete table ip6 libvirt_network"],
            None,
        );
    }

    /// What libvirt has done when it runs `stopped`: its rules are gone (its
    /// chains and the jumps to them stay: observed on 9.0 after net-destroy),
    /// and so is the bridge.
    fn libvirt_stops(&self) {
        match self.backend {
            Backend::Iptables => {
                self.ipt_restore(&["-w", "--noflush"], |saved| {
                    iptables_reload_script(&saved)
                        .lines()
                        .filter(|l| !l.starts_with("-A "))
                        .map(|l| format!("{l}\n"))
                        .collect()
                });
            }
            Backend::Nftables => {
                // libvirt deletes its rules by handle; its chains and the
                // jumps in `forward` stay.
                let chains = ["guest_output", "guest_input", "guest_cross", "guest_nat"];
                let mut script = String::new();
                for chain in chains {
                    script.push_str(&format!("flush chain ip libvirt_network {chain}\n"));
                }
                self.router.run("nft", &["-f", "-"], Some(&script));
            }
        }
        self.router.ip("link del virbr1");
    }

    /// The source address the server sees for a new UDP flow from the client.
    /// Each probe uses its own port, on both ends: a conntrack entry keeps
    /// its NAT decision, so a reused 5-tuple would show the old one; and the
    /// previous server socket may outlive its drop for a moment (a child that
    /// a parallel test forked meanwhile holds it until its exec).
    fn probe(&self) -> Ipv4Addr {
        let port = NEXT_PORT.fetch_add(1, Ordering::Relaxed);
        let srv = in_netns(&self.server.name, move || {
            UdpSocket::bind(SocketAddrV4::new(SERVER, port))
        })
        .expect("bind the server socket");
        srv.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let cli = in_netns(&self.client.name, move || {
            UdpSocket::bind(SocketAddrV4::new(CLIENT, port))
        })
        .expect("bind the client socket");
        let mut buf = [0u8; 64];
        // The first datagram waits for ARP; a lost one is resent on the same
        // flow. Bounded: at most 3 x 500 ms.
        for _ in 0..3 {
            cli.send_to(b"net-hook unnat probe", (SERVER, port))
                .expect("send");
            match srv.recv_from(&mut buf) {
                Ok((_, SocketAddr::V4(from))) => return *from.ip(),
                Ok((_, from)) => panic!("unexpected source {from}"),
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        || e.kind() == io::ErrorKind::TimedOut => {}
                Err(e) => panic!("recv: {e}"),
            }
        }
        panic!(
            "no datagram from the client reached the server in 1.5 s; router:\n{}",
            self.router.out("-br addr")
        );
    }

    fn hook(&self, op: &str) {
        let (args, xml) = match op {
            "started" => (["1_provider", "started", "begin", "-"], started_xml()),
            "stopped" => (
                ["1_provider", "stopped", "end", "-"],
                hookdata("1_provider_stopped_end.xml"),
            ),
            _ => unreachable!(),
        };
        let o = self.router.hook(&args, &xml);
        assert_eq!(
            o.status.code(),
            Some(0),
            "net-hook hook 1_provider {op}: {}",
            text(&o.stderr)
        );
    }

    fn iptables_save(&self) -> String {
        stable_save(&self.router.run("iptables-save", &[], None))
    }

    fn ip6tables_save(&self) -> String {
        stable_save(&self.router.run("ip6tables-save", &[], None))
    }

    /// The whole nftables ruleset (iptables-nft's tables included), without counters.
    fn nft_ruleset(&self) -> String {
        self.router.run("nft", &["-s", "list", "ruleset"], None)
    }

    fn nft_tables(&self) -> String {
        self.router.run("nft", &["list", "tables"], None)
    }

    fn nft_table(&self, family_name: &str) -> String {
        let mut args = vec!["-s", "list", "table"];
        args.extend(family_name.split(' '));
        self.router.run("nft", &args, None)
    }

    /// nat POSTROUTING's rules in order, as `iptables -S` prints them.
    fn postrouting(&self) -> Vec<String> {
        self.router
            .run("iptables", &["-w", "-t", "nat", "-S", "POSTROUTING"], None)
            .lines()
            .filter(|l| l.starts_with("-A "))
            .map(str::to_string)
            .collect()
    }

    /// Everything both firewalls hold, for "nothing changed" comparisons.
    fn snapshot(&self) -> String {
        format!(
            "{}\n{}\n{}",
            self.iptables_save(),
            self.ip6tables_save(),
            self.nft_ruleset()
        )
    }

    /// net-hook's exemption is in place, once, where the backend puts it.
    fn assert_exemption_installed(&self, when: &str) {
        let v4 = self.iptables_save();
        let v6 = self.ip6tables_save();
        match self.backend {
            Backend::Iptables => {
                let tables = self.nft_tables();
                let pr = self.postrouting();
                assert_eq!(
                    pr.first().map(String::as_str),
                    Some(IPT_EXEMPTION),
                    "{when}: the exemption must be first in nat POSTROUTING: {pr:#?}"
                );
                assert_eq!(
                    v4.matches("net-hook:").count(),
                    1,
                    "{when}: one rule:\n{v4}"
                );
                assert!(!v6.contains("net-hook:"), "{when}: no IPv6 subnet:\n{v6}");
                assert_eq!(
                    tables, self.tables_before,
                    "{when}: libvirt uses iptables, so must net-hook"
                );
            }
            Backend::Nftables => {
                let t = self.nft_table(&format!("ip {NFT_TABLE}"));
                assert!(
                    t.contains("type nat hook postrouting priority srcnat - 1;"),
                    "{when}: a nat chain just before libvirt's srcnat:\n{t}"
                );
                assert_eq!(
                    t.matches(NFT_EXEMPTION).count(),
                    1,
                    "{when}: one identity snat rule:\n{t}"
                );
                assert_eq!(t.matches(" snat ").count(), 1, "{when}:\n{t}");
                assert!(
                    !v4.contains("net-hook:") && !v6.contains("net-hook:"),
                    "{when}: libvirt uses nftables, so must net-hook:\n{v4}\n{v6}"
                );
            }
        }
    }

    /// No trace of net-hook in either firewall.
    fn assert_no_exemption(&self, when: &str) {
        let v4 = self.iptables_save();
        let v6 = self.ip6tables_save();
        let tables = self.nft_tables();
        assert!(
            !v4.contains("net-hook:") && !v6.contains("net-hook:"),
            "{when}:\n{v4}\n{v6}"
        );
        // Spelling-proof: exactly the tables there were before net-hook ran.
        assert_eq!(tables, self.tables_before, "{when}: a table left behind");
    }

    /// libvirt's own rules, to show net-hook never touches them.
    fn libvirt_rules(&self) -> String {
        match self.backend {
            Backend::Iptables => format!("{}\n{}", self.iptables_save(), self.ip6tables_save())
                .lines()
                .filter(|l| !l.contains("net-hook:"))
                .collect::<Vec<_>>()
                .join("\n"),
            Backend::Nftables => format!(
                "{}\n{}",
                self.nft_table("ip libvirt_network"),
                self.nft_table("ip6 libvirt_network")
            ),
        }
    }
}

/// The harness and libvirt's rules alone: the probe sees routing, then
/// libvirt's masquerade, across a simulated reload.
fn baseline(tag: &str, backend: Backend) -> Lab {
    let lab = Lab::bare(tag, backend);
    assert_eq!(lab.probe(), CLIENT, "plain routing keeps the source");
    lab.load_libvirt();
    assert_eq!(lab.probe(), ROUTER, "libvirt masquerades 10.12.4.0/22");
    lab.reload_libvirt();
    assert_eq!(lab.probe(), ROUTER, "still masqueraded after a reload");
    lab
}

#[test]
#[ignore = "needs root"]
fn baseline_iptables_libvirt_masquerades_and_a_head_return_exempts() {
    let lab = baseline("unnat-bi", Backend::Iptables);
    // The rule net-hook's iptables backend adds, by hand.
    let rule = "-s 10.12.4.0/22 -d 10.12.8.0/22 -m comment --comment net-hook:1_provider -j RETURN";
    let ipt = |cmd: &str| {
        let args: Vec<&str> = cmd.split(' ').chain(rule.split(' ')).collect();
        lab.router.run("iptables", &args, None);
    };
    ipt("-w -t nat -I POSTROUTING 1");
    assert_eq!(lab.postrouting()[0], IPT_EXEMPTION);
    assert_eq!(lab.probe(), CLIENT);
    lab.reload_libvirt();
    assert_eq!(lab.postrouting()[0], IPT_EXEMPTION, "survives the reload");
    assert_eq!(lab.probe(), CLIENT);
    // Only if the jump itself goes missing does libvirt insert it again, at
    // the head: then the exemption sits behind it and no longer works.
    let jump = |cmd: &str| {
        let args: Vec<&str> = cmd.split(' ').collect();
        lab.router.run("iptables", &args, None);
    };
    jump("-w -t nat -D POSTROUTING -j LIBVIRT_PRT");
    jump("-w -t nat -I POSTROUTING 1 -j LIBVIRT_PRT");
    assert_eq!(lab.postrouting()[1], IPT_EXEMPTION);
    assert_eq!(lab.probe(), ROUTER, "behind libvirt's jump");
    ipt("-w -t nat -D POSTROUTING");
    assert_eq!(lab.postrouting(), ["-A POSTROUTING -j LIBVIRT_PRT"]);
}

#[test]
#[ignore = "needs root"]
fn baseline_nftables_libvirt_masquerades_and_an_identity_snat_exempts() {
    let lab = baseline("unnat-bn", Backend::Nftables);
    // An accept in an earlier nat chain does not stop libvirt's masquerade:
    // the nat hooks run until one makes a binding.
    let accept = "table ip nh-accept {\n\tchain postrouting {\n\t\ttype nat hook postrouting priority srcnat - 1; policy accept;\n\t\tip saddr 10.12.4.0/22 ip daddr 10.12.8.0/22 accept\n\t}\n}\n";
    lab.router.run("nft", &["-f", "-"], Some(accept));
    assert_eq!(lab.probe(), ROUTER, "accept is not an exemption");
    lab.router.run("nft", &["delete table ip nh-accept"], None);
    // The shape net-hook's nftables backend uses, by hand.
    let snat = format!(
        "table ip {NFT_TABLE} {{\n\tchain unnat {{\n\t\ttype nat hook postrouting priority srcnat - 1; policy accept;\n\t\t{NFT_EXEMPTION}\n\t}}\n}}\n"
    );
    lab.router.run("nft", &["-f", "-"], Some(&snat));
    assert!(
        lab.nft_table(&format!("ip {NFT_TABLE}"))
            .contains(NFT_EXEMPTION)
    );
    assert_eq!(lab.probe(), CLIENT);
    lab.reload_libvirt();
    assert_eq!(
        lab.probe(),
        CLIENT,
        "its own table survives libvirt's reload"
    );
    lab.router
        .run("nft", &[&format!("delete table ip {NFT_TABLE}")], None);
    assert_eq!(lab.probe(), ROUTER);
}

/// The whole lifecycle through the hook, as libvirt drives it.
fn lifecycle(tag: &str, backend: Backend) {
    let lab = Lab::new(tag, backend);
    let libvirt_before = lab.libvirt_rules();
    let before = lab.snapshot();
    assert_eq!(lab.probe(), ROUTER, "without the exemption: masqueraded");

    lab.hook("started");
    lab.assert_exemption_installed("after started");
    assert_eq!(lab.probe(), CLIENT, "after started: not masqueraded");
    assert_eq!(
        lab.libvirt_rules(),
        libvirt_before,
        "libvirt's rules are not net-hook's to change"
    );

    lab.reload_libvirt();
    lab.assert_exemption_installed("after libvirt's reload");
    assert_eq!(
        lab.probe(),
        CLIENT,
        "after libvirt's reload: not masqueraded"
    );

    let installed = lab.snapshot();
    lab.hook("started");
    assert_eq!(
        lab.snapshot(),
        installed,
        "a second started changes nothing"
    );
    assert_eq!(lab.probe(), CLIENT);

    lab.hook("stopped");
    lab.assert_no_exemption("after stopped");
    assert_eq!(lab.probe(), ROUTER, "after stopped: masqueraded again");
    assert_eq!(
        lab.snapshot(),
        before,
        "stopped restores the firewall exactly"
    );
}

#[test]
#[ignore = "needs root"]
fn unnat_iptables_lifecycle_with_real_packets() {
    lifecycle("unnat-li", Backend::Iptables);
}

#[test]
#[ignore = "needs root"]
fn unnat_nftables_lifecycle_with_real_packets() {
    lifecycle("unnat-ln", Backend::Nftables);
}

/// `stopped` as libvirt really runs it: after removing its own rules and the
/// bridge. net-hook's rules must go all the same.
fn stopped_after_libvirt(tag: &str, backend: Backend) {
    let lab = Lab::new(tag, backend);
    lab.hook("started");
    lab.assert_exemption_installed("after started");
    lab.libvirt_stops();
    lab.hook("stopped");
    lab.assert_no_exemption("after stopped");
    // And again, as libvirt 11.x may: nothing left to do, still exit 0.
    lab.hook("stopped");
    lab.assert_no_exemption("after a second stopped");
}

#[test]
#[ignore = "needs root"]
fn unnat_iptables_stopped_after_libvirt_removed_its_rules_and_bridge() {
    stopped_after_libvirt("unnat-si", Backend::Iptables);
}

#[test]
#[ignore = "needs root"]
fn unnat_nftables_stopped_after_libvirt_removed_its_rules_and_bridge() {
    stopped_after_libvirt("unnat-sn", Backend::Nftables);
}
