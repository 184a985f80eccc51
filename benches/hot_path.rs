//! In-process cost of the pieces the hook's fast path rests on: the config
//! pre-scan, the config parse, the hook XML parse and the plan. Whole-process
//! figures (exec, start-up, netlink) are scripts/bench's; see BENCHMARKS.md.
//!
//!   cargo bench --locked --bench hot_path

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use net_hook::config::{Config, might_mention};
use net_hook::model::{Link, LinkKind, Observed};

const STARTED_XML: &str =
    include_str!("../tests/hookdata/libvirt-9.0/1_provider_started_begin.xml");

/// 1_provider with VLAN 104 among `n` networks of four VLANs each, as
/// scripts/bench.d/hookbench.py's large config (every address unique).
fn config(n: usize) -> String {
    let mut s = String::from(
        "[networks.1_provider]\n[[networks.1_provider.vlans]]\nid = 104\naddresses = [\"10.12.8.1/22\"]\n",
    );
    let mut k = 0;
    for i in 1..n {
        s.push_str(&format!("[networks.prov-{i:03}]\n"));
        for vid in 101..105 {
            s.push_str(&format!(
                "[[networks.prov-{i:03}.vlans]]\nid = {vid}\naddresses = [\"10.{}.{}.1/24\"]\n",
                64 + k / 256,
                k % 256
            ));
            k += 1;
        }
    }
    s
}

/// The host as the hook sees it before `started`: lo and libvirt's bridge.
fn observed() -> Observed {
    let link = |index, name: &str, kind: LinkKind| Link {
        index,
        name: name.into(),
        vlan_filtering: (kind == LinkKind::Bridge).then_some(false),
        kind,
        mtu: 1500,
        up: true,
        ..Link::default()
    };
    Observed {
        links: vec![
            link(1, "lo", LinkKind::Physical),
            link(2, "virbr1", LinkKind::Bridge),
        ],
        ..Observed::default()
    }
}

fn benches(c: &mut Criterion) {
    let small = config(1);
    let large = config(200);
    for (tag, text) in [("1", &small), ("200", &large)] {
        c.bench_function(&format!("prescan/unmanaged/{tag}-networks"), |b| {
            b.iter(|| might_mention(&mut black_box(text.as_bytes()), black_box("default")))
        });
        c.bench_function(&format!("config-parse/1_provider/{tag}-networks"), |b| {
            b.iter(|| Config::parse_network(black_box(text), "net-hook.toml", "1_provider"))
        });
    }
    c.bench_function("xml-parse/started", |b| {
        b.iter(|| net_hook::hookdata::parse(black_box(STARTED_XML)))
    });
    let net = Config::parse_network(&small, "net-hook.toml", "1_provider")
        .ok()
        .flatten()
        .expect("the bench's own config is valid");
    let hn = net_hook::hookdata::parse(STARTED_XML).expect("recorded hook input parses");
    let obs = observed();
    // Measure a plan that does the work: create virbr1.104, address it, up.
    let steps = net_hook::plan::plan_up(&net, "virbr1", &hn, &obs).map(|p| p.steps.len());
    assert!(
        matches!(steps, Ok(n) if n >= 3),
        "unexpected plan: {steps:?}"
    );
    c.bench_function("plan/started/1-vlan", |b| {
        b.iter(|| {
            net_hook::plan::plan_up(black_box(&net), "virbr1", black_box(&hn), black_box(&obs))
        })
    });
}

criterion_group!(hot_path, benches);
criterion_main!(hot_path);
