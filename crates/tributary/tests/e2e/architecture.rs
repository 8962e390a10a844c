//! The architecture test (ARCHITECTURE.md §3, "How they are enforced").
//!
//! Reads `cargo metadata` and fails when:
//! - a crate's workspace dependencies are not a subset of §2's table (held as a copy below);
//! - tokio, mio or socket2 are in the normal dependency closure of an L0 crate;
//! - a crate other than `tributary-store` depends directly on rusqlite or a PostgreSQL client;
//! - an L0 crate lacks its `clippy.toml` or its `disallowed-methods` list;
//! - a crate has more than one integration-test target.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

/// Copy of ARCHITECTURE.md §2's table: crate -> workspace crates it may depend on.
/// A crate is added here in the same change that adds its row to §2 (§4).
const ALLOWED: &[(&str, &[&str])] = &[
    // L0
    ("tributary-media", &[]),
    ("tributary-mpegts", &["tributary-media"]),
    ("tributary-rtp", &["tributary-media"]),
    ("tributary-rtmp", &["tributary-media"]),
    ("tributary-rtsp", &["tributary-media", "tributary-rtp"]),
    (
        "tributary-packager",
        &["tributary-media", "tributary-mpegts"],
    ),
    ("tributary-domain", &["tributary-media"]),
    // L1
    ("tributary-hub", &["tributary-media"]),
    ("tributary-net", &["tributary-media"]),
    ("tributary-store", &["tributary-domain"]),
    // L2
    (
        "tributary-ingest",
        &[
            "tributary-media",
            "tributary-mpegts",
            "tributary-rtp",
            "tributary-rtmp",
            "tributary-domain",
            "tributary-hub",
            "tributary-net",
        ],
    ),
    (
        "tributary-serve",
        &[
            "tributary-media",
            "tributary-mpegts",
            "tributary-rtp",
            "tributary-rtsp",
            "tributary-rtmp",
            "tributary-domain",
            "tributary-hub",
            "tributary-net",
        ],
    ),
    (
        "tributary-publish",
        &[
            "tributary-media",
            "tributary-mpegts",
            "tributary-rtmp",
            "tributary-packager",
            "tributary-domain",
            "tributary-hub",
            "tributary-net",
        ],
    ),
    (
        "tributary-transcode",
        &[
            "tributary-media",
            "tributary-mpegts",
            "tributary-domain",
            "tributary-hub",
        ],
    ),
    (
        "tributary-dvr",
        &[
            "tributary-media",
            "tributary-mpegts",
            "tributary-packager",
            "tributary-domain",
            "tributary-hub",
        ],
    ),
    // L3: every L0, L1 and L2 crate
    (
        "tributary-engine",
        &[
            "tributary-media",
            "tributary-mpegts",
            "tributary-rtp",
            "tributary-rtsp",
            "tributary-rtmp",
            "tributary-packager",
            "tributary-domain",
            "tributary-hub",
            "tributary-net",
            "tributary-store",
            "tributary-ingest",
            "tributary-serve",
            "tributary-publish",
            "tributary-transcode",
            "tributary-dvr",
        ],
    ),
    // L4
    ("tributary-api", &["tributary-engine", "tributary-domain"]),
    // L5 (the binary)
    (
        "tributary",
        &["tributary-api", "tributary-engine", "tributary-domain"],
    ),
    // dev: L0 crates and hub; only ever a dev-dependency of others
    (
        "tributary-testkit",
        &[
            "tributary-media",
            "tributary-mpegts",
            "tributary-rtp",
            "tributary-rtsp",
            "tributary-rtmp",
            "tributary-packager",
            "tributary-domain",
            "tributary-hub",
        ],
    ),
    // dev: any workspace crate; no crate depends on it
    (
        "tributary-bench",
        &[
            "tributary-media",
            "tributary-mpegts",
            "tributary-rtp",
            "tributary-rtsp",
            "tributary-rtmp",
            "tributary-packager",
            "tributary-domain",
            "tributary-hub",
            "tributary-net",
            "tributary-store",
            "tributary-ingest",
            "tributary-serve",
            "tributary-publish",
            "tributary-transcode",
            "tributary-dvr",
            "tributary-engine",
            "tributary-api",
            "tributary",
            "tributary-testkit",
        ],
    ),
];

/// The L0 crates (§2): pure, no tokio, each with its own `clippy.toml`.
const L0: &[&str] = &[
    "tributary-media",
    "tributary-mpegts",
    "tributary-rtp",
    "tributary-rtsp",
    "tributary-rtmp",
    "tributary-packager",
    "tributary-domain",
];

/// Crates that must not be in the normal dependency closure of an L0 crate (invariant 6).
const RUNTIME_CRATES: &[&str] = &["tokio", "mio", "socket2"];

/// Database clients only `tributary-store` may depend on (invariant 5).
const DB_CRATES: &[&str] = &["rusqlite", "postgres", "tokio-postgres", "sqlx"];

/// The one crate allowed to hold a database client.
const STORE: &str = "tributary-store";

/// The dev-only crate every workspace crate may list as a dev-dependency.
const TESTKIT: &str = "tributary-testkit";

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `cargo metadata` output, run once per flavour for the whole test binary.
fn metadata(no_deps: bool) -> &'static Value {
    static NO_DEPS: OnceLock<Value> = OnceLock::new();
    static FULL: OnceLock<Value> = OnceLock::new();
    let cell = if no_deps { &NO_DEPS } else { &FULL };
    cell.get_or_init(|| run_metadata(no_deps))
}

fn run_metadata(no_deps: bool) -> Value {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.current_dir(workspace_root())
        .args(["metadata", "--format-version", "1"]);
    if no_deps {
        cmd.arg("--no-deps");
    }
    let out = cmd.output().expect("running `cargo metadata`");
    assert!(
        out.status.success(),
        "`cargo metadata` failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("`cargo metadata` printed invalid JSON")
}

fn str_field<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("cargo metadata: `{key}` is not a string in {v}"))
}

fn array<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v[key]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_else(|| panic!("cargo metadata: `{key}` is not an array"))
}

/// The workspace members' package objects (`--no-deps` lists exactly those).
fn workspace_packages(meta: &Value) -> Vec<&Value> {
    let members: BTreeSet<&str> = array(meta, "workspace_members")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    array(meta, "packages")
        .iter()
        .filter(|p| members.contains(str_field(p, "id")))
        .collect()
}

fn is_workspace_crate_name(name: &str) -> bool {
    name == "tributary" || name.starts_with("tributary-")
}

fn allowed_table() -> HashMap<&'static str, BTreeSet<&'static str>> {
    ALLOWED
        .iter()
        .map(|(k, v)| (*k, v.iter().copied().collect()))
        .collect()
}

#[test]
fn table_is_internally_consistent() {
    let table = allowed_table();
    assert_eq!(
        table.len(),
        ALLOWED.len(),
        "duplicate row in the table copy"
    );
    for (krate, deps) in ALLOWED {
        for dep in *deps {
            assert!(
                table.contains_key(dep),
                "table row `{krate}` names `{dep}`, which has no row of its own"
            );
            assert_ne!(krate, dep, "table row `{krate}` lists itself");
        }
    }
    for l0 in L0 {
        assert!(table.contains_key(l0), "L0 crate `{l0}` has no table row");
    }
}

#[test]
fn workspace_dependencies_follow_the_table() {
    let meta = metadata(true);
    let table = allowed_table();
    let mut problems = Vec::new();

    for pkg in workspace_packages(meta) {
        let name = str_field(pkg, "name");
        let Some(allowed) = table.get(name) else {
            problems.push(format!(
                "workspace crate `{name}` has no row in ARCHITECTURE.md §2's table \
                 (add it there and to ALLOWED in this test)"
            ));
            continue;
        };
        for dep in array(pkg, "dependencies") {
            let dep_name = str_field(dep, "name");
            let is_path = dep.get("path").is_some_and(|p| !p.is_null());
            if !is_path || !is_workspace_crate_name(dep_name) {
                continue;
            }
            let kind = dep["kind"].as_str().unwrap_or("normal");
            let ok = match kind {
                "dev" => allowed.contains(dep_name) || dep_name == TESTKIT,
                _ => allowed.contains(dep_name),
            };
            if !ok {
                let why = if dep_name == TESTKIT {
                    " (tributary-testkit may only be a dev-dependency)".to_owned()
                } else if dep_name == "tributary-bench" {
                    " (no crate may depend on tributary-bench)".to_owned()
                } else {
                    format!(
                        " (§2 allows `{name}` only: {})",
                        if allowed.is_empty() {
                            "none".to_owned()
                        } else {
                            allowed.iter().copied().collect::<Vec<_>>().join(", ")
                        }
                    )
                };
                problems.push(format!(
                    "`{name}` -> `{dep_name}` [{kind}] is not allowed{why}"
                ));
            }
        }
    }

    assert!(
        problems.is_empty(),
        "workspace dependency graph breaks ARCHITECTURE.md §2:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn l0_crates_do_not_pull_in_an_async_runtime_or_sockets() {
    let meta = metadata(false);
    let names: HashMap<&str, &str> = array(meta, "packages")
        .iter()
        .map(|p| (str_field(p, "id"), str_field(p, "name")))
        .collect();
    let resolve = &meta["resolve"];
    assert!(
        resolve.is_object(),
        "`cargo metadata` printed no `resolve` section"
    );

    // id -> normal (kind == null) dependency ids.
    let mut normal_edges: HashMap<&str, Vec<&str>> = HashMap::new();
    for node in array(resolve, "nodes") {
        let id = str_field(node, "id");
        let deps = array(node, "deps")
            .iter()
            .filter(|d| {
                d["dep_kinds"]
                    .as_array()
                    .is_some_and(|ks| ks.iter().any(|k| k["kind"].is_null()))
            })
            .map(|d| str_field(d, "pkg"))
            .collect();
        normal_edges.insert(id, deps);
    }

    let mut problems = Vec::new();
    for pkg in workspace_packages(meta) {
        let name = str_field(pkg, "name");
        if !L0.contains(&name) {
            continue;
        }
        let root = str_field(pkg, "id");
        // BFS remembering each node's parent so the failure names the path.
        let mut parent: BTreeMap<&str, &str> = BTreeMap::new();
        let mut queue = VecDeque::from([root]);
        let mut seen = BTreeSet::from([root]);
        while let Some(id) = queue.pop_front() {
            for &next in normal_edges.get(id).map(Vec::as_slice).unwrap_or(&[]) {
                if seen.insert(next) {
                    parent.insert(next, id);
                    queue.push_back(next);
                }
            }
        }
        for id in &seen {
            let dep_name = names.get(id).copied().unwrap_or(id);
            if RUNTIME_CRATES.contains(&dep_name) {
                let mut path = vec![dep_name];
                let mut cur = *id;
                while let Some(&p) = parent.get(cur) {
                    path.push(names.get(p).copied().unwrap_or(p));
                    cur = p;
                }
                path.reverse();
                problems.push(format!(
                    "L0 crate `{name}` has `{dep_name}` in its normal dependency closure: {}",
                    path.join(" -> ")
                ));
            }
        }
    }

    assert!(
        problems.is_empty(),
        "L0 crates must not depend on tokio, mio or socket2 (ARCHITECTURE.md §3, invariant 6):\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn only_store_touches_a_database() {
    let meta = metadata(true);
    let mut problems = Vec::new();
    for pkg in workspace_packages(meta) {
        let name = str_field(pkg, "name");
        if name == STORE {
            continue;
        }
        for dep in array(pkg, "dependencies") {
            let dep_name = str_field(dep, "name");
            if DB_CRATES.contains(&dep_name) {
                let kind = dep["kind"].as_str().unwrap_or("normal");
                problems.push(format!("`{name}` -> `{dep_name}` [{kind}]"));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "only `{STORE}` may depend on a database client (ARCHITECTURE.md §3, invariant 5):\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn l0_crates_carry_their_clippy_toml() {
    let meta = metadata(true);
    let mut problems = Vec::new();
    for pkg in workspace_packages(meta) {
        let name = str_field(pkg, "name");
        if !L0.contains(&name) {
            continue;
        }
        let manifest = Path::new(str_field(pkg, "manifest_path"));
        let dir = manifest
            .parent()
            .unwrap_or_else(|| panic!("manifest path of `{name}` has no parent"));
        let clippy = dir.join("clippy.toml");
        match std::fs::read_to_string(&clippy) {
            Err(e) => problems.push(format!(
                "L0 crate `{name}` has no readable {}: {e}",
                clippy.display()
            )),
            Ok(text) => {
                if !text.contains("disallowed-methods") {
                    problems.push(format!(
                        "L0 crate `{name}`: {} has no `disallowed-methods` list",
                        clippy.display()
                    ));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "each L0 crate needs its own clippy.toml with `disallowed-methods` (ARCHITECTURE.md §3):\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn at_most_one_integration_test_target_per_crate() {
    let meta = metadata(true);
    let mut problems = Vec::new();
    for pkg in workspace_packages(meta) {
        let name = str_field(pkg, "name");
        let tests: Vec<&str> = array(pkg, "targets")
            .iter()
            .filter(|t| {
                t["kind"]
                    .as_array()
                    .is_some_and(|k| k.len() == 1 && k[0] == "test")
            })
            .map(|t| str_field(t, "name"))
            .collect();
        if tests.len() > 1 {
            problems.push(format!(
                "`{name}` has {} integration-test targets: {} (merge them into one binary)",
                tests.len(),
                tests.join(", ")
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "a crate may have at most one integration-test target (ARCHITECTURE.md §14):\n  {}",
        problems.join("\n  ")
    );
}
