//! What a write costs on SQLite as a bare insert, as the two calls the repositories made before
//! ADR 0018 (the record, then its audit entry), and as one atomic `write_batch` of the four
//! documents they write now (record, audit entry, event, outbox entry). Sequential, one task,
//! a file database in a temp directory:
//! `cargo run --release -p storage-sqlite --example batch_cost [n]`.
// A measuring tool: setup failures end it with the reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![expect(clippy::print_stdout, reason = "a measuring tool prints its figures")]

use std::time::{Duration, Instant};

use crm_core::entities::contact::CONTACT;
use crm_core::entities::user_action::USER_ACTION;
use crm_core::events::{DOMAIN_EVENT, OUTBOX_ENTRY};
use crm_core::store::WriteOp;
use crm_core::{Document, DocumentStore, StoreAdmin, Tenant, Timestamp, WorkspaceId};
use serde_json::{Value, json};
use storage_sqlite::SqliteStore;

fn doc(v: Value) -> Document {
    match v {
        Value::Object(m) => m,
        _ => unreachable!("literal objects only"),
    }
}

fn contact(i: usize) -> Document {
    let now = Timestamp::now().to_canonical();
    doc(json!({
        "firstName": format!("Ada{i}"), "lastName": "Lovelace", "email": format!("a{i}@x.io"),
        "status": "lead", "tags": ["a", "b"], "createdAt": now, "updatedAt": now,
    }))
}

fn audit(ws: WorkspaceId) -> Document {
    doc(json!({
        "userId": WorkspaceId::new().to_string(), "workspaceId": ws.to_string(),
        "actionType": "contact.create", "resourceType": "contact", "page": "audit",
        "timestamp": Timestamp::now().to_canonical(),
        "metadata": {"actor": {"kind": "user"}, "after": {"firstName": "Ada", "lastName": "Lovelace"}},
    }))
}

fn event(ws: WorkspaceId) -> Document {
    doc(json!({
        "_id": crm_core::ObjectId::new().to_hex(), "workspaceId": ws.to_string(),
        "type": "contact.created", "entityType": "contact",
        "after": {"firstName": "Ada", "lastName": "Lovelace"},
        "occurredAt": Timestamp::now().to_canonical(),
    }))
}

fn outbox(ws: WorkspaceId) -> Document {
    doc(json!({
        "eventId": crm_core::ObjectId::new().to_hex(), "workspaceId": ws.to_string(),
        "eventType": "contact.created", "occurredAt": Timestamp::now().to_canonical(),
    }))
}

struct Stat(Vec<Duration>);

impl Stat {
    fn line(mut self, what: &str) -> String {
        self.0.sort_unstable();
        let n = self.0.len();
        let total: Duration = self.0.iter().sum();
        let at = |q: f64| self.0[((n as f64 * q) as usize).min(n - 1)].as_micros();
        format!(
            "{what:<46} {n:>6} writes {:>8.0} writes/s  p50 {:>6} us  p99 {:>6} us",
            n as f64 / total.as_secs_f64(),
            at(0.5),
            at(0.99)
        )
    }
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map_or(3000, |s| s.parse().expect("n is a count"));
    let dir = std::env::temp_dir().join(format!("batch_cost_{}", std::process::id()));
    let store = SqliteStore::open(&dir.join("bench.db")).unwrap();
    store
        .ensure_schema(&[&CONTACT, &USER_ACTION, &DOMAIN_EVENT, &OUTBOX_ENTRY])
        .await
        .unwrap();
    let ws = WorkspaceId::new();
    let t = Tenant::Workspace(ws);
    let (mut bare, mut two, mut batch) = (Vec::new(), Vec::new(), Vec::new());
    // Interleaved, so load from other processes falls on all three alike.
    for i in 0..n {
        let start = Instant::now();
        store.insert(t, &CONTACT, contact(3 * i)).await.unwrap();
        bare.push(start.elapsed());

        let start = Instant::now();
        store.insert(t, &CONTACT, contact(3 * i + 1)).await.unwrap();
        store.insert(t, &USER_ACTION, audit(ws)).await.unwrap();
        two.push(start.elapsed());

        let start = Instant::now();
        store
            .write_batch(vec![
                WriteOp::Insert {
                    t,
                    def: &CONTACT,
                    doc: contact(3 * i + 2),
                },
                WriteOp::Insert {
                    t,
                    def: &USER_ACTION,
                    doc: audit(ws),
                },
                WriteOp::Insert {
                    t,
                    def: &DOMAIN_EVENT,
                    doc: event(ws),
                },
                WriteOp::Insert {
                    t: Tenant::Global,
                    def: &OUTBOX_ENTRY,
                    doc: outbox(ws),
                },
            ])
            .await
            .unwrap();
        batch.push(start.elapsed());
    }
    println!("{}", Stat(bare).line("contact insert alone"));
    println!(
        "{}",
        Stat(two).line("contact + audit entry, two calls (before)")
    );
    println!("{}", Stat(batch).line("write_batch of 4 documents (now)"));
    drop(store);
    let _ = std::fs::remove_dir_all(dir);
}
