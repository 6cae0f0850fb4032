//! SQLite store figures: `cargo run --release -p storage-sqlite --example sqlite_bench --
//! [contacts] [deep] [ops]`. Prints get-by-id throughput (1 and 2 tasks), a filtered sorted page,
//! a count, and cursor pages near the start and near the end of one big workspace.

#![expect(clippy::print_stdout, reason = "a benchmark prints its figures")]

use std::sync::Arc;

use anyhow::{Context, Result};
use std::time::Instant;

use crm_core::entities::contact::{CONTACT, Contact, ContactStatus};
use crm_core::paging::{PageRequest, encode_cursor, find_page};
use crm_core::repo::to_document;
use crm_core::{
    DocumentStore, Filter, FindOptions, ObjectId, SortKey, StoreAdmin, Tenant, Timestamp, UserId,
    WorkspaceId,
};
use storage_sqlite::SqliteStore;

const STATUSES: [ContactStatus; 4] = [
    ContactStatus::Lead,
    ContactStatus::Prospect,
    ContactStatus::Customer,
    ContactStatus::Nurture,
];

fn contact(ws: WorkspaceId, user: UserId, i: u64) -> Result<crm_core::Document> {
    let mut c = Contact::new(ws, user, format!("First{i}")).with_email(format!("p{i}@example.com"));
    c.last_name = format!("Last{i}");
    c.status = STATUSES[(i % 4) as usize];
    c.tags = vec![format!("t{}", i % 7)];
    c.intent_score = (i % 100) as f64;
    c.created_at = Some(Timestamp::from_millis(1_700_000_000_000 + i as i64 * 1000));
    c.updated_at = c.created_at;
    Ok(to_document(&c)?)
}

async fn seed(s: &SqliteStore, ws: WorkspaceId, n: u64, start: u64) -> Result<Vec<ObjectId>> {
    let user = UserId::new();
    let mut ids = Vec::new();
    let mut i = 0;
    while i < n {
        let batch = (i..(i + 5000).min(n))
            .map(|j| contact(ws, user, start + j))
            .collect::<Result<Vec<_>>>()?;
        for d in &batch {
            ids.push(d["_id"].as_str().context("no _id")?.parse()?);
        }
        i += batch.len() as u64;
        s.insert_many(Tenant::Workspace(ws), &CONTACT, batch)
            .await?;
    }
    Ok(ids)
}

fn rate(n: u64, t: Instant) -> String {
    let s = t.elapsed().as_secs_f64();
    format!(
        "{:>10.0}/s ({:.1} us each)",
        n as f64 / s,
        s * 1e6 / n as f64
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args = std::env::args()
        .skip(1)
        .map(|a| a.parse::<u64>())
        .collect::<Result<Vec<_>, _>>()
        .context("usage: sqlite_bench [contacts] [deep] [ops]")?;
    let contacts = args.first().copied().unwrap_or(100_000);
    let deep = args.get(1).copied().unwrap_or(1_000_000);
    let ops = args.get(2).copied().unwrap_or(200_000);
    let dir = std::env::temp_dir().join(format!("sqlite-bench-{}", ObjectId::new()));
    let store = Arc::new(SqliteStore::open(&dir.join("bench.db"))?);
    store.ensure_schema(&crm_core::entities::all()).await?;

    let t = Instant::now();
    let mut ids = Vec::new();
    let workspaces: Vec<WorkspaceId> = (0..10).map(|_| WorkspaceId::new()).collect();
    for (w, ws) in workspaces.iter().enumerate() {
        let per = contacts / 10;
        for id in seed(&store, *ws, per, w as u64 * per).await? {
            ids.push((*ws, id));
        }
    }
    println!("seed {contacts} contacts       {}", rate(contacts, t));

    let t = Instant::now();
    for i in 0..ops {
        let (ws, id) = ids[(i * 7919 % ids.len() as u64) as usize];
        store.get(Tenant::Workspace(ws), &CONTACT, id).await?;
    }
    println!("get by id, 1 task        {}", rate(ops, t));

    let ids = Arc::new(ids);
    let t = Instant::now();
    let tasks: Vec<_> = (0..2u64)
        .map(|k| {
            let (store, ids) = (store.clone(), ids.clone());
            tokio::spawn(async move {
                for i in 0..ops / 2 {
                    let (ws, id) = ids[((i * 2 + k) * 7919 % ids.len() as u64) as usize];
                    store.get(Tenant::Workspace(ws), &CONTACT, id).await?;
                }
                Ok::<_, crm_core::Error>(())
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    println!("get by id, 2 tasks       {}", rate(ops, t));

    let sort = [SortKey::desc("createdAt")];
    let customers = Filter::eq("status", "customer");
    let n = 2000;
    let t = Instant::now();
    for i in 0..n {
        let ws = workspaces[i % 10];
        let req = PageRequest::Cursor {
            after: None,
            limit: 50,
        };
        find_page(
            &*store,
            Tenant::Workspace(ws),
            &CONTACT,
            &customers,
            &sort,
            &req,
        )
        .await?;
    }
    println!("page status=customer     {}", rate(n as u64, t));
    let t = Instant::now();
    for i in 0..n {
        store
            .count(Tenant::Workspace(workspaces[i % 10]), &CONTACT, &customers)
            .await?;
    }
    println!("count status=customer    {}", rate(n as u64, t));

    if deep > 0 {
        let big = WorkspaceId::new();
        let t = Instant::now();
        seed(&store, big, deep, 50_000_000).await?;
        println!("seed {deep} in one workspace {}", rate(deep, t));
        let tb = Tenant::Workspace(big);
        for skip in [0, deep / 2, deep - 100] {
            // The document just before the page, fetched once by offset, makes the cursor.
            let last = store
                .find(
                    tb,
                    &CONTACT,
                    &Filter::all(),
                    &FindOptions {
                        sort: sort.to_vec(),
                        skip,
                        limit: Some(1),
                    },
                )
                .await?;
            let after = last.first().map(|d| encode_cursor(&sort, d));
            let req = PageRequest::Cursor { after, limit: 50 };
            let n = 2000;
            let t = Instant::now();
            for _ in 0..n {
                let p = find_page(&*store, tb, &CONTACT, &Filter::all(), &sort, &req).await?;
                assert_eq!(p.items.len(), 50);
            }
            println!("cursor page after {skip:>8} {}", rate(n, t));
        }
    }
    drop(store);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
