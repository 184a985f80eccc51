//! Helpers shared by the namespace-based test files.
#![allow(dead_code)]

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_net-hook");

/// The recordings from a real libvirtd 9.0 (see tests/hookdata.rs).
pub fn hookdata_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hookdata/libvirt-9.0")
}

pub fn hookdata(name: &str) -> String {
    let p = hookdata_dir().join(name);
    fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

pub fn started_xml() -> String {
    hookdata("1_provider_started_begin.xml")
}

/// A network namespace plus a private config and run dir, removed on drop.
pub struct Ns {
    pub name: String,
    pub dir: tempfile::TempDir,
}

impl Ns {
    pub fn new(tag: &str) -> Ns {
        let name = format!("nhtest-{}-{tag}", std::process::id());
        sh(&format!("ip netns add {name}"));
        let ns = Ns {
            name,
            dir: tempfile::tempdir().unwrap(),
        };
        ns.ip("link set lo up");
        ns
    }

    pub fn ip(&self, args: &str) {
        sh(&format!("ip -n {} {args}", self.name));
    }

    pub fn out(&self, args: &str) -> String {
        let o = Command::new("sh")
            .arg("-c")
            .arg(format!("ip -n {} {args}", self.name))
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// `ip netns exec NS PROG ARGS` with optional stdin; the output, whatever the status.
    pub fn exec(&self, prog: &str, args: &[&str], stdin: Option<&str>) -> Output {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, prog])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c
            .spawn()
            .unwrap_or_else(|e| panic!("{prog}: {e} (is it installed?)"));
        let mut pipe = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            pipe.write_all(s.as_bytes()).unwrap();
        }
        drop(pipe);
        child.wait_with_output().unwrap()
    }

    /// Like `exec`, but the command must succeed; returns its stdout.
    pub fn run(&self, prog: &str, args: &[&str], stdin: Option<&str>) -> String {
        let o = self.exec(prog, args, stdin);
        assert!(
            o.status.success(),
            "{prog} {}: {}{}",
            args.join(" "),
            text(&o.stdout),
            text(&o.stderr)
        );
        text(&o.stdout)
    }

    pub fn exists(&self, dev: &str) -> bool {
        Command::new("ip")
            .args(["-n", &self.name, "link", "show", "dev", dev])
            .stderr(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .unwrap()
            .success()
    }

    /// A new bridge `dev` (down, no address), marked with `alias` if given.
    pub fn bridge(&self, dev: &str, alias: Option<&str>) {
        self.ip(&format!("link add {dev} type bridge"));
        if let Some(a) = alias {
            self.ip(&format!("link set {dev} alias {a}"));
        }
    }

    /// Whether this kernel can create 802.1Q VLANs: tries a probe VLAN on
    /// `bridge` and deletes it again if it was created.
    pub fn has_8021q(&self, bridge: &str) -> bool {
        self.can_add(&["link", bridge, "name", "probe", "type", "vlan", "id", "5"])
    }

    /// Whether `ip link add ARGS` (which must name the link `probe`)
    /// works in this kernel; the probe is deleted again.
    pub fn can_add(&self, args: &[&str]) -> bool {
        let created = Command::new("ip")
            .args(["-n", &self.name, "link", "add"])
            .args(args)
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success();
        if created {
            self.ip("link del probe");
        }
        created
    }

    /// The libvirt bridge, up, with the provider address, as libvirt leaves it before `started`.
    pub fn provider_bridge(&self) {
        self.ip("link add virbr1 type bridge stp_state 1");
        self.ip("addr add 10.12.4.1/22 dev virbr1");
        self.ip("link set virbr1 up");
    }

    pub fn config(&self, text: &str) -> PathBuf {
        let p = self.dir.path().join("net-hook.toml");
        fs::write(&p, text).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        p
    }

    pub fn run_dir(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    pub fn record(&self, network: &str) -> Option<String> {
        fs::read_to_string(
            self.run_dir()
                .join("networks")
                .join(format!("{network}.toml")),
        )
        .ok()
    }

    /// `ip netns exec NS net-hook --config .. --run-dir ..`, no arguments yet.
    fn net_hook(&self) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, BIN, "--config"])
            .arg(self.dir.path().join("net-hook.toml"))
            .arg("--run-dir")
            .arg(self.run_dir());
        c
    }

    /// `net-hook --config .. --run-dir .. ARGS` inside the namespace.
    pub fn nh(&self, args: &[&str]) -> Output {
        let mut c = self.net_hook();
        c.args(args);
        c.stdin(Stdio::null()).output().unwrap()
    }

    pub fn hook_cmd(&self, args: &[&str]) -> Command {
        let mut c = self.net_hook();
        c.arg("hook").args(args);
        c
    }

    pub fn hook(&self, args: &[&str], stdin: &str) -> Output {
        let mut child = self
            .hook_cmd(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The hook may exit without reading (libvirt ignores EPIPE too).
        let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
        child.wait_with_output().unwrap()
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

pub fn sh(cmd: &str) {
    let o = Command::new("sh").arg("-c").arg(cmd).output().unwrap();
    assert!(
        o.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}
