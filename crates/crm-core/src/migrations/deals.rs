//! Migration 4: the legacy `deals` collection folded into `opportunities`, as the original's
//! `scripts/migrateDealToOpportunity.ts` meant to. Each deal becomes the opportunity with the
//! same `_id` (so running it again finds it folded and skips it) in its workspace's default
//! pipeline (else its first active one), at the stage whose name matches the deal's fixed stage
//! (else the first stage; `closed_won`/`closed_lost` become status won/lost). `deals` is left
//! as it is. `doctor` shows the dry run; a deal that cannot be folded (its workspace has no
//! pipeline) stops the migration before anything is written.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use super::LegacyAdmin;
use super::doctor::{LEGACY_DEALS, PAGE};
use crate::engine::Document;
use crate::entities::opportunity::OPPORTUNITY;
use crate::entities::pipeline::PIPELINE;
use crate::error::{Error, Result};
use crate::id::{ObjectId, WorkspaceId};
use crate::schema::ID_FIELD;
use crate::store::Tenant;

/// What folding would do (or did).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FoldReport {
    pub deals: u64,
    /// Folded now (or, in a dry run, would be).
    pub folded: u64,
    /// Their opportunity exists already.
    pub already: u64,
    /// Deals that cannot be folded, with why.
    pub blocked: Vec<String>,
}

/// The pipeline a workspace's deals go to: `(pipeline id, stages as (id, name, order))`.
type Target = (String, Vec<(String, String, u64)>);

async fn targets(legacy: &dyn LegacyAdmin) -> Result<HashMap<String, Target>> {
    let mut best: HashMap<String, (bool, String, Target)> = HashMap::new();
    let mut after: Option<Value> = None;
    loop {
        let page = legacy
            .scan_page(PIPELINE.collection, Some(&PIPELINE), after.as_ref(), PAGE)
            .await?;
        let Some(last) = page.last() else { break };
        after = last.get(ID_FIELD).cloned();
        let full = page.len() == PAGE;
        for p in page {
            if p.get("isActive") == Some(&Value::Bool(false)) {
                continue;
            }
            let (Some(Value::String(ws)), Some(Value::String(id))) =
                (p.get("workspaceId"), p.get(ID_FIELD))
            else {
                continue;
            };
            let mut stages: Vec<(String, String, u64)> = p
                .get("stages")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|s| {
                            Some((
                                s.get(ID_FIELD)?.as_str()?.to_owned(),
                                s.get("name")?.as_str()?.to_owned(),
                                s.get("order").and_then(Value::as_u64).unwrap_or(0),
                            ))
                        })
                        .collect()
                })
                .unwrap_or_default();
            if stages.is_empty() {
                continue;
            }
            stages.sort_by_key(|s| s.2);
            let default = p.get("isDefault") == Some(&Value::Bool(true));
            let created = p
                .get("createdAt")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let better = match best.get(ws) {
                None => true,
                Some((d, c, _)) => (default && !d) || (default == *d && created < *c),
            };
            if better {
                best.insert(ws.clone(), (default, created, (id.clone(), stages)));
            }
        }
        if !full {
            break;
        }
    }
    Ok(best.into_iter().map(|(ws, (_, _, t))| (ws, t)).collect())
}

fn stage_words(stage: &str) -> &'static [&'static str] {
    match stage {
        "qualified" => &["qualified"],
        "proposal" => &["proposal"],
        "negotiation" => &["negotiation"],
        "closed_won" => &["closed won", "won"],
        "closed_lost" => &["closed lost", "lost"],
        _ => &["lead"],
    }
}

fn copy(from: &Document, to: &mut Map<String, Value>, src: &str, dst: &str) {
    if let Some(v) = from.get(src).filter(|v| !v.is_null()) {
        to.insert(dst.to_owned(), v.clone());
    }
}

/// The opportunity a deal becomes.
fn opportunity(deal: &Document, (pipeline, stages): &Target) -> Document {
    let stage = deal.get("stage").and_then(Value::as_str).unwrap_or("lead");
    let words = stage_words(stage);
    let chosen = stages
        .iter()
        .find(|s| words.contains(&s.1.trim().to_lowercase().as_str()))
        .unwrap_or(&stages[0]);
    let status = match stage {
        "closed_won" => "won",
        "closed_lost" => "lost",
        _ => "open",
    };
    let mut o = Map::new();
    for f in [ID_FIELD, "workspaceId", "userId", "createdAt", "updatedAt"] {
        copy(deal, &mut o, f, f);
    }
    copy(deal, &mut o, "name", "title");
    o.insert("pipelineId".into(), json!(pipeline));
    o.insert("stageId".into(), json!(chosen.0));
    o.insert("status".into(), json!(status));
    let value = deal.get("value").filter(|v| v.is_number()).cloned();
    o.insert("value".into(), value.unwrap_or(json!(0)));
    let currency = deal
        .get("currency")
        .and_then(Value::as_str)
        .map_or_else(|| "USD".to_owned(), str::to_uppercase);
    o.insert("currency".into(), json!(currency));
    for f in [
        "companyId",
        "assignedTo",
        "probability",
        "expectedCloseDate",
        "actualCloseDate",
        "description",
        "source",
        "tags",
        "customFields",
    ] {
        copy(deal, &mut o, f, f);
    }
    if let Some(Value::Array(contacts)) = deal.get("contacts") {
        o.insert("associatedContacts".into(), Value::Array(contacts.clone()));
        if let Some(first) = contacts.first() {
            o.insert("contactId".into(), first.clone());
        }
    }
    copy(deal, &mut o, "lostReason", "lostReason");
    let entered = deal
        .get("updatedAt")
        .or_else(|| deal.get("createdAt"))
        .cloned();
    if let Some(at) = entered {
        o.insert(
            "stageHistory".into(),
            json!([{"stageId": chosen.0, "stageName": chosen.1, "enteredAt": at}]),
        );
    }
    for counter in ["activityCount", "emailCount", "callCount", "meetingCount"] {
        o.insert(counter.into(), json!(0));
    }
    o
}

fn tenant_of(deal: &Document) -> Option<WorkspaceId> {
    deal.get("workspaceId")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
}

fn id_of(deal: &Document) -> Option<ObjectId> {
    deal.get(ID_FIELD)
        .and_then(Value::as_str)
        .and_then(|s| ObjectId::parse_str(s).ok())
}

/// Folds every deal (or, with `dry_run`, only counts what it would do).
pub async fn fold(legacy: &dyn LegacyAdmin, dry_run: bool) -> Result<FoldReport> {
    let mut r = FoldReport::default();
    if !legacy
        .collections()
        .await?
        .iter()
        .any(|c| c == LEGACY_DEALS)
    {
        return Ok(r);
    }
    let targets = targets(legacy).await?;
    let docs = legacy.documents();
    let mut after: Option<Value> = None;
    loop {
        let page = legacy
            .scan_page(LEGACY_DEALS, None, after.as_ref(), PAGE)
            .await?;
        let Some(last) = page.last() else { break };
        after = last.get(ID_FIELD).cloned();
        let full = page.len() == PAGE;
        for deal in page {
            r.deals += 1;
            let shown = deal
                .get(ID_FIELD)
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                .unwrap_or_default();
            let (Some(ws), Some(id)) = (tenant_of(&deal), id_of(&deal)) else {
                r.blocked.push(format!(
                    "deal {shown}: no workspaceId or _id is not an ObjectId"
                ));
                continue;
            };
            let t = Tenant::Workspace(ws);
            match docs.get(t, &OPPORTUNITY, id).await {
                Ok(_) => {
                    r.already += 1;
                    continue;
                }
                Err(Error::NotFound) => {}
                Err(e) => return Err(e),
            }
            let Some(target) = targets.get(&ws.to_string()) else {
                r.blocked.push(format!(
                    "deal {shown}: workspace {ws} has no active pipeline with stages"
                ));
                continue;
            };
            if !dry_run {
                match docs
                    .insert(t, &OPPORTUNITY, opportunity(&deal, target))
                    .await
                {
                    Ok(_) => {}
                    // Folded meanwhile by another run.
                    Err(Error::Conflict { .. }) => {
                        r.already += 1;
                        continue;
                    }
                    Err(e) => return Err(e),
                }
            }
            r.folded += 1;
        }
        if !full {
            break;
        }
    }
    Ok(r)
}

/// Dry run first: anything blocked stops it before a write.
pub async fn up(legacy: &dyn LegacyAdmin) -> Result<()> {
    let plan = fold(legacy, true).await?;
    if !plan.blocked.is_empty() {
        return Err(Error::invalid(
            "deals",
            format!(
                "{} legacy deals cannot be folded into opportunities; nothing was changed: {}",
                plan.blocked.len(),
                plan.blocked.join("; ")
            ),
        ));
    }
    let done = fold(legacy, false).await?;
    tracing::info!(
        folded = done.folded,
        already = done.already,
        "legacy deals folded into opportunities"
    );
    Ok(())
}

/// Removes the opportunities folded from deals (edits made to them since are lost with them;
/// the deals themselves were never changed).
pub async fn down(legacy: &dyn LegacyAdmin) -> Result<()> {
    if !legacy
        .collections()
        .await?
        .iter()
        .any(|c| c == LEGACY_DEALS)
    {
        return Ok(());
    }
    let docs = legacy.documents();
    let mut after: Option<Value> = None;
    loop {
        let page = legacy
            .scan_page(LEGACY_DEALS, None, after.as_ref(), PAGE)
            .await?;
        let Some(last) = page.last() else { break };
        after = last.get(ID_FIELD).cloned();
        let full = page.len() == PAGE;
        for deal in page {
            if let (Some(ws), Some(id)) = (tenant_of(&deal), id_of(&deal)) {
                match docs
                    .delete_one(Tenant::Workspace(ws), &OPPORTUNITY, id)
                    .await
                {
                    Ok(()) | Err(Error::NotFound) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        if !full {
            break;
        }
    }
    Ok(())
}
