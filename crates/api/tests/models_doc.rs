//! docs/MODELS.md is generated from the declarations (`clianta_catalog::all_entities()`) and the
//! OpenAPI document: one row per entity with its crate, collection, tenancy, unique keys,
//! indexes, text fields and the API paths that serve it. The test fails when the committed file
//! is stale, when an entity has no routes and is not on the internal allow-list below, and when
//! an entity is missing from the storage contract suite.
//!
//! Regenerate with `UPDATE_MODELS_DOC=1 cargo nextest run -p clianta-api --test models_doc`.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers panic on failure by design"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use crm_core::schema::{Dir, EntityDef, Tenancy};

/// Entities with no HTTP routes of their own, and why. Anything else without routes fails.
const INTERNAL: &[(&str, &str)] = &[
    (
        "workspacecounters",
        "per-workspace sequences (ticket numbers); written by the services",
    ),
    (
        "eventoutbox",
        "delivery backlog of domain events; read by the outbox relay",
    ),
    (
        "domainevents",
        "event log; consumed by automation, not served as records",
    ),
    ("jobs", "background job queue; run by the worker"),
    (
        "ratelimitbuckets",
        "rate-limit windows; written by the HTTP limiter",
    ),
    (
        "idempotencyrecords",
        "replayed answers of POSTs with Idempotency-Key",
    ),
    ("otps", "one-time codes; consumed by the account flows"),
    (
        "otpsends",
        "one-time code send log; rate limits the account flows",
    ),
    ("sessions", "refresh-token families; served through /auth"),
    ("settings", "server secrets (signing key); never served"),
    (
        "memberships",
        "per-user index of workspace roles; served through /workspaces",
    ),
    (
        "contactmerges",
        "merge history; served through the contact's merge routes",
    ),
    (
        "warmupactivities",
        "global log of warmup mails (no tenant); written by the warmup job",
    ),
];

/// Entities whose routes use another word than their collection.
const ALIASES: &[(&str, &[&str])] = &[
    ("projects", &["workspaces"]),
    ("teammembers", &["members", "invites"]),
    ("useractions", &["audit-log", "user-actions"]),
    ("workspaceinvitelinks", &["invite-link", "invite-links"]),
    ("users", &["auth"]),
    ("stagechangeevents", &["stage-history", "history", "funnel"]),
    ("customfielddefinitions", &["custom-fields"]),
    ("trackingevents", &["public-track", "tracking-events"]),
    ("emailtrackings", &["email-tracking", "t"]),
    ("aiclientmemories", &["ai-memory"]),
    ("agentmemorydatas", &["agent-memory"]),
    ("intentsignals", &["intent"]),
    ("contactlifecyclehistories", &["lifecycle"]),
    ("webhooksubscriptions", &["webhooks"]),
];

fn norm(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase()
}

fn singular(s: &str) -> String {
    if let Some(b) = s.strip_suffix("ies") {
        format!("{b}y")
    } else if let Some(b) = s.strip_suffix('s') {
        b.to_owned()
    } else {
        s.to_owned()
    }
}

/// The API paths whose literal segments name the entity's collection (or an alias).
fn routes_of(def: &EntityDef, paths: &[String]) -> Vec<String> {
    let coll = norm(def.collection);
    let mut words: BTreeSet<String> = [coll.clone(), singular(&coll), norm(def.name)]
        .into_iter()
        .collect();
    for (c, alias) in ALIASES {
        if *c == def.collection {
            words.extend(alias.iter().map(|a| norm(a)));
        }
    }
    // A segment names it (`battlecards`), or a parent and child do together
    // (`workflows/{id}/enrollments` serves `workflowenrollments`).
    paths
        .iter()
        .filter(|p| {
            let segs: Vec<String> = p
                .split('/')
                .filter(|s| !s.starts_with('{') && !s.is_empty())
                .skip(2) // "api", "v1"
                .map(norm)
                .collect();
            let single = segs
                .iter()
                .any(|s| words.contains(s) || words.contains(&singular(s)));
            let pair = segs
                .windows(2)
                .any(|w| words.contains(&format!("{}{}", singular(&w[0]), w[1])));
            single || pair
        })
        .cloned()
        .collect()
}

fn index_text(keys: &[(&str, Dir)]) -> String {
    let inner: Vec<String> = keys
        .iter()
        .map(|(k, d)| match d {
            Dir::Asc => (*k).to_owned(),
            Dir::Desc => format!("{k}:-1"),
        })
        .collect();
    format!("{{{}}}", inner.join(","))
}

/// Which crate declares each collection.
fn crates() -> BTreeMap<&'static str, &'static str> {
    let mut m = BTreeMap::new();
    for (krate, defs) in [
        ("crm-core", crm_core::entities::all()),
        ("campaigns", campaigns::entities()),
        ("ai-memory", ai_memory::entities()),
        ("analytics", analytics::entities()),
        ("automation", automation::entities()),
        ("integrations", integrations::entities()),
    ] {
        for d in defs {
            m.insert(d.collection, krate);
        }
    }
    m
}

fn paths() -> Vec<String> {
    let doc = serde_json::to_value(clianta_api::openapi()).unwrap();
    doc["paths"].as_object().unwrap().keys().cloned().collect()
}

fn generate() -> (String, Vec<String>) {
    let paths = paths();
    let krates = crates();
    let internal: BTreeMap<&str, &str> = INTERNAL.iter().copied().collect();
    let mut unrouted = Vec::new();
    let mut out = String::from(
        "# Models\n\n\
         Generated by `crates/api/tests/models_doc.rs` from `clianta_catalog::all_entities()` \
         and the OpenAPI document; do not edit by hand. Regenerate with\n\
         `UPDATE_MODELS_DOC=1 cargo nextest run -p clianta-api --test models_doc`.\n\n\
         Every index of a workspace entity starts with its tenant field (TTL indexes excepted); \
         unique keys hold within the workspace and only where the fields are present. Routes are \
         the API paths whose segments name the collection; internal entities say why they have \
         none.\n\n",
    );
    let mut by_crate: BTreeMap<&str, Vec<&EntityDef>> = BTreeMap::new();
    for d in clianta_catalog::all_entities() {
        by_crate
            .entry(krates.get(d.collection).copied().unwrap_or("?"))
            .or_default()
            .push(d);
    }
    for (krate, mut defs) in by_crate {
        defs.sort_by_key(|d| d.collection);
        writeln!(out, "## {krate}\n").unwrap();
        out.push_str(
            "| Entity | Collection | Tenant | Unique keys | Indexes | Text | Routes |\n\
             |---|---|---|---|---|---|---|\n",
        );
        for d in defs {
            let tenant = match d.tenancy {
                Tenancy::Workspace { field } => format!("workspace (`{field}`)"),
                Tenancy::Global => "global".to_owned(),
            };
            let unique: Vec<String> = d
                .unique
                .iter()
                .map(|u| format!("`{{{}}}`", u.fields.join(",")))
                .collect();
            let indexes: Vec<String> = d
                .effective_indexes()
                .iter()
                .zip(d.indexes)
                .map(|(keys, ix)| match ix.ttl_seconds {
                    Some(s) => format!("`{}` TTL {s}s", index_text(keys)),
                    None => format!("`{}`", index_text(keys)),
                })
                .collect();
            let text = d.text.join(", ");
            let routes = routes_of(d, &paths);
            let routes = if routes.is_empty() {
                match internal.get(d.collection) {
                    Some(why) => format!("internal: {why}"),
                    None => {
                        unrouted.push(d.collection.to_owned());
                        "**none**".to_owned()
                    }
                }
            } else {
                routes
                    .iter()
                    .map(|p| format!("`{}`", p.trim_start_matches("/api/v1")))
                    .collect::<Vec<_>>()
                    .join("<br>")
            };
            writeln!(
                out,
                "| {} | `{}` | {} | {} | {} | {} | {} |",
                d.name,
                d.collection,
                tenant,
                unique.join("<br>"),
                indexes.join("<br>"),
                text,
                routes
            )
            .unwrap();
        }
        out.push('\n');
    }
    (out, unrouted)
}

fn doc_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/MODELS.md")
}

#[test]
fn models_doc_is_current() {
    let (fresh, _) = generate();
    let path = doc_path();
    if std::env::var_os("UPDATE_MODELS_DOC").is_some() {
        std::fs::write(&path, &fresh).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    let first_diff = committed
        .lines()
        .zip(fresh.lines())
        .find(|(a, b)| a != b)
        .map(|(a, b)| format!("\n  committed: {a}\n  generated: {b}"))
        .unwrap_or_default();
    assert!(
        committed == fresh,
        "docs/MODELS.md is stale: regenerate with \
         `UPDATE_MODELS_DOC=1 cargo nextest run -p clianta-api --test models_doc`{first_diff}"
    );
}

#[test]
fn every_entity_has_a_row() {
    let (fresh, _) = generate();
    for d in clianta_catalog::all_entities() {
        assert!(
            fresh.contains(&format!("| {} | `{}` |", d.name, d.collection)),
            "{} has no row",
            d.collection
        );
    }
}

#[test]
fn every_entity_has_routes_or_a_reason() {
    let (_, unrouted) = generate();
    assert!(
        unrouted.is_empty(),
        "entities without routes (serve them, or add them to INTERNAL with a reason): {unrouted:?}"
    );
    // The allow-list names only declared entities.
    let declared: BTreeSet<&str> = clianta_catalog::all_entities()
        .iter()
        .map(|d| d.collection)
        .collect();
    for (c, _) in INTERNAL {
        assert!(
            declared.contains(c),
            "INTERNAL names {c}, which is not declared"
        );
    }
}

#[test]
fn every_entity_is_in_the_contract_suite() {
    let covered: BTreeSet<&str> = storage_contract::thing::all_defs()
        .iter()
        .map(|d| d.collection)
        .collect();
    for d in clianta_catalog::all_entities() {
        assert!(
            covered.contains(d.collection),
            "{} is not in the contract suite",
            d.collection
        );
    }
}

#[test]
fn route_matching_reads_literal_segments() {
    let paths: Vec<String> = [
        "/api/v1/workspaces/{workspaceId}/battlecards",
        "/api/v1/workspaces/{workspaceId}/battlecards/{id}",
        "/api/v1/workspaces/{workspaceId}/icp-definitions",
        "/api/v1/workspaces/{workspaceId}/opportunities/{opportunityId}/activities",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    assert_eq!(routes_of(&analytics::intel::BATTLECARD, &paths).len(), 2);
    assert_eq!(
        routes_of(&analytics::intel::ICP_DEFINITION, &paths),
        vec![paths[2].clone()]
    );
    assert_eq!(
        routes_of(&crm_core::entities::activity::ACTIVITY, &paths),
        vec![paths[3].clone()]
    );
    assert!(routes_of(&analytics::intel::COMPETITOR, &paths).is_empty());
}
