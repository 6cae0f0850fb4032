//! The scoring jobs driven by the real runtime on a `ManualClock` over the memory store.

use std::sync::Arc;

use crm_core::entities::contact::Contact;
use crm_core::entities::project::Project;
use crm_core::repo::Stores;
use crm_core::{Clock, DocumentStore, ManualClock, Timestamp, UserId};

use super::lead::{self, LeadScore};
use crate::runtime::{Ports, Runtime, standard};

const DAY: i64 = 24 * 3600;

struct World {
    clock: Arc<ManualClock>,
    stores: Stores,
    rt: Runtime,
}

fn world() -> World {
    let clock = Arc::new(ManualClock::at(
        Timestamp::parse("2026-11-25T10:00:00.000Z").unwrap(),
    ));
    let c: Arc<dyn Clock> = clock.clone();
    let store: Arc<dyn DocumentStore> = Arc::new(storage_memory::MemoryStore::new());
    let stores = Stores::new(store, c.clone());
    let mut rt = Runtime::new(stores.clone(), c.clone());
    standard(&mut rt, &Ports::offline(c));
    World { clock, stores, rt }
}

async fn run_periodic(w: &World) {
    w.rt.tick_periodic().await.unwrap();
    w.rt.run_until_idle().await.unwrap();
}

#[tokio::test]
async fn decay_runs_from_the_periodic_job_after_31_days() {
    let w = world();
    let project = w
        .stores
        .global::<Project>()
        .insert(&Project::new(UserId::new(), "Acme"))
        .await
        .unwrap();
    let scope = w.stores.workspace(project.id);
    let c = scope
        .repo::<Contact>()
        .insert(&Contact::new(project.id, UserId::new(), "Ada"))
        .await
        .unwrap();
    lead::set_score(&scope, c.id, 47, "seed", w.clock.now())
        .await
        .unwrap();

    w.clock.advance_seconds(31 * DAY);
    run_periodic(&w).await;
    let s: LeadScore = lead::get_or_create(&scope, c.id, w.clock.now())
        .await
        .unwrap();
    assert_eq!(s.current_score, 42);
    let last = s.score_history.last().unwrap();
    assert_eq!(last.event_type, "decay");
    assert_eq!(last.points, -5);
    assert_eq!(last.reason, "30 days inactive - 10% decay");
    assert_eq!(s.decayed_at, Some(w.clock.now()));
    assert_eq!(lead::explain(&s).total, 42);

    // Run again the same day and the next: nothing more until 30 more days pass.
    w.rt.run_until_idle().await.unwrap();
    w.clock.advance_seconds(DAY);
    run_periodic(&w).await;
    let s = lead::get_or_create(&scope, c.id, w.clock.now())
        .await
        .unwrap();
    assert_eq!(s.current_score, 42);
    assert_eq!(s.score_history.len(), 2);
}
