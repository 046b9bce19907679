//! The workspace's layers, checked from `cargo metadata` rather than
//! trusted to prose: which of our crates each crate may depend on, and the
//! `rsa` crate kept away from our own code. docs/ARCHITECTURE.md describes
//! the same rules.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Each crate of the workspace and the crates of ours it may use (normal
/// dependencies; tests may use more). A new crate must take its place here.
const LAYERS: &[(&str, &[&str])] = &[
    // Types and rules; no I/O, nothing of ours.
    ("mamori-domain", &[]),
    // Primitives behind well-kept crates; nothing of ours.
    ("mamori-crypto", &[]),
    // Wire formats (plist, CMS, SCEP): pure, so it may be fuzzed and
    // reused; never services, storage or HTTP.
    ("mamori-protocol", &["mamori-domain", "mamori-crypto"]),
    // The storage and delivery ports: what a backend implements.
    ("mamori-ports", &["mamori-domain"]),
    // The use-cases: no HTTP, no SQL.
    (
        "mamori-core",
        &[
            "mamori-domain",
            "mamori-crypto",
            "mamori-protocol",
            "mamori-ports",
        ],
    ),
    // Backends implement the ports and know nothing of the services.
    ("mamori-store", &["mamori-domain", "mamori-ports"]),
    ("mamori-store-pg", &["mamori-domain", "mamori-ports"]),
    ("mamori-push", &["mamori-domain", "mamori-ports"]),
    (
        "mamori-sinks",
        &["mamori-domain", "mamori-ports", "mamori-crypto"],
    ),
    // HTTP calls the services; it never reaches past them into a backend.
    (
        "mamori-http",
        &[
            "mamori-domain",
            "mamori-crypto",
            "mamori-protocol",
            "mamori-ports",
            "mamori-core",
        ],
    ),
    // The device simulator is an independent client: it shares the wire
    // formats and nothing of the server.
    ("mamori-sim", &["mamori-protocol", "mamori-crypto"]),
    ("mamori-testkit", &[]),
    // The binary wires everything.
    (
        "mamori",
        &[
            "mamori-domain",
            "mamori-crypto",
            "mamori-protocol",
            "mamori-ports",
            "mamori-core",
            "mamori-store",
            "mamori-store-pg",
            "mamori-push",
            "mamori-sinks",
            "mamori-http",
        ],
    ),
    (
        "mamori-bench",
        &[
            "mamori-domain",
            "mamori-ports",
            "mamori-core",
            "mamori-store",
            "mamori-sim",
            "mamori-testkit",
        ],
    ),
];

fn metadata() -> Value {
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.toml");
    let host = std::process::Command::new("rustc")
        .arg("-vV")
        .output()
        .expect("rustc -vV");
    let host = String::from_utf8_lossy(&host.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_owned))
        .expect("rustc names its host");
    let out = std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["metadata", "--format-version", "1", "--offline", "--locked"])
        .args(["--filter-platform", &host, "--manifest-path"])
        .arg(&manifest)
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON")
}

/// Our crates and the crates of ours each uses (normal dependencies).
fn our_dependencies(m: &Value) -> BTreeMap<String, BTreeSet<String>> {
    let members: BTreeSet<&str> = m["workspace_members"]
        .as_array()
        .expect("members")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let ours = |name: &str| name == "mamori" || name.starts_with("mamori-");
    m["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .filter(|p| p["id"].as_str().is_some_and(|id| members.contains(id)))
        .map(|p| {
            let deps = p["dependencies"]
                .as_array()
                .expect("dependencies")
                .iter()
                .filter(|d| d["kind"].is_null())
                .filter_map(|d| d["name"].as_str())
                .filter(|n| ours(n))
                .map(str::to_owned)
                .collect();
            (p["name"].as_str().expect("name").to_owned(), deps)
        })
        .collect()
}

#[test]
fn each_crate_uses_only_the_layers_beneath_it() {
    let m = metadata();
    let actual = our_dependencies(&m);
    let allowed: BTreeMap<&str, BTreeSet<&str>> = LAYERS
        .iter()
        .map(|(c, deps)| (*c, deps.iter().copied().collect()))
        .collect();
    let mut wrong = Vec::new();
    for (krate, deps) in &actual {
        let Some(may) = allowed.get(krate.as_str()) else {
            wrong.push(format!("{krate} has no place in LAYERS"));
            continue;
        };
        for d in deps {
            if !may.contains(d.as_str()) {
                wrong.push(format!("{krate} depends on {d}"));
            }
        }
    }
    assert!(wrong.is_empty(), "layer rules broken: {wrong:#?}");
    // And the layers have no circle: each crate's allowed crates come
    // before it in LAYERS.
    for (i, (krate, deps)) in LAYERS.iter().enumerate() {
        for d in *deps {
            let at = LAYERS.iter().position(|(c, _)| c == d);
            assert!(
                at.is_some_and(|at| at < i),
                "{krate} may use {d}, which is not beneath it"
            );
        }
    }
}

/// SQL stays behind the ports: only the backends link a database driver.
/// The benchmark is the one exception, and only for its fixture (it writes
/// ten million audit records straight into a SQLite file, which the server
/// then reads through its own store).
#[test]
fn only_the_storage_backends_link_a_database_driver() {
    const DRIVERS: &[&str] = &[
        "rusqlite",
        "tokio-postgres",
        "postgres",
        "deadpool-postgres",
        "sqlx",
        "diesel",
    ];
    let may = |krate: &str, driver: &str| match krate {
        "mamori-store" => driver == "rusqlite",
        "mamori-store-pg" => driver == "tokio-postgres" || driver == "deadpool-postgres",
        "mamori-bench" => driver == "rusqlite",
        _ => false,
    };
    let m = metadata();
    let mut wrong = Vec::new();
    for p in m["packages"].as_array().expect("packages") {
        let name = p["name"].as_str().expect("name");
        if name != "mamori" && !name.starts_with("mamori-") {
            continue;
        }
        for d in p["dependencies"].as_array().expect("dependencies") {
            let dep = d["name"].as_str().expect("name");
            if d["kind"].is_null() && DRIVERS.contains(&dep) && !may(name, dep) {
                wrong.push(format!("{name} links {dep}"));
            }
        }
    }
    assert!(wrong.is_empty(), "SQL outside the backends: {wrong:?}");
}

/// RUSTSEC-2023-0071: the `rsa` crate's private-key operations leak timing.
/// Ours use aws-lc-rs; `rsa` arrives only inside the WebAuthn library
/// (attestation checks, public keys only).
#[test]
fn the_rsa_crate_is_never_ours_to_use() {
    let m = metadata();
    let names: BTreeMap<&str, &str> = m["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .filter_map(|p| Some((p["id"].as_str()?, p["name"].as_str()?)))
        .collect();
    let users: BTreeSet<&str> = m["resolve"]["nodes"]
        .as_array()
        .expect("resolve")
        .iter()
        .filter(|n| {
            n["deps"].as_array().is_some_and(|deps| {
                deps.iter().any(|d| {
                    d["pkg"]
                        .as_str()
                        .is_some_and(|id| names.get(id) == Some(&"rsa"))
                })
            })
        })
        .filter_map(|n| names.get(n["id"].as_str()?).copied())
        .collect();
    assert!(
        users.iter().all(|u| *u == "crypto-glue"),
        "the rsa crate is used by {users:?}"
    );
}

/// Every `.rs` file under `dir`, with its text.
fn sources(dir: &std::path::Path) -> Vec<(std::path::PathBuf, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read source dir") {
            let p = e.expect("dir entry").path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let text = std::fs::read_to_string(&p).expect("read source");
                out.push((p, text));
            }
        }
    }
    out
}

/// The parameter lists of the public functions in `text`, by name.
fn public_signatures(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (i, _) in text
        .match_indices("pub async fn ")
        .chain(text.match_indices("pub fn "))
    {
        let rest = &text[i..];
        let name_start = rest.find("fn ").map_or(0, |n| n + 3);
        let name: String = rest[name_start..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let Some(open) = rest.find('(') else { continue };
        let mut depth = 0;
        let mut end = open;
        for (k, c) in rest[open..].char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        end = open + k;
                        break;
                    }
                }
                _ => {}
            }
        }
        out.push((name, rest[open..end].to_owned()));
    }
    out
}

/// Who acts is a typed `Actor` (an administrator, the host's command line
/// or a job), never a string a caller could fill in; and an operation has
/// one entry point that checks what its actor may do, not a checked
/// `_by` variant beside an unchecked one.
#[test]
fn the_services_take_typed_actors_and_have_no_unchecked_twins() {
    let core = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../core/src");
    let mut wrong = Vec::new();
    for (path, text) in sources(&core) {
        for (name, params) in public_signatures(&text) {
            let stringly = params.split(',').any(|p| {
                let p = p.trim().trim_start_matches('(').trim();
                ["actor:", "requester:", "by:", "operator:"]
                    .iter()
                    .any(|n| p.starts_with(n))
                    && p.ends_with("&str")
            });
            if stringly {
                wrong.push(format!(
                    "{}: {name} takes its actor as a string",
                    path.display()
                ));
            }
            if name.ends_with("_by") {
                wrong.push(format!(
                    "{}: {name} beside an unchecked twin?",
                    path.display()
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

/// The HTTP layer's actors come from the guard: it never makes the host's
/// command line or a job, which hold every permission, nor an `Operator`,
/// which runs what no route offers; and it never touches what the
/// use-cases hold (the store, keys, caches). An `AdminActor` it cannot even
/// build: only core's authentication makes one (a private field).
#[test]
fn the_http_layer_never_acts_as_the_host_or_a_job() {
    let http = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../http/src");
    let mut wrong = Vec::new();
    for (path, text) in sources(&http) {
        // Whole words, so that no `use ... as` hides them: a renamed
        // import still names the original.
        let words: BTreeSet<&str> = text
            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .collect();
        for name in ["HostUser", "Job", "Operator"] {
            if words.contains(name) {
                wrong.push(format!("{} names {name}", path.display()));
            }
        }
        for name in ["Actor::Host", "Actor::Job"] {
            if text.contains(name) {
                wrong.push(format!("{} names {name}", path.display()));
            }
        }
        // Nor does it reach past the use-cases into what they hold: the
        // store, key material, the vault, the identity cache, the detector,
        // the audit chain's writer.
        for field in ["store", "pki", "vault", "identities", "detector", "chain"] {
            for (i, _) in text.match_indices(&format!(".{field}")) {
                let after = text[i + field.len() + 1..].chars().next();
                if !after.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '(') {
                    wrong.push(format!("{} uses .{field}", path.display()));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

/// A handler gets its caller as a proof of the permission it needs
/// (`Auth<P>`), not as a bare administrator to check by hand. The
/// exceptions: the session and second-factor routes of the API and the
/// console (a caller's own account; they need no permission) and the two-person decisions, whose
/// permission depends on the request decided (checked in the service).
#[test]
fn handlers_take_a_proof_of_their_permission() {
    let http = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../http/src");
    let mut wrong = Vec::new();
    for (path, text) in sources(&http) {
        let file = path.file_name().and_then(|f| f.to_str()).unwrap_or("");
        // The session routes of the API and of the console (signing in and
        // out, first-time setup, one's own passkeys, the overview of one's
        // own account).
        if file == "session.rs"
            || path.ends_with("console/signin.rs")
            || path.ends_with("console/home.rs")
            || path.ends_with("console/setup.rs")
            || path.ends_with("console/passkey.rs")
            || path.ends_with("console/account.rs")
        {
            continue;
        }
        for (i, _) in text.match_indices("Extension<AdminActor>") {
            let head = &text[..i];
            let Some(at) = head.rfind("async fn ") else {
                continue;
            };
            let name: String = head[at + 9..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            let decision = (file == "people.rs" || path.ends_with("console/approvals.rs"))
                && ["approvals", "approve", "reject", "index"].contains(&name.as_str());
            if !decision {
                wrong.push(format!("{}: {name}", path.display()));
            }
        }
    }
    assert!(wrong.is_empty(), "handlers without a proof: {wrong:#?}");
}

/// Only the protocol crate knows Apple's property-list format (the device
/// simulator, an independent client, has its own): the services build no
/// plist by hand and read no result by string keys out of one.
#[test]
fn only_the_protocol_crate_knows_plists() {
    let m = metadata();
    let members: BTreeSet<&str> = m["workspace_members"]
        .as_array()
        .expect("members")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let users: BTreeSet<&str> = m["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .filter(|p| p["id"].as_str().is_some_and(|id| members.contains(id)))
        .filter(|p| {
            p["dependencies"].as_array().is_some_and(|deps| {
                deps.iter()
                    .any(|d| d["name"] == "plist" && d["kind"].is_null())
            })
        })
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(
        users,
        BTreeSet::from(["mamori-protocol", "mamori-sim"]),
        "crates using plist directly"
    );
}

/// The contexts of mamori-core, lowest first. A context may use (import, or
/// call a use-case of) only the contexts listed before it; the composition
/// root (`lib.rs`) wires them and may use all. A new folder must take its
/// place here.
const CONTEXTS: &[&str] = &[
    // Who acts and the proof that they may (the shared kernel).
    "access", // The audit log, detection, incidents: everyone writes here.
    "audit",  // Administrator accounts, login, tokens, approvals.
    "admin",  // Enrollment, check-in, commands, device identity, inventory.
    "device", // The people directory, exports, offboarding.
    "people", // Policies, groups, compliance.
    "fleet",
];

/// The production part of a source file (before its test module).
fn production(text: &str) -> &str {
    text.find("#[cfg(test)]").map_or(text, |i| &text[..i])
}

/// The use-cases (methods of `Services`) defined in `text`.
fn use_cases(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in production(text).lines() {
        if line.starts_with("impl Services {") {
            inside = true;
        } else if inside && line == "}" {
            inside = false;
        } else if inside && line.starts_with("    ") && !line.starts_with("     ") {
            let mut rest = line.trim_start();
            for prefix in ["pub(crate) ", "pub(super) ", "pub ", "async "] {
                rest = rest.strip_prefix(prefix).unwrap_or(rest);
            }
            rest = rest.strip_prefix("async ").unwrap_or(rest);
            if let Some(r) = rest.strip_prefix("fn ") {
                out.push(
                    r.chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect(),
                );
            }
        }
    }
    out
}

/// The names called as `self.NAME(` or `services.NAME(` in `text`.
fn calls_on_services(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, _) in text.match_indices('.') {
        let before = text[..i].trim_end();
        if !(before.ends_with("self") || before.ends_with("services")) {
            continue;
        }
        let name: String = text[i + 1..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if text[i + 1 + name.len()..].starts_with('(') {
            out.push(name);
        }
    }
    out
}

/// The contexts of mamori-core form layers: no import and no call runs from
/// a context to one above it (so none runs in a circle), and each reaches
/// storage only through its own ports (`Services::ports`). A device's answer
/// reaches fleet through the handlers the root lists, and an approved erase
/// reaches device management through the executors it lists.
#[test]
fn the_contexts_of_core_use_only_the_contexts_beneath_them() {
    let core = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../core/src");
    let files = sources(&core);
    let context_of = |p: &std::path::Path| -> Option<String> {
        let rel = p.strip_prefix(&core).expect("under core/src");
        let mut parts = rel.components();
        let first = parts.next()?.as_os_str().to_string_lossy().into_owned();
        parts.next().map(|_| first)
    };
    let rank = |c: &str| CONTEXTS.iter().position(|x| *x == c);
    let mut defined_in = BTreeMap::new();
    for (p, text) in &files {
        let ctx = context_of(p);
        if let Some(c) = &ctx {
            assert!(rank(c).is_some(), "{c}/ is not in CONTEXTS");
        }
        for name in use_cases(text) {
            defined_in.insert(name, ctx.clone());
        }
    }
    assert!(
        defined_in.len() > 150,
        "found {} use-cases",
        defined_in.len()
    );
    let mut wrong = BTreeSet::new();
    for (p, text) in &files {
        let text = production(text);
        let file = p.strip_prefix(&core).expect("under core/src").display();
        let here = context_of(p);
        if p.ends_with("lib.rs") {
            continue;
        }
        let allowed = |other: &str| match &here {
            Some(h) => rank(other) <= rank(h),
            None => false,
        };
        for c in CONTEXTS {
            let imports =
                text.contains(&format!("crate::{c}::")) || text.contains(&format!("crate::{c};"));
            if imports && !allowed(c) {
                wrong.insert(format!("{file} imports {c}"));
            }
        }
        // Storage only through the context's own ports.
        if text.contains(".store.") || text.contains("self.store") {
            wrong.insert(format!("{file} uses the whole store"));
        }
        for c in CONTEXTS {
            if text.contains(&format!("ports.{c}")) && here.as_deref() != Some(*c) {
                wrong.insert(format!("{file} uses the ports of {c}"));
            }
        }
        for name in calls_on_services(text) {
            if let Some(Some(other)) = defined_in.get(&name) {
                if !allowed(other) {
                    wrong.insert(format!("{file} calls {name} of {other}"));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "uses running up: {wrong:#?}");
}

/// The production sources of every crate: `.rs` files under `crates/*/src`,
/// without test modules kept in their own files (`tests.rs`, `tests/`).
fn production_sources() -> Vec<(std::path::PathBuf, String)> {
    let crates = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut out = Vec::new();
    for e in std::fs::read_dir(&crates).expect("read crates/") {
        let src = e.expect("dir entry").path().join("src");
        if src.is_dir() {
            out.extend(sources(&src).into_iter().filter(|(p, _)| {
                !p.components().any(|c| c.as_os_str() == "tests") && !p.ends_with("tests.rs")
            }));
        }
    }
    out
}

/// No production source file is over 600 lines: a file that grows past it
/// holds more than one topic and is split along them.
#[test]
fn no_production_file_is_over_600_lines() {
    let files = production_sources();
    assert!(files.len() > 100, "found {} files", files.len());
    let long: Vec<String> = files
        .iter()
        .filter(|(_, text)| text.lines().count() > 600)
        .map(|(p, text)| format!("{} ({} lines)", p.display(), text.lines().count()))
        .collect();
    assert!(long.is_empty(), "files over 600 lines: {long:#?}");
}

/// The functions in `text` over `limit` lines (from `fn` to its closing
/// brace at the same indentation) whose lines just above (doc comments,
/// attributes, comments) hold no `// Length:` reason.
fn long_functions_without_reason(text: &str, limit: usize) -> Vec<(String, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let indent = &line[..line.len() - trimmed.len()];
        let mut rest = trimmed;
        for prefix in [
            "pub(crate) ",
            "pub(super) ",
            "pub ",
            "const ",
            "async ",
            "unsafe ",
        ] {
            rest = rest.strip_prefix(prefix).unwrap_or(rest);
        }
        rest = rest.strip_prefix("async ").unwrap_or(rest);
        let Some(sig) = rest.strip_prefix("fn ") else {
            continue;
        };
        let name: String = sig
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        // The body ends at the first line that is the closing brace at
        // the `fn`'s indentation (rustfmt's layout); a declaration without
        // a body ends at its `;`.
        let close = format!("{indent}}}");
        let declaration = lines[i..]
            .iter()
            .find(|l| l.contains('{') || l.trim_end().ends_with(';'))
            .is_none_or(|l| !l.contains('{'));
        if declaration {
            continue;
        }
        let Some(end) = lines[i..].iter().position(|l| *l == close) else {
            continue;
        };
        let len = end + 1;
        if len <= limit {
            continue;
        }
        let reason = lines[..i]
            .iter()
            .rev()
            .take_while(|l| {
                let t = l.trim_start();
                t.starts_with("///") || t.starts_with("//") || t.starts_with("#[")
            })
            .any(|l| l.trim_start().starts_with("// Length: "));
        if !reason {
            out.push((name, len));
        }
    }
    out
}

/// No function is over 80 lines unless a `// Length:` comment above it
/// says why it is better whole.
#[test]
fn long_functions_say_why() {
    let mut long = Vec::new();
    for (p, text) in production_sources() {
        for (name, len) in long_functions_without_reason(&text, 80) {
            long.push(format!("{}: {name} ({len} lines)", p.display()));
        }
    }
    assert!(
        long.is_empty(),
        "functions over 80 lines without a reason: {long:#?}"
    );
    // The check sees a long function (and its reason).
    let body = "    x();\n".repeat(90);
    let f = format!("fn big() {{\n{body}}}\n");
    assert_eq!(
        long_functions_without_reason(&f, 80),
        vec![("big".to_owned(), 92)]
    );
    let reasoned = format!("/// Doc.\n// Length: a table.\n{f}");
    assert!(long_functions_without_reason(&reasoned, 80).is_empty());
}

/// The parameters of each `async fn` in `text`, by name (split at the
/// commas between parameters).
fn handler_params(text: &str) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    for (i, _) in text.match_indices("async fn ") {
        let rest = &text[i + 9..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let Some(open) = rest.find('(') else { continue };
        let (mut depth, mut params, mut current) = (0, Vec::new(), String::new());
        for c in rest[open..].chars() {
            match c {
                '(' | '<' => depth += 1,
                ')' | '>' => depth -= 1,
                _ => {}
            }
            if depth == 0 {
                break;
            }
            if c == ',' && depth == 1 {
                params.push(std::mem::take(&mut current));
            } else if !(depth == 1 && c == '(' && current.trim().is_empty()) {
                current.push(c);
            }
        }
        params.push(current);
        let params = params
            .into_iter()
            .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
            .filter(|p| !p.is_empty())
            .collect();
        out.push((name, params));
    }
    out
}

/// Admin handlers take their shared preamble as the typed extractors of
/// `mamori_http::extract`: the client context as `Client`, the JSON body
/// as `Body<T>` (the last parameter, so the caller is authenticated before
/// any body is parsed), path identifiers parsed once into their newtypes
/// (`Path<GroupId>`, `Path<DeviceKey>`, ...). Only free text the service
/// looks up by equality stays a string: an administrator's `name` and a
/// passkey's `credential` id. Answers are typed (`#[derive(Serialize)]`),
/// not `json!` objects.
#[test]
fn admin_handlers_use_the_typed_extractors() {
    let admin = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../http/src/admin");
    let mut wrong = Vec::new();
    for (path, text) in sources(&admin) {
        let text = production(&text);
        for banned in [
            "Extension<ClientContext>",
            "json_body(",
            "json!(",
            "HeaderMap, body",
        ] {
            if text.contains(banned) {
                wrong.push(format!("{}: {banned}", path.display()));
            }
        }
        for (name, params) in handler_params(text) {
            let at = |p: &str| format!("{}: {name}: {p}", path.display());
            for (k, p) in params.iter().enumerate() {
                if p.starts_with("Body(") && k + 1 != params.len() {
                    wrong.push(at("Body<T> is not the last parameter"));
                }
                if p.ends_with("Path<String>")
                    && !["Path(name): Path<String>", "Path(credential): Path<String>"]
                        .contains(&p.as_str())
                {
                    wrong.push(at(p));
                }
                if p.ends_with("Bytes") && !(path.ends_with("people.rs") && name == "import") {
                    wrong.push(at("raw body (use Body<T>)"));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}
