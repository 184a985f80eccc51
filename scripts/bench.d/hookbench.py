#!/usr/bin/python3
"""Measuring program for scripts/bench (see BENCHMARKS.md).

Times whole processes the way libvirt runs a network hook: argv
`NETWORK OP SUBOP -`, the network XML on stdin, the environment replaced,
stdout/stderr not a terminal. Every comparison is measured side by side:
each round runs every contender once, in a fresh random order (seeded), so
a busy neighbour (another VM on the same cores) slows all of them alike.

Subcommands (each writes JSON; `report` turns the JSON into Markdown):
  unmanaged   host, inside a private mount namespace: net-hook's fast path
              versus /bin/true and baseline hooks, with 1 and 200 networks
  managed     inside the VM (real 802.1Q): started/stopped of 1 and 16 VLANs
  e2e         inside the VM: virsh net-start/net-destroy with and without
              the hook
  copy-up     inside the VM: move files off the uncached 9p root (see copy_up)
  report      Markdown tables and target verdicts from a results directory
"""

import argparse
import datetime
import gc
import json
import os
import platform
import random
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time

# What libvirt gives a hook (docs: the environment is replaced).
HOOK_ENV = {
    "LC_ALL": "C",
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/root",
}
CONF_DIR = "/etc/net-hook"
NETHOOK_CONF = CONF_DIR + "/net-hook.toml"
BASELINE_CONF = CONF_DIR + "/vlans.conf"  # read by the baseline hooks in hooks/
LIBVIRT_HOOK = "/etc/libvirt/hooks/network.d/50-net-hook"

MANAGED_NET = "1_provider"
UNMANAGED_NET = "default"
BRIDGE = "virbr1"
BRIDGE_ADDR = "10.12.4.1/22"
GATEWAY = (104, "10.12.8.1/22")  # the provider-vip gateway: virbr1.104


def die(msg):
    print(f"hookbench: {msg}", file=sys.stderr)
    sys.exit(1)


def note(msg):
    print(f"# {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ timing


def spawn_timed(argv, stdin_path):
    """Wall time (ns) and exit code of one whole process, spawned with
    posix_spawn (vfork-like, so the parent's size does not matter)."""
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, stdin_path, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0),
        (os.POSIX_SPAWN_OPEN, 2, "/dev/null", os.O_WRONLY, 0),
    ]
    t0 = time.perf_counter_ns()
    pid = os.posix_spawn(argv[0], argv, HOOK_ENV, file_actions=actions)
    _, status, _ = os.wait4(pid, 0)
    t1 = time.perf_counter_ns()
    return t1 - t0, os.waitstatus_to_exitcode(status)


def run_checked(argv, stdin_path, what):
    """One untimed run that must succeed; shows its output if not."""
    with open(stdin_path, "rb") as f:
        p = subprocess.run(argv, stdin=f, capture_output=True, env=HOOK_ENV)
    if p.returncode != 0:
        die(f"{what}: exit {p.returncode}: {' '.join(argv)}\n"
            f"{p.stdout.decode(errors='replace')}{p.stderr.decode(errors='replace')}")
    return p


def peak_rss_kib(argv, stdin_path, reps):
    """Peak RSS (KiB) per run, by GNU time (%M, from wait4). Measured from a
    small parent: a child forked from Python would report Python's size."""
    out = []
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as tf:
        for _ in range(reps):
            with open(stdin_path, "rb") as f:
                p = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", tf.name, *argv],
                                   stdin=f, capture_output=True, env=HOOK_ENV)
            if p.returncode != 0:
                die(f"peak RSS run failed (exit {p.returncode}): {' '.join(argv)}")
            tf.seek(0)
            out.append(int(tf.read().split()[-1]))
    return out


def syscalls(argv, stdin_path, keep=None):
    """Total syscalls and failed syscalls of one run (strace -f -c), all
    processes of the run included."""
    with tempfile.NamedTemporaryFile("r", suffix=".strace") as tf:
        with open(stdin_path, "rb") as f:
            p = subprocess.run(["strace", "-f", "-c", "-o", tf.name, *argv],
                               stdin=f, capture_output=True, env=HOOK_ENV)
        if p.returncode != 0:
            die(f"strace run failed (exit {p.returncode}): {' '.join(argv)}")
        text = tf.read()
    if keep:
        with open(keep, "w") as f:
            f.write(text)
    for line in text.splitlines():
        t = line.split()
        if t and t[-1] == "total":
            # "% time seconds usecs/call calls [errors] total"
            return {"calls": int(t[3]), "errors": int(t[4]) if len(t) == 6 else 0}
    die(f"no total in strace -c output for {' '.join(argv)}:\n{text}")


def install_as(src, dst):
    """Put a prepared config in place (hard link + rename: atomic, cheap, and
    outside the timed region)."""
    try:
        if os.path.samefile(src, dst):
            return
    except FileNotFoundError:
        pass
    tmp = dst + ".bench-tmp"
    if os.path.lexists(tmp):
        os.unlink(tmp)
    os.link(src, tmp)
    os.replace(tmp, dst)


def write(path, text, mode=0o644):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(path, mode)


def environment(extra=None):
    cpu = "?"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    env = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "kernel": platform.release(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }
    env.update(extra or {})
    return env


# ------------------------------------------------------------------ configs


def nethook_toml(networks):
    """networks: [(name, [(vid, [addr...]), ...])] -> net-hook.toml text."""
    out = ["# generated by scripts/bench.d/hookbench.py"]
    for name, vlans in networks:
        out.append(f"\n[networks.{name}]")
        for vid, addrs in vlans:
            quoted = ", ".join(f'"{a}"' for a in addrs)
            out += [f"[[networks.{name}.vlans]]", f"id = {vid}", f"addresses = [{quoted}]"]
    return "\n".join(out) + "\n"


def baseline_conf(networks):
    lines = ["# generated by scripts/bench.d/hookbench.py: NETWORK VID ADDRESS..."]
    for name, vlans in networks:
        for vid, addrs in vlans:
            lines.append(" ".join([name, str(vid), *addrs]))
    return "\n".join(lines) + "\n"


def provider_vlans(n):
    """The gateway VLAN 104 plus n-1 more on the same bridge (VIDs 105...)."""
    return [(GATEWAY[0], [GATEWAY[1]])] + [(v, [f"10.20.{v}.1/24"]) for v in range(105, 104 + n)]


def large_config(n_networks=200, per=4):
    """1_provider among n_networks networks of `per` VLANs each; every
    address unique (net-hook rejects duplicates across networks)."""
    nets = [(MANAGED_NET, provider_vlans(per))]
    k = 0
    for i in range(1, n_networks):
        vlans = []
        for vid in range(101, 101 + per):
            vlans.append((vid, [f"10.{64 + k // 256}.{k % 256}.1/24"]))
            k += 1
        nets.append((f"prov-{i:03d}", vlans))
    return nets


def xml_for(hookdata, op_file, network=None, bridge=None):
    with open(os.path.join(hookdata, op_file), encoding="utf-8") as f:
        text = f.read()
    if network:
        text = text.replace(f"<name>{MANAGED_NET}</name>", f"<name>{network}</name>", 1)
    if bridge:
        text = text.replace(f"<bridge name='{BRIDGE}'", f"<bridge name='{bridge}'", 1)
    return text


# ------------------------------------------------------------------ statistics


def quantile(sorted_xs, q):
    if not sorted_xs:
        return float("nan")
    pos = (len(sorted_xs) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(sorted_xs) - 1)
    return sorted_xs[lo] + (sorted_xs[hi] - sorted_xs[lo]) * (pos - lo)


def paired_median_ci(xs, ys, resamples=2000):
    """Median of the per-round differences ys[i] - xs[i], with a 95%
    bootstrap confidence interval (seeded: the report is reproducible)."""
    d = [y - x for x, y in zip(xs, ys)]
    rng = random.Random(1)
    meds = sorted(quantile(sorted(rng.choices(d, k=len(d))), 0.5) for _ in range(resamples))
    return quantile(sorted(d), 0.5), quantile(meds, 0.025), quantile(meds, 0.975)


def stats(samples):
    xs = sorted(samples)
    return {"n": len(xs), "median": quantile(xs, 0.5), "p10": quantile(xs, 0.1),
            "p90": quantile(xs, 0.9), "min": xs[0] if xs else float("nan")}


# ------------------------------------------------------------------ rounds


def interleaved(units, rounds, warmup, one):
    """Runs `one(unit, turn)` for the units in each round, in a fresh random
    order each round (seeded: reproducible), so that no contender always
    follows the same neighbour; `turn` counts that unit's runs. A unit with
    every = k (default 1) takes part in rounds 0, k, 2k...: the slowest
    contenders under TCG sit out some rounds, but whenever they run it is
    side by side with the others. Round 0 includes every unit.
    Returns {unit key: {label: [ns...]}} without the warm-up rounds."""
    samples = {u["key"]: {} for u in units}
    turns = {u["key"]: 0 for u in units}
    gc.disable()  # no collector pauses inside timed regions
    try:
        rng = random.Random(1)
        for r in range(warmup + rounds):
            for u in rng.sample(units, len(units)):
                if r % u.get("every", 1):
                    continue
                got = one(u, turns[u["key"]])
                turns[u["key"]] += 1
                if r >= warmup:
                    for label, ns in got.items():
                        samples[u["key"]].setdefault(label, []).append(ns)
    finally:
        gc.enable()
    return samples


# ------------------------------------------------------------------ unmanaged (host)


def cmd_unmanaged(a):
    if os.geteuid() != 0:
        die("unmanaged: run as root (net-hook checks its config's owner as root)")
    if not os.path.ismount("/etc") or not os.path.ismount("/run"):
        die("unmanaged: /etc and /run must be private overlays (run through scripts/bench)")
    os.makedirs(CONF_DIR, mode=0o755, exist_ok=True)
    os.makedirs("/run/net-hook", mode=0o755, exist_ok=True)
    work = a.work
    # The binary decides it is a libvirt hook by the path it was run as:
    # the network hook, and the qemu hook (routed interfaces).
    def hook_entry(kind):
        d = os.path.join(work, "hooks", kind)
        os.makedirs(d, exist_ok=True)
        entry = os.path.join(d, "50-net-hook")
        if os.path.lexists(entry):
            os.unlink(entry)
        os.symlink(os.path.abspath(a.bin), entry)
        return entry

    hook, qhook = hook_entry("network.d"), hook_entry("qemu.d")
    qxml = os.path.join(a.hookdata, "..", "qemu-9.0", "routed-demo_prepare_begin_managed.xml")

    small, large = [(MANAGED_NET, provider_vlans(1))], large_config(200, 4)
    cfg = {}
    for tag, nets in (("1", small), ("200", large)):
        cfg[tag] = (f"{CONF_DIR}/bench-{tag}.toml", f"{CONF_DIR}/bench-{tag}.conf")
        write(cfg[tag][0], nethook_toml(nets))
        write(cfg[tag][1], baseline_conf(nets))
        # The generated config must be one net-hook accepts, or the fast path
        # would be measured on a file it rejects.
        run_checked([a.bin, "--config", cfg[tag][0], "config", "check"], "/dev/null",
                    f"net-hook config check of the {tag}-network config")
    xml_unmanaged = os.path.join(work, "default_started_begin.xml")
    write(xml_unmanaged, xml_for(a.hookdata, "1_provider_started_begin.xml", UNMANAGED_NET, "virbr0"))
    xml_port = os.path.join(a.hookdata, "1_provider_port-created_begin.xml")

    shell = os.path.join(a.repo, "hooks", "shell-ip-hook.sh")
    py = os.path.join(a.repo, "hooks", "pyroute2-hook.py")
    U, S = UNMANAGED_NET, "started begin -".split()
    units = [
        dict(key="true", label="`/bin/true` (floor)", argv=["/bin/true"], cfg="1", xml=xml_unmanaged),
        dict(key="sh-1", label="shell hook, greps 1-network config", argv=[shell, U, *S], cfg="1", xml=xml_unmanaged),
        dict(key="sh-200", label="shell hook, greps 200-network config", argv=[shell, U, *S], cfg="200", xml=xml_unmanaged),
        dict(key="py-1", label="Python hook (pyroute2-hook.py), 1-network config", argv=[py, U, *S], cfg="1", xml=xml_unmanaged),
        dict(key="nh-port", label="net-hook `port-created` (ignored op, managed network)",
             argv=[hook, MANAGED_NET, "port-created", "begin", "-"], cfg="1", xml=xml_port),
        dict(key="nh-1", label="net-hook `started`, unmanaged network, 1-network config", argv=[hook, U, *S], cfg="1", xml=xml_unmanaged),
        dict(key="nh-200", label="net-hook `started`, unmanaged network, 200-network config", argv=[hook, U, *S], cfg="200", xml=xml_unmanaged),
        dict(key="nh-qemu", label="net-hook qemu hook `prepare`, unconfigured domain, 200-network config",
             argv=[qhook, "routed-demo", "prepare", "begin", "-"], cfg="200", xml=qxml),
    ]
    if a.no_python:
        units = [u for u in units if not u["key"].startswith("py")]

    def setup(u):
        install_as(cfg[u["cfg"]][0], NETHOOK_CONF)
        install_as(cfg[u["cfg"]][1], BASELINE_CONF)
        # A host's config does not change between hook runs: look both files
        # up and read them once untimed, so that a run right after a swap does
        # not pay for the fresh lookup (that biased the 200-network row once).
        for f in (NETHOOK_CONF, BASELINE_CONF):
            with open(f, "rb") as fh:
                fh.read()

    # Each contender works (exit 0), and net-hook's fast path really is taken:
    # no outcome is recorded for an unmanaged network.
    for u in units:
        setup(u)
        run_checked(u["argv"], u["xml"], f"contender {u['key']}")
    if os.listdir("/run/net-hook"):
        die(f"net-hook wrote to /run/net-hook for an unmanaged network: {os.listdir('/run/net-hook')}")

    def one(u, _r):
        setup(u)
        ns, rc = spawn_timed(u["argv"], u["xml"])
        if rc != 0:
            die(f"contender {u['key']} exited {rc}")
        return {"run": ns}

    note(f"unmanaged: {len(units)} contenders x ({a.warmup} warm-up + {a.rounds}) rounds")
    samples = interleaved(units, a.rounds, a.warmup, one)

    # Resources of the hook run itself (not timed side by side: counts, not times).
    res = []
    for u in units:
        setup(u)
        rss = peak_rss_kib(u["argv"], u["xml"], a.rss_reps)
        sc = syscalls(u["argv"], u["xml"], keep=os.path.join(a.strace_dir, f"strace-{u['key']}.txt"))
        res.append({"key": u["key"], "label": u["label"], "rss_kib": rss, **sc})

    # The same comparison by a standard tool, for readers to reproduce: the
    # 200-network row against the floor (hyperfine gives stdin /dev/null; an
    # unmanaged network is ruled out by the pre-scan before stdin is read).
    hf = None
    if shutil.which("hyperfine"):
        u = next(u for u in units if u["key"] == "nh-200")
        setup(u)
        path = os.path.join(os.path.dirname(os.path.abspath(a.out)), "hyperfine.json")
        runs = max(a.rounds // 2, 10)
        cmd = ["hyperfine", "-N", "--warmup", str(max(a.warmup, 3)), "--runs", str(runs), "--export-json", path,
               "/bin/true", " ".join(u["argv"])]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with open(path) as f:
            hf = json.load(f)
        hf["command"] = f"hyperfine -N --warmup {max(a.warmup, 3)} --runs {runs} /bin/true HOOK"

    result = {
        "section": "unmanaged",
        "hyperfine": hf,
        "work": work,
        "env": environment({"where": "host, private mount namespace (overlays on /etc and /run)"}),
        "rounds": a.rounds, "warmup": a.warmup,
        "units": [{"key": u["key"], "label": u["label"], "cmd": " ".join(u["argv"]).replace(work + "/", "$TMP/")
                   .replace(a.repo + "/", ""), "cfg": u["cfg"],
                   "samples": samples[u["key"]]} for u in units],
        "resources": res,
        "binary": binary_info(a.bin),
    }
    with open(a.out, "w") as f:
        json.dump(result, f)


def binary_info(path):
    """Size and whether the ELF still has a symbol table (.symtab)."""
    with open(path, "rb") as f:
        data = f.read()
    e_shoff, = struct.unpack_from("<Q", data, 0x28)
    e_shentsize, e_shnum, e_shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    names_off = struct.unpack_from("<Q", data, e_shoff + e_shstrndx * e_shentsize + 0x18)[0]
    sections = []
    for i in range(e_shnum):
        name_idx = struct.unpack_from("<I", data, e_shoff + i * e_shentsize)[0]
        end = data.index(b"\0", names_off + name_idx)
        sections.append(data[names_off + name_idx:end].decode())
    return {"bytes": len(data), "stripped": ".symtab" not in sections}


# ------------------------------------------------------------------ warming (VM)
#
# The VM's root is the host's, over 9p without a cache: every exec and file
# read is a round trip to QEMU, which would charge contenders by the number of
# files they touch rather than by their work (Python imports hundreds). A real
# host serves them from the page cache. So every file a contender (or
# libvirtd) opens is first copied up into the tmpfs upper layer of the VM's
# overlays (a same-value utime is enough: overlayfs copies the whole file up
# on any attribute change), for all contenders alike.

STRACE_PATH = re.compile(r'(?:execve|openat|open)\((?:[A-Z_]+, )?"([^"]+)"')


def overlay_mounts():
    mounts = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, post = line.split(" - ", 1)
            mounts.append((pre.split()[4], post.split()[0]))
    return mounts


def copy_up(paths):
    """Copies up every regular file among `paths` that lives on an overlay."""
    mounts = overlay_mounts()

    def fstype(p):
        best = max((m for m in mounts if p == m[0] or p.startswith(m[0].rstrip("/") + "/")),
                   key=lambda m: len(m[0]))
        return best[1]

    done = 0
    for p in sorted({os.path.realpath(p) for p in paths}):
        if p.startswith(("/proc/", "/sys/", "/dev/")) or not os.path.isfile(p):
            continue
        if fstype(p) != "overlay":
            continue
        try:
            st = os.stat(p)
            os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
            done += 1
        except OSError:
            pass
    return done


def paths_in_strace(text):
    return STRACE_PATH.findall(text)


def traced_paths(argv, stdin_path):
    """Files opened or executed by one run of argv (all its processes)."""
    with tempfile.NamedTemporaryFile("r", suffix=".trace") as tf:
        with open(stdin_path, "rb") as f:
            # --seccomp-bpf: only the traced calls stop (TCG makes each stop dear).
            subprocess.run(["strace", "-f", "--seccomp-bpf", "-qq", "-s", "4096", "-e", "trace=execve,open,openat",
                            "-o", tf.name, *argv], stdin=f, capture_output=True, env=HOOK_ENV)
        return paths_in_strace(tf.read())


def cmd_copy_up(a):
    """Copies up the files named in strace logs (--trace) or lists of paths
    (--list, e.g. the mapped files of a running libvirtd)."""
    paths = []
    for t in a.trace:
        with open(t, errors="replace") as f:
            paths += paths_in_strace(f.read())
    for t in a.list:
        with open(t, errors="replace") as f:
            paths += [line.strip() for line in f if line.startswith("/")]
    note(f"copied up {copy_up(paths)} files")


# ------------------------------------------------------------------ managed (VM)


def ip_batch(cmds):
    p = subprocess.run(["ip", "-batch", "-"], input="\n".join(cmds) + "\n",
                       text=True, capture_output=True)
    if p.returncode != 0:
        die(f"ip -batch failed: {p.stderr.strip()}\n{cmds}")


def link_exists(name):
    return os.path.exists(f"/sys/class/net/{name}")


def ensure_bridge():
    if not link_exists(BRIDGE):
        ip_batch([f"link add {BRIDGE} type bridge", f"addr add {BRIDGE_ADDR} dev {BRIDGE}",
                  f"link set {BRIDGE} up"])


def vlan_devs(vlans):
    return [f"{BRIDGE}.{vid}" for vid, _ in vlans]


def check_vlans(vlans):
    """Problems with the VLANs a `started` should have made ([] = all good)."""
    p = subprocess.run(["ip", "-j", "-d", "addr", "show"], capture_output=True, text=True, check=True)
    links = {l["ifname"]: l for l in json.loads(p.stdout)}
    problems = []
    for vid, addrs in vlans:
        name = f"{BRIDGE}.{vid}"
        l = links.get(name)
        if not l:
            problems.append(f"{name} missing")
            continue
        info = l.get("linkinfo", {})
        if info.get("info_kind") != "vlan" or info.get("info_data", {}).get("id") != vid:
            problems.append(f"{name} is not VLAN {vid}: {info}")
        if l.get("link") != BRIDGE:
            problems.append(f"{name} is not on {BRIDGE}: {l.get('link')}")
        if "UP" not in l.get("flags", []):
            problems.append(f"{name} is not UP: {l.get('flags')}")
        have = {f"{x['local']}/{x['prefixlen']}" for x in l.get("addr_info", [])}
        for addr in addrs:
            if addr not in have:
                problems.append(f"{name} lacks {addr} (has {sorted(have)})")
    return problems


def cmd_managed(a):
    if os.geteuid() != 0:
        die("managed: run as root inside the VM")
    if not os.path.exists("/proc/net/vlan/config"):
        die("managed: no 802.1Q in this kernel (modprobe 8021q; this runs in the VM tier)")
    if not os.path.realpath(LIBVIRT_HOOK).endswith("/net-hook"):
        die(f"managed: {LIBVIRT_HOOK} is not net-hook (run `net-hook install` first)")
    os.makedirs(CONF_DIR, mode=0o755, exist_ok=True)
    os.makedirs(a.work, exist_ok=True)
    xml = {}
    for op, f in (("started", "1_provider_started_begin.xml"), ("stopped", "1_provider_stopped_end.xml")):
        xml[op] = os.path.join(a.work, f)
        write(xml[op], xml_for(a.hookdata, f))
    argv_tail = {"started": [MANAGED_NET, "started", "begin", "-"],
                 "stopped": [MANAGED_NET, "stopped", "end", "-"]}

    variants = {n: provider_vlans(n) for n in (1, 16)}
    cfg = {}
    for n, vlans in variants.items():
        cfg[n] = (f"{CONF_DIR}/bench-{n}vlan.toml", f"{CONF_DIR}/bench-{n}vlan.conf")
        write(cfg[n][0], nethook_toml([(MANAGED_NET, vlans)]))
        write(cfg[n][1], baseline_conf([(MANAGED_NET, vlans)]))
    all_devs = vlan_devs(variants[16])

    shell = os.path.join(a.repo, "hooks", "shell-ip-hook.sh")
    py = os.path.join(a.repo, "hooks", "pyroute2-hook.py")
    contenders = [("net-hook", "net-hook", LIBVIRT_HOOK),
                  ("shell-ip", "shell `ip` hook (hooks/shell-ip-hook.sh)", shell)]
    if a.pyroute2:
        contenders.append(("pyroute2", "Python pyroute2 hook (hooks/pyroute2-hook.py)", py))
    units = [dict(key="true", label="`/bin/true` (floor)", exe="/bin/true", n=1)]
    for n in a.vlans:
        for key, label, exe in contenders:
            units.append(dict(key=f"{key}-{n}", contender=key, label=label, exe=exe, n=n))
    units = [u for u in units if u["key"] not in a.skip]
    every = dict(e.split("=", 1) for e in a.every)
    for u in units:
        u["every"] = int(every.pop(u["key"], 1))
    if set(every) - set(a.skip):
        die(f"--every names no contender: {sorted(set(every) - set(a.skip))}")

    def argv(u, op):
        return [u["exe"]] if u["exe"] == "/bin/true" else [u["exe"], *argv_tail[op]]

    def prepare(u):
        """Bridge up with its address, no VLAN left, this unit's config."""
        install_as(cfg[u["n"]][0], NETHOOK_CONF)
        install_as(cfg[u["n"]][1], BASELINE_CONF)
        ensure_bridge()
        left = [d for d in all_devs if link_exists(d)]
        if left:
            die(f"{u['key']}: VLAN devices left over from the previous step: {left}")

    def run(u, op):
        ns, rc = spawn_timed(argv(u, op), xml[op])
        if rc != 0:
            die(f"{u['key']} {op}: exit {rc}")
        return ns

    verified = set()

    def one(u, turn):
        prepare(u)
        got = {"started": run(u, "started")}
        if u["exe"] != "/bin/true":
            if u["key"] not in verified:
                problems = check_vlans(variants[u["n"]])
                if problems:
                    die(f"{u['key']}: `started` did not produce the VLANs: " + "; ".join(problems))
                note(f"verified: {u['key']} made {len(variants[u['n']])} VLAN(s) on {BRIDGE}, "
                     f"{GATEWAY[1]} on {BRIDGE}.{GATEWAY[0]}, UP")
                verified.add(u["key"])
            missing = [d for d in vlan_devs(variants[u["n"]]) if not link_exists(d)]
            if missing:
                die(f"{u['key']} started (run {turn}): missing {missing}")
        if turn % 2 == 0:
            # `stopped` with the bridge (and the VLANs) still there.
            got["stopped-present"] = run(u, "stopped")
            left = [d for d in all_devs if link_exists(d)]
            if left:
                die(f"{u['key']} stopped (bridge present) left {left}")
        else:
            # The real order: libvirt deletes the bridge (the kernel takes the
            # VLANs with it), then runs `stopped`.
            ip_batch([f"link del {BRIDGE}"])
            got["stopped-gone"] = run(u, "stopped")
        return got

    if not a.no_copy_up:
        # Off 9p first (see copy_up): one traced started + stopped per contender.
        t0 = time.monotonic()
        paths = []
        for u in units:
            if u["n"] == min(a.vlans):  # the other variant runs the same files
                prepare(u)
                paths += traced_paths(argv(u, "started"), xml["started"])
                run(u, "stopped")  # same files as `started` (traced: minutes for Python)
        note(f"copied up {copy_up(paths)} files the contenders open ({time.monotonic() - t0:.0f} s)")

    note(f"managed: {len(units)} contenders x ({a.warmup} warm-up + {a.rounds}) rounds")
    samples = interleaved(units, a.rounds, a.warmup, one)

    res = []
    for u in units:
        entry = {"key": u["key"], "label": u["label"], "n": u["n"]}
        # All of net-hook's paths; for the others (context only: under TCG a
        # traced Python run takes minutes) their `started` with 1 VLAN.
        if u.get("contender") == "net-hook":
            steps = ("started", "stopped-present", "stopped-gone")
        elif u["n"] == 1 and a.resources == "all":
            steps = ("started",)
        else:
            continue
        for step in steps:
            op = "started" if step == "started" else "stopped"
            rss, sc = [], None
            for i in range(a.rss_reps + 1):
                prepare(u)
                if step != "started":
                    run(u, "started")
                    if step == "stopped-gone":
                        ip_batch([f"link del {BRIDGE}"])
                if i == 0:
                    sc = syscalls(argv(u, op), xml[op],
                                  keep=os.path.join(a.strace_dir, f"strace-{u['key']}-{step}.txt"))
                else:
                    rss += peak_rss_kib(argv(u, op), xml[op], 1)
                if step == "started":
                    run(u, "stopped")
            entry[step] = {"rss_kib": rss, **sc}
        res.append(entry)
    if link_exists(BRIDGE):
        ip_batch([f"link del {BRIDGE}"])

    result = {
        "section": "managed",
        "env": environment({"where": a.where}),
        "rounds": a.rounds, "warmup": a.warmup, "copy_up": not a.no_copy_up,
        "units": [{"key": u["key"], "contender": u.get("contender", "true"), "label": u["label"],
                   "vlans": u["n"], "every": u["every"], "samples": samples[u["key"]]} for u in units],
        "resources": res,
    }
    with open(a.out, "w") as f:
        json.dump(result, f)


# ------------------------------------------------------------------ end to end (VM)


def cmd_e2e(a):
    """virsh net-start + net-destroy of 1_provider, whole virsh processes.

    --mode interleaved: libvirtd was started with net-hook installed, so it
    looks into network.d/ on every call (it caches only whether any hook
    existed at start; virHookCall lists the directory each time). Each round
    runs one start/destroy with each entry, in rotated order: net-hook
    ("hook"), /bin/true ("true": what libvirt spends to run any hook), and
    none ("removed").
    --mode no-hook-daemon: libvirtd was started with no hook at all ("none")."""
    virsh = shutil.which("virsh") or die("virsh not found")
    base = [virsh, "-q", "-c", "qemu:///system"]
    dev = f"{BRIDGE}.{GATEWAY[0]}"
    target = os.path.realpath(LIBVIRT_HOOK) if os.path.lexists(LIBVIRT_HOOK) else a.bin

    def hook(label):
        if os.path.lexists(LIBVIRT_HOOK):
            os.unlink(LIBVIRT_HOOK)
        if label in ("hook", "true"):
            os.symlink(target if label == "hook" else "/bin/true", LIBVIRT_HOOK)

    def one(label):
        ns_start, rc = spawn_timed([*base, "net-start", MANAGED_NET], "/dev/null")
        if rc != 0:
            die(f"e2e {label}: net-start {MANAGED_NET} exited {rc}")
        if link_exists(dev) != (label == "hook"):
            die(f"e2e {label}: {dev} {'missing' if label == 'hook' else 'present'} after net-start "
                f"(the hook {'did not run' if label == 'hook' else 'ran'})")
        ns_destroy, rc = spawn_timed([*base, "net-destroy", MANAGED_NET], "/dev/null")
        if rc != 0:
            die(f"e2e {label}: net-destroy {MANAGED_NET} exited {rc}")
        if link_exists(BRIDGE):
            die(f"e2e {label}: {BRIDGE} still there after net-destroy")
        return ns_start, ns_destroy

    data = {"section": "e2e", "env": environment({"where": a.where, "libvirt": a.libvirt}), "samples": {}}
    if os.path.exists(a.out):
        with open(a.out) as f:
            data = json.load(f)
    windows = []  # (label, wall-clock start, end): which hook state a logged call belongs to
    gc.disable()
    for r in range(-a.warmup, a.rounds):
        labels = ("hook", "true", "removed") if a.mode == "interleaved" else ("none",)
        if r < 0:  # untimed: the first start after a daemon (re)start is slower
            hook(labels[0])
            one(labels[0])
            continue
        k = r % len(labels)
        for label in labels[k:] + labels[:k]:
            hook(label)
            t0 = time.time()
            st, de = one(label)
            windows.append((label, t0, time.time()))
            d = data["samples"].setdefault(label, {"net-start": [], "net-destroy": []})
            d["net-start"].append(st)
            d["net-destroy"].append(de)
    gc.enable()
    if a.mode == "interleaved":
        hook("hook")
    if a.libvirt_log:
        calls = data.setdefault("hook_calls", {})
        for t0, t1, op in hook_calls(a.libvirt_log):
            label = next((w[0] for w in windows if w[1] <= t0 <= w[2]), None)
            if label:
                calls.setdefault(label, {}).setdefault(op, []).append(t1 - t0)
        # Each condition must have run the hook exactly as set up: net-hook
        # and /bin/true three times a round (start, started, stopped), an
        # absent entry or an unhooked daemon never.
        for label in {w[0] for w in windows}:
            n = sum(len(v) for v in calls.get(label, {}).values())
            want = 3 * sum(1 for w in windows if w[0] == label) if label in ("hook", "true") else 0
            if n != want:
                die(f"e2e {label}: libvirtd ran the hook {n} times, expected {want} (log {a.libvirt_log})")
    with open(a.out, "w") as f:
        json.dump(data, f)


LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3})\+0000: (\d+): \w+ : \w+:\d+ : (.*)")
HOOK_OP = re.compile(r"/hooks/network(?:\.d/\S+)? \S.* (start|started|stopped|port-created|port-deleted|updated) "
                     r"(?:begin|end) -")


def hook_calls(path):
    """(start, end, op) of every network hook run in libvirtd's log, from its
    util.command debug lines: "About to run ... HOOK NET OP SUBOP -" and the
    same thread's next "Result ..." (after the hook closed its output and
    was reaped): what libvirtd spends on each hook call."""
    calls, running = [], {}
    with open(path, errors="replace") as f:
        for line in f:
            m = LOG_LINE.match(line)
            if not m:
                continue
            ts = datetime.datetime.strptime(m[1], "%Y-%m-%d %H:%M:%S.%f").replace(
                tzinfo=datetime.timezone.utc).timestamp()
            tid, msg = m[2], m[3]
            if msg.startswith("About to run") and (op := HOOK_OP.search(msg)):
                running[tid] = (ts, op[1])
            elif msg.startswith("Result") and tid in running:
                t0, op = running.pop(tid)
                calls.append((t0, ts, op))
    return calls


# ------------------------------------------------------------------ report


def ms(ns):
    v = ns / 1e6
    return f"{v:.3f} ms" if v < 10 else f"{v:.1f} ms" if v < 1000 else f"{v / 1000:.2f} s"


def mib(kib):
    return f"{kib / 1024:.1f} MiB"


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def env_line(env, rounds=None, warmup=None):
    parts = [f"date {env['date']}", f"kernel {env['kernel']}", f"{env['cpus']} CPUs ({env['cpu']})"]
    if env.get("libvirt"):
        parts.append(f"libvirt {env['libvirt']}")
    if rounds is not None:
        parts.append(f"N = {rounds} interleaved rounds (+{warmup} warm-up, discarded)")
    return f"{env['where']}; " + "; ".join(parts) + "."


def cmd_report(a):
    def load(name):
        p = os.path.join(a.dir, name)
        if not os.path.exists(p):
            return None
        with open(p) as f:
            return json.load(f)

    um, mg, e2e = load("unmanaged.json"), load("managed.json"), load("e2e.json")
    meta = load("meta.json") or {}
    out, targets = [], []
    out.append(f"Command: `{meta.get('command', 'scripts/bench')}`{' (smoke: few iterations, figures not meaningful)' if meta.get('smoke') else ''}\n")
    out.append("Times are whole-process wall time (spawn to reap), median with p10-p90 over the rounds; "
               "ratios are of medians from the same run.\n")

    if um:
        out.append("### 1. Unmanaged network (host)\n")
        out.append(env_line(um["env"], um["rounds"], um["warmup"]) + "\n")
        st = {u["key"]: stats(u["samples"]["run"]) for u in um["units"]}
        floor = st["true"]["median"]
        rows = [[u["label"], f"`{u['cmd']}`", ms(st[u["key"]]["median"]),
                 f"{ms(st[u['key']]['p10'])} - {ms(st[u['key']]['p90'])}",
                 f"{st[u['key']]['median'] / floor:.2f}x"] for u in um["units"]]
        out.append(table(["contender", "argv", "median", "p10 - p90", "vs /bin/true"], rows) + "\n")
        worst = max((k for k in ("nh-port", "nh-1", "nh-200", "nh-qemu") if k in st), key=lambda k: st[k]["median"])
        r = st[worst]["median"] / floor
        targets.append(["unmanaged: at most 1.0x `/bin/true`", f"{r:.2f}x (worst net-hook row: {worst})",
                        "met" if r <= 1 else f"missed by {(r - 1) * 100:.0f}%"])
        # Same-round pairs: the difference each round saw, which a neighbour's
        # burst affects on both sides alike.
        by = {u["key"]: u["samples"]["run"] for u in um["units"]}
        d, lo, hi = paired_median_ci(by["nh-1"], by["nh-200"])
        rel = d / st["nh-1"]["median"] * 100
        out.append(f"Growth from 1 to 200 configured networks, median of the per-round differences (95% bootstrap "
                   f"CI): net-hook {d / 1000:+.1f} µs ({lo / 1000:+.1f} to {hi / 1000:+.1f} µs, {rel:+.1f}% of its "
                   "1-network median)" + (", shell hook {:+.1f} µs ({:+.1f} to {:+.1f} µs).\n".format(
                       *(x / 1000 for x in paired_median_ci(by["sh-1"], by["sh-200"]))) if "sh-1" in by else ".\n"))
        targets.append(["unmanaged: at most 2% growth from 1 to 200 networks",
                        f"{d / 1000:+.1f} µs = {rel:+.1f}% (95% CI {lo / 1000:+.1f} to {hi / 1000:+.1f} µs)",
                        "met" if rel <= 2 else f"missed ({rel:.1f}% > 2%)"])
        hf = um.get("hyperfine")
        if hf:
            out.append("Cross-check with hyperfine (`" + hf["command"] + "`, stdin /dev/null, the 200-network "
                       "config in place, run after the rounds above):\n")
            hrows = [[r["command"].replace(um.get("work", "") + "/", "$TMP/"), ms(r["median"] * 1e9),
                      ms(r["mean"] * 1e9), f"{r['median'] / hf['results'][0]['median']:.2f}x", len(r["times"])]
                     for r in hf["results"]]
            out.append(table(["command", "median", "mean", "vs first", "runs"], hrows) + "\n")

    if mg:
        out.append("### 2. Managed network on a real kernel (VM)\n")
        sparse = ", ".join(f"{u['key']} every {u['every']}" for u in mg["units"] if u.get("every", 1) > 1)
        out.append(env_line(mg["env"], mg["rounds"], mg["warmup"])
                   + (f" The slowest contenders take part only in every k-th round ({sparse}), always side by side "
                      "with the rest. " if sparse else " ")
                   + f"Each run of a contender measures `started` (bridge {BRIDGE} up with {BRIDGE_ADDR}, no VLAN yet), "
                   "then `stopped`, alternately with the bridge still present (the hook deletes the VLANs) and with "
                   "the bridge already deleted (libvirt's real order: the kernel removed the VLANs with it). "
                   + ("Files the contenders open were first copied off the VM's uncached 9p root into tmpfs "
                      "(see BENCHMARKS.md).\n" if mg.get("copy_up", True) else
                      "Files were NOT copied off the VM's uncached 9p root first (--no-copy-up).\n"))
        units = mg["units"]
        st = {(u["key"], step): stats(v) for u in units for step, v in u["samples"].items()}
        steps = ("started", "stopped-present", "stopped-gone")

        def ref(n, step):
            return st.get((f"net-hook-{n}", step), {}).get("median")

        rows = []
        for u in units:
            row = [u["label"], u["vlans"] if u["key"] != "true" else "-"]
            for step in steps:
                s = st.get((u["key"], step))
                row.append(f"{ms(s['median'])} ({ms(s['p10'])} - {ms(s['p90'])}, n={s['n']})" if s else "-")
            r = ref(u["vlans"], "started")
            row.append(f"{st[(u['key'], 'started')]['median'] / r:.2f}x" if r else "-")
            rows.append(row)
        out.append(table(["contender", "VLANs", "`started` median (p10 - p90)",
                          "`stopped`, bridge present", "`stopped`, bridge gone", "`started` vs net-hook"], rows) + "\n")
        # Growth from 1 to 16 VLANs.
        grow = []
        for c in sorted({u["contender"] for u in units if u["contender"] != "true"}, key=lambda c: (c != "net-hook", c)):
            k1, k16 = f"{c}-1", f"{c}-16"
            if (k1, "started") in st and (k16, "started") in st:
                a1, a16 = st[(k1, "started")]["median"], st[(k16, "started")]["median"]
                s1 = st.get((k1, "stopped-present"), {}).get("median")
                s16 = st.get((k16, "stopped-present"), {}).get("median")
                grow.append([c, ms(a1), ms(a16), f"{(a16 - a1) / 15 / 1e6:.1f} ms", f"{a16 / a1:.2f}x"]
                            + ([ms(s1), ms(s16), f"{(s16 - s1) / 15 / 1e6:.1f} ms"] if s1 and s16 else ["-"] * 3))
        if grow:
            out.append("Growth from 1 to 16 VLANs on one network (medians):\n")
            out.append(table(["contender", "`started` 1", "`started` 16", "per extra VLAN", "16 / 1",
                              "`stopped` (present) 1", "`stopped` (present) 16", "per extra VLAN"], grow) + "\n")
        for step in steps:
            t, h = st.get(("true", step), {}).get("median"), ref(1, step)
            if t and h:
                r = h / t
                targets.append([f"managed `{step}`, 1 VLAN: at most 2.0x `/bin/true` (VM)", f"{r:.2f}x",
                                "met" if r <= 2 else f"missed by {(r / 2 - 1) * 100:.0f}%"])
        if (s := ref(1, "started")) and ("shell-ip-1", "started") in st:
            r = st[("shell-ip-1", "started")]["median"] / s
            targets.append(["managed `started`: at least about 5x faster than the shell `ip` hook (1 VLAN)",
                            f"{r:.2f}x faster", "met" if r >= 5 else f"missed ({r:.2f}x < 5x)"])
        if (a1 := ref(1, "started")) and (a16 := ref(16, "started")):
            per = (a16 - a1) / 15 / 1e6
            targets.append(["16 VLANs: at most 10 ms per extra VLAN (`started`, TCG)", f"{per:.1f} ms",
                            "met" if per <= 10 else f"missed by {per - 10:.1f} ms"])

    if um or mg:
        out.append("### 3. Resources\n")
        rows = []
        if um:
            for r in um["resources"]:
                rows.append(["host", r["label"], f"{mib(max(r['rss_kib']))} (n={len(r['rss_kib'])})",
                             r["calls"], r["errors"]])
        if mg:
            for r in mg["resources"]:
                for step in ("started", "stopped-present", "stopped-gone"):
                    if step not in r:
                        continue
                    s = r[step]
                    what = r["label"] if r["key"] == "true" else f"{r['label']}, {r['n']} VLAN(s), `{step}`"
                    rows.append(["VM", what, f"{mib(max(s['rss_kib']))} (n={len(s['rss_kib'])})",
                                 s["calls"], s["errors"]])
        out.append("Peak RSS: GNU time `%M` (max over n runs; the `/bin/true` row is the floor of this method, "
                   "GNU time included). Syscalls: `strace -f -c`, one run, all processes of the hook run counted.\n")
        out.append(table(["where", "run", "peak RSS", "syscalls", "failed syscalls"], rows) + "\n")
        peaks = []
        if um:
            peaks += [max(r["rss_kib"]) for r in um["resources"] if r["key"].startswith("nh-")]
        if mg:
            peaks += [max(r[s]["rss_kib"]) for r in mg["resources"] if r["key"].startswith("net-hook")
                      for s in ("started", "stopped-present", "stopped-gone") if s in r]
        if peaks:
            p = max(peaks) / 1024
            targets.append(["peak RSS at most 4 MiB", f"{p:.1f} MiB (max over all net-hook runs)",
                            "met" if p <= 4 else f"missed by {p - 4:.1f} MiB"])
        if um:
            b = um["binary"]
            out.append(f"Binary `target/release/net-hook`: {b['bytes']} bytes = {b['bytes'] / 2**20:.2f} MiB, "
                       f"{'stripped' if b['stripped'] else 'NOT stripped (.symtab present)'}.\n")
            sz = b["bytes"] / 2**20
            targets.append(["stripped binary at most 3 MiB", f"{sz:.2f} MiB" + ("" if b["stripped"] else " (not stripped!)"),
                            "met" if sz <= 3 and b["stripped"] else "missed"])

    if e2e:
        out.append("### 4. End to end: `virsh net-start 1_provider` (VM)\n")
        sm = e2e["samples"]
        n = {lab: len(sm.get(lab, {}).get("net-start", [])) for lab in ("hook", "true", "removed", "none")}
        out.append(env_line(e2e["env"]) + " Each time is the whole `virsh -c qemu:///system net-start` "
                   "(or `net-destroy`) process; a start runs the hook twice (`start`, `started`), a destroy once "
                   "(`stopped`). libvirtd (AppArmor enforcing) was started with net-hook installed; then "
                   f"{n['hook']} interleaved rounds (rotated order) of three network.d/ states: net-hook, `/bin/true` "
                   "as the hook (libvirt's own cost of running any hook), and the entry removed (libvirt lists "
                   "network.d/ on every call and runs nothing). Then libvirtd was restarted with no hook at all for "
                   f"{n['none']} rounds: the plain baseline (not interleaved: it needs a restart).\n")
        rows = []
        names = (("none", "no hook (daemon started without one)"),
                 ("removed", "hook entry removed (same daemon as below)"),
                 ("true", "`/bin/true` as the hook"),
                 ("hook", "net-hook installed"))
        for lab, name in names:
            if lab not in sm:
                continue
            row = [name]
            for k in ("net-start", "net-destroy"):
                s_ = stats(sm[lab][k])
                row.append(f"{ms(s_['median'])} ({ms(s_['p10'])} - {ms(s_['p90'])}, n={s_['n']})")
            rows.append(row)
        for top, base, name in (("hook", "removed", "added by net-hook vs entry removed (interleaved)"),
                                ("true", "removed", "added by any hook: `/bin/true` vs entry removed (interleaved)"),
                                ("hook", "true", "net-hook beyond a process start: net-hook vs `/bin/true` (interleaved)"),
                                ("hook", "none", "added by net-hook vs the no-hook daemon")):
            if top in sm and base in sm:
                row = [name + ", difference of medians"]
                for k in ("net-start", "net-destroy"):
                    h, b_ = stats(sm[top][k])["median"], stats(sm[base][k])["median"]
                    row.append(f"{(h - b_) / 1e6:+.0f} ms ({(h - b_) / b_ * 100:+.1f}%)")
                rows.append(row)
        out.append(table(["condition", "`net-start` median (p10 - p90)", "`net-destroy` median (p10 - p90)"], rows) + "\n")
        hc = e2e.get("hook_calls", {})
        if hc:
            out.append("Time libvirtd spent on each hook call in those same interleaved rounds, from its own debug log "
                       "(`log_filters=\"1:util.command\"`: from \"About to run\" to \"Result\", i.e. fork, exec, the "
                       "hook, its output reaching EOF and the reap; ms resolution):\n")
            rows = []
            for lab, name in (("hook", "net-hook"), ("true", "`/bin/true`")):
                if lab not in hc:
                    continue
                row = [name]
                for op in ("start", "started", "stopped"):
                    s_ = stats([x * 1e9 for x in hc[lab].get(op, [])])
                    row.append(f"{ms(s_['median'])} ({ms(s_['p10'])} - {ms(s_['p90'])}, n={s_['n']})"
                               if s_["n"] else "-")
                per_start = sum(stats([x * 1e9 for x in hc[lab].get(op, [])])["median"] for op in ("start", "started"))
                row.append(ms(per_start))
                rows.append(row)
            out.append(table(["hook", "`start`", "`started`", "`stopped`", "per net-start (`start` + `started`, medians)"],
                             rows) + "\n")

    if targets:
        out.append("### Targets\n")
        out.append(table(["target", "measured", "verdict"], targets) + "\n")
    print("\n".join(out))


# ------------------------------------------------------------------ main


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.dirname(os.path.dirname(here))

    p = sub.add_parser("unmanaged")
    p.add_argument("--bin", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--strace-dir", required=True)
    p.add_argument("--rounds", type=int, default=1000)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--rss-reps", type=int, default=10)
    p.add_argument("--no-python", action="store_true")

    p = sub.add_parser("managed")
    p.add_argument("--work", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--strace-dir", required=True)
    p.add_argument("--where", default="VM")
    p.add_argument("--rounds", type=int, default=30)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--rss-reps", type=int, default=3)
    p.add_argument("--vlans", type=int, nargs="+", default=[1, 16])
    p.add_argument("--pyroute2", action="store_true")
    p.add_argument("--every", action="append", default=[], metavar="UNIT=K",
                   help="UNIT (e.g. pyroute2-16) runs only every K-th round")
    p.add_argument("--skip", action="append", default=[], metavar="UNIT")
    p.add_argument("--no-copy-up", action="store_true")
    p.add_argument("--resources", choices=["all", "net-hook"], default="all")

    p = sub.add_parser("e2e")
    p.add_argument("--mode", choices=["interleaved", "no-hook-daemon"], required=True)
    p.add_argument("--bin", default="/usr/bin/net-hook")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--libvirt-log", help="libvirtd log with util.command debug lines")
    p.add_argument("--out", required=True)
    p.add_argument("--where", default="VM")
    p.add_argument("--libvirt", default="?")

    p = sub.add_parser("copy-up")
    p.add_argument("--trace", action="append", default=[])
    p.add_argument("--list", action="append", default=[])

    p = sub.add_parser("report")
    p.add_argument("--dir", required=True)

    a = ap.parse_args()
    a.repo, a.hookdata = repo, os.path.join(repo, "tests", "hookdata", "libvirt-9.0")
    {"unmanaged": cmd_unmanaged, "managed": cmd_managed, "e2e": cmd_e2e, "copy-up": cmd_copy_up,
     "report": cmd_report}[a.cmd](a)


if __name__ == "__main__":
    main()
