//! `cargo bench`: operations per second and key-value work per call (host calls, i.e.
//! round trips, and keys read and written), through the router over the in-memory store,
//! at 1,000, 10,000 and 100,000 users (`SCIM_EDGE_BENCH_SCALES=1000,100000` to choose).
//! `SCIM_EDGE_BENCH_PROFILE=edge` measures a store without atomics, as on the edge host.
//! Indexed operations must cost the same at every size, and their time at 100,000 users
//! must stay within 1.5x of their time at 1,000.

use scim_edge::auth::KeyHash;
use scim_edge::config::{Config, OrgConfig};
use scim_edge::http::Request;
use scim_edge::ids::{ManualClock, OrgId, SeqIds};
use scim_edge::okta::Policy;
use scim_edge::router::Router;
use scim_edge::store::{decode_counter, Counts, MemStore, Store};
use serde_json::json;
use std::hint::black_box;
use std::time::Instant;

// glibc's allocator searches longer as the heap holding 100,000 users grows; mimalloc
// keeps allocation cost independent of what the in-memory store holds.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ORG: &str = "3f2b1c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d";
const KEY: &str = "bench-key";
const GROUP_SIZE: usize = 10_000;

struct Env {
    store: MemStore,
    clock: ManualClock,
    ids: SeqIds,
    config: Config,
}

impl Env {
    fn new(edge: bool) -> Self {
        let mut config = Config::default();
        if let Some(org) = OrgId::parse(ORG) {
            config.orgs.insert(
                org,
                OrgConfig {
                    keys: vec![KeyHash::of(KEY)],
                    policy: Policy::Strict,
                    vault: None,
                },
            );
        }
        Env {
            store: if edge {
                MemStore::without_atomics()
            } else {
                MemStore::new()
            },
            clock: ManualClock::at(1_700_000_000_000),
            ids: SeqIds::default(),
            config,
        }
    }

    fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let r = self.send_raw(method, path, body);
        (r.status, r.body_json())
    }

    /// Without parsing the response, for calls whose body is large.
    fn send_raw(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> scim_edge::http::Response {
        let mut req = Request::new(method, &format!("/v2/{ORG}{path}"))
            .header("Authorization", &format!("Bearer {KEY}"));
        if let Some(b) = body {
            req = req.header("Content-Type", "application/scim+json").json(&b);
        }
        // 50 requests a second: a log's obsolete keys are deleted a minute after the
        // snapshot that made them so, within every run, as in service.
        self.clock.advance(20);
        Router::new(&self.config, &self.store, &self.clock, &self.ids).handle(&req)
    }

    fn create(&self, name: &str) -> String {
        let body = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name,
            "name": {"givenName": "Bench", "familyName": "User"},
            "emails": [{"primary": true, "value": name, "type": "work"}], "active": true});
        let (s, b) = self.send("POST", "/Users", Some(body));
        assert_eq!(s, 201, "{b}");
        b["id"].as_str().unwrap_or_default().to_string()
    }
}

/// Creates users until the listing log has just compacted, so that every size measures
/// the same log state (an empty tail) rather than whatever the seeding left.
fn settle(env: &Env, tag: &str) {
    let key = format!("{ORG}/L/u/n");
    let top = || {
        env.store
            .get(&key)
            .ok()
            .flatten()
            .and_then(|b| decode_counter(&b))
            .unwrap_or(0)
    };
    let mut i = 0;
    while top() % scim_edge::collection::COMPACT_EVERY != 0 {
        env.create(&format!("{tag}{i:06}@bench.io"));
        i += 1;
    }
}

struct Row {
    name: &'static str,
    per_sec: f64,
    calls: f64,
    reads: f64,
    writes: f64,
}

fn measure(env: &Env, name: &'static str, n: usize, mut f: impl FnMut(usize)) -> Row {
    let before = env.store.counts();
    let t = Instant::now();
    for i in 0..n {
        f(i);
    }
    let secs = t.elapsed().as_secs_f64();
    let used: Counts = env.store.counts() - before;
    let per = |x: u64| x as f64 / n as f64;
    Row {
        name,
        per_sec: n as f64 / secs,
        calls: per(used.calls),
        reads: per(used.reads),
        writes: per(used.writes),
    }
}

fn spread(i: usize, n: usize) -> usize {
    (i.wrapping_mul(7919)) % n
}

fn run(users: usize, edge: bool) -> Vec<Row> {
    let env = Env::new(edge);
    let ids: Vec<String> = (0..users)
        .map(|i| env.create(&format!("user{i:06}@bench.io")))
        .collect();
    // The group's members: the org's users first, then extra users when the org is smaller.
    let mut pool = ids.clone();
    pool.extend((users..GROUP_SIZE).map(|i| env.create(&format!("member{i:06}@bench.io"))));
    let (_, g) = env.send("POST", "/Groups", Some(json!({"displayName": "Everyone"})));
    let gid = g["id"].as_str().unwrap_or_default().to_string();
    for batch in pool[..GROUP_SIZE].chunks(500) {
        let value: Vec<_> = batch.iter().map(|id| json!({"value": id})).collect();
        let (s, _) = env.send("PATCH", &format!("/Groups/{gid}?excludedAttributes=members"), Some(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "add", "path": "members", "value": value}]})));
        assert_eq!(s, 200);
    }
    let newcomers: Vec<String> = (0..600)
        .map(|i| env.create(&format!("new{i:06}@bench.io")))
        .collect();
    let mut rows = Vec::new();
    rows.push(measure(&env, "create", 1000, |i| {
        black_box(env.create(&format!("created{i:06}@bench.io")));
    }));
    // Reads pick group members at every size, so each user read computes one group.
    let members = users.min(GROUP_SIZE);
    rows.push(measure(&env, "GET by id", 5000, |i| {
        let (s, b) = env.send("GET", &format!("/Users/{}", ids[spread(i, members)]), None);
        assert_eq!(s, 200);
        black_box(b);
    }));
    rows.push(measure(&env, "userName eq filter", 5000, |i| {
        let (s, b) = env.send(
            "GET",
            &format!(
                "/Users?filter=userName%20eq%20%22user{:06}%40bench.io%22",
                spread(i, users)
            ),
            None,
        );
        assert_eq!((s, b["totalResults"].as_u64()), (200, Some(1)));
    }));
    rows.push(measure(&env, "deactivate PATCH", 1000, |i| {
        let (s, _) = env.send("PATCH", &format!("/Users/{}", ids[spread(i, members)]), Some(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "replace", "value": {"active": false}}]})));
        assert_eq!(s, 200);
    }));
    settle(&env, "settle");
    let page = |i: usize| {
        let start = 1 + spread(i, users.saturating_sub(100).max(1));
        let (s, b) = env.send("GET", &format!("/Users?startIndex={start}&count=100"), None);
        assert_eq!((s, b["itemsPerPage"].as_u64()), (200, Some(100)));
    };
    rows.push(measure(&env, "list page of 100", 500, page));
    // As on Spin's Redis backend, whose batch reads fail: every read is its own call.
    env.store.set_batch(false);
    rows.push(measure(&env, "list page of 100, no batch reads", 500, page));
    env.store.set_batch(true);
    rows.push(measure(&env, "member add (excl. members)", 300, |i| {
        let (s, _) = env.send("PATCH", &format!("/Groups/{gid}?excludedAttributes=members"), Some(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "add", "path": "members", "value": [{"value": newcomers[i]}]}]})));
        assert_eq!(s, 200);
    }));
    rows.push(measure(&env, "member add, 200 with 10k members", 100, |i| {
        let r = env.send_raw("PATCH", &format!("/Groups/{gid}"), Some(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "add", "path": "members", "value": [{"value": newcomers[300 + i]}]}]})));
        assert_eq!(r.status, 200);
        black_box(r.body);
    }));
    rows
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let scales: Vec<usize> = match std::env::var("SCIM_EDGE_BENCH_SCALES") {
        Ok(s) => s.split(',').filter_map(|x| x.trim().parse().ok()).collect(),
        Err(_) => vec![1_000, 10_000, 100_000],
    };
    let edge = std::env::var("SCIM_EDGE_BENCH_PROFILE").is_ok_and(|p| p == "edge");
    let results: Vec<(usize, Vec<Row>)> = scales.iter().map(|&n| (n, run(n, edge))).collect();
    let Some((first_n, first)) = results.first() else {
        return;
    };
    let Some((last_n, last)) = results.last() else {
        return;
    };
    println!(
        "profile: {}",
        if edge { "edge (no atomics)" } else { "spin" }
    );
    print!("| operation |");
    for (n, _) in &results {
        print!(" ops/s @{n} | round trips @{n} | reads @{n} | writes @{n} |");
    }
    println!(" time ratio {last_n}/{first_n} |");
    print!("|---|");
    for _ in &results {
        print!("---:|---:|---:|---:|");
    }
    println!("---:|");
    for (i, row) in first.iter().enumerate() {
        print!("| {} |", row.name);
        for (_, rows) in &results {
            if let Some(r) = rows.get(i) {
                print!(
                    " {:.0} | {:.2} | {:.2} | {:.2} |",
                    r.per_sec, r.calls, r.reads, r.writes
                );
            }
        }
        let ratio = last.get(i).map_or(f64::NAN, |l| row.per_sec / l.per_sec);
        println!(" {ratio:.2} |");
    }
}
