//! Pipelines: stage rules (1 to 20 stages, orders renumbered 0..n-1, no delete of a stage deals
//! use), one default per workspace, archive instead of delete.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::entities::opportunity::Opportunity;
use crate::entities::pipeline::{MAX_STAGES, Pipeline, PipelineId, Stage, StageId, StageOutcome};
use crate::error::{Error, Result};
use crate::id::UserId;
use crate::query::{Filter, FindOptions, SortKey, Update};
use crate::repo::{Repo, WorkspaceScope};

pub const NAME_MAX: usize = 100;
pub const DESCRIPTION_MAX: usize = 500;
pub const STAGE_NAME_MAX: usize = 50;
const DEFAULT_COLOR: &str = "#6B7280";
/// Optimistic writes of the stage list retry this often before answering a conflict.
const STAGE_WRITE_ATTEMPTS: usize = 5;

/// `Some(None)` for an explicit `null`, `None` when the key is absent.
pub(crate) fn nullable<'de, D, T>(d: D) -> std::result::Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StageInput {
    pub name: String,
    #[serde(default)]
    pub color: Option<String>,
    /// Position; defaults to the end (or to the index in a create).
    #[serde(default)]
    pub order: Option<u32>,
    #[serde(default)]
    pub outcome: Option<StageOutcome>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreatePipeline {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Absent: a standard sales pipeline ending in won and lost stages.
    #[serde(default)]
    pub stages: Option<Vec<StageInput>>,
    #[serde(default)]
    pub is_default: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PatchPipeline {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub description: Option<Option<String>>,
    /// Only `true`: a workspace keeps one default, so it moves by setting another.
    #[serde(default)]
    pub is_default: Option<bool>,
    /// `false` archives (as DELETE does), `true` restores.
    #[serde(default)]
    pub is_active: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PatchStage {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub color: Option<String>,
    /// `null` makes it an open stage again. Deals already in the stage keep their status.
    #[serde(default, deserialize_with = "nullable")]
    pub outcome: Option<Option<StageOutcome>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReorderStages {
    pub stage_order: Vec<StageId>,
}

pub(crate) fn text(field: &str, s: &str, max: usize, required: bool) -> Result<Option<String>> {
    let t = s.trim();
    if t.is_empty() {
        return if required {
            Err(Error::invalid(field, "is required"))
        } else {
            Ok(None)
        };
    }
    if t.chars().count() > max {
        return Err(Error::invalid(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    Ok(Some(t.to_owned()))
}

fn required_text(field: &str, s: &str, max: usize) -> Result<String> {
    text(field, s, max, true)?.ok_or_else(|| Error::invalid(field, "is required"))
}

fn color(field: &str, c: &str) -> Result<String> {
    let ok = c.len() == 7 && c.starts_with('#') && c[1..].chars().all(|ch| ch.is_ascii_hexdigit());
    if ok {
        Ok(c.to_ascii_uppercase())
    } else {
        Err(Error::invalid(field, "must be a colour #RRGGBB"))
    }
}

fn stage_from(input: &StageInput, field: &str) -> Result<Stage> {
    let mut s = Stage::new(
        required_text(&format!("{field}.name"), &input.name, STAGE_NAME_MAX)?,
        0,
        match input.color.as_deref() {
            Some(c) => color(&format!("{field}.color"), c)?,
            None => DEFAULT_COLOR.to_owned(),
        },
    );
    s.outcome = input.outcome;
    Ok(s)
}

/// Orders `0..n-1` in list order; checks the count.
fn renumber(mut stages: Vec<Stage>) -> Result<Vec<Stage>> {
    if stages.is_empty() {
        return Err(Error::invalid(
            "stages",
            "a pipeline needs at least one stage",
        ));
    }
    if stages.len() > MAX_STAGES {
        return Err(Error::invalid(
            "stages",
            format!("a pipeline has at most {MAX_STAGES} stages"),
        ));
    }
    for (i, s) in stages.iter_mut().enumerate() {
        s.order = u32::try_from(i).unwrap_or(u32::MAX);
    }
    Ok(stages)
}

/// The stages of a pipeline created without any.
pub fn default_stages() -> Vec<Stage> {
    let mut v: Vec<Stage> = [
        ("Lead", "#6B7280"),
        ("Qualified", "#3B82F6"),
        ("Proposal", "#8B5CF6"),
        ("Negotiation", "#F59E0B"),
        ("Closed Won", "#10B981"),
        ("Closed Lost", "#EF4444"),
    ]
    .iter()
    .enumerate()
    .map(|(i, (n, c))| Stage::new(*n, u32::try_from(i).unwrap_or(0), *c))
    .collect();
    if let [.., won, lost] = v.as_mut_slice() {
        won.outcome = Some(StageOutcome::Won);
        lost.outcome = Some(StageOutcome::Lost);
    }
    v
}

fn stages_value(stages: &[Stage]) -> Result<Value> {
    serde_json::to_value(stages).map_err(Error::internal)
}

fn id_value(id: impl std::fmt::Display) -> Value {
    Value::String(id.to_string())
}

/// The workspace's default pipeline, if it has an active one.
pub async fn default_pipeline(scope: &WorkspaceScope) -> Result<Option<Pipeline>> {
    let f = Filter::eq("isDefault", true).and(Filter::eq("isActive", true));
    let one = FindOptions {
        sort: vec![SortKey::asc("createdAt")],
        limit: Some(1),
        ..FindOptions::default()
    };
    Ok(scope
        .repo::<Pipeline>()
        .find(&f, &one)
        .await?
        .into_iter()
        .next())
}

/// Clears `isDefault` on every pipeline but `keep`.
async fn clear_other_defaults(repo: &Repo<Pipeline>, keep: PipelineId) -> Result<()> {
    let f = Filter::eq("isDefault", true).and(Filter::Ne("_id".into(), id_value(keep)));
    repo.update_many(&f, &Update::new().set("isDefault", false))
        .await?;
    Ok(())
}

/// When no active pipeline is the default any more, the oldest active one becomes it.
async fn ensure_a_default(repo: &Repo<Pipeline>) -> Result<()> {
    let active = Filter::eq("isActive", true);
    if repo
        .count(&active.clone().and(Filter::eq("isDefault", true)))
        .await?
        > 0
    {
        return Ok(());
    }
    let oldest = FindOptions {
        sort: vec![SortKey::asc("createdAt")],
        limit: Some(1),
        ..FindOptions::default()
    };
    if let Some(p) = repo.find(&active, &oldest).await?.into_iter().next() {
        repo.update(p.id, &Update::new().set("isDefault", true))
            .await?;
        clear_other_defaults(repo, p.id).await?;
    }
    Ok(())
}

pub async fn create(scope: &WorkspaceScope, user: UserId, cmd: CreatePipeline) -> Result<Pipeline> {
    let name = required_text("name", &cmd.name, NAME_MAX)?;
    let description = match cmd.description.as_deref() {
        Some(d) => text("description", d, DESCRIPTION_MAX, false)?,
        None => None,
    };
    let stages = match &cmd.stages {
        None => default_stages(),
        Some(inputs) => {
            if inputs.len() > MAX_STAGES {
                return Err(Error::invalid(
                    "stages",
                    format!("a pipeline has at most {MAX_STAGES} stages"),
                ));
            }
            let mut keyed = inputs
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    let pos = s.order.unwrap_or(u32::try_from(i).unwrap_or(u32::MAX));
                    Ok((pos, i, stage_from(s, &format!("stages[{i}]"))?))
                })
                .collect::<Result<Vec<_>>>()?;
            keyed.sort_by_key(|(pos, i, _)| (*pos, *i));
            renumber(keyed.into_iter().map(|(_, _, s)| s).collect())?
        }
    };
    let repo = scope.repo::<Pipeline>();
    let first = repo.count(&Filter::eq("isActive", true)).await? == 0;
    let mut p = Pipeline::new(scope.id(), user, name, stages);
    p.description = description;
    p.is_default = first || cmd.is_default == Some(true);
    let p = repo.insert(&p).await?;
    if p.is_default {
        clear_other_defaults(&repo, p.id).await?;
    }
    Ok(p)
}

pub async fn get(scope: &WorkspaceScope, id: PipelineId) -> Result<Pipeline> {
    scope.repo::<Pipeline>().get(id).await
}

/// Deals (of any status, trashed ones too: they can be restored) that still sit in the
/// pipeline, or in one stage of it.
async fn deals_in(scope: &WorkspaceScope, id: PipelineId, stage: Option<StageId>) -> Result<u64> {
    let mut f = Filter::eq("pipelineId", id_value(id));
    if let Some(s) = stage {
        f = f.and(Filter::eq("stageId", id_value(s)));
    }
    scope.repo::<Opportunity>().count(&f).await
}

/// Archives (the original's delete); refused with `Conflict { key: "pipelineId" }` while deals
/// use it. The default moves to the oldest remaining active pipeline.
pub async fn archive(scope: &WorkspaceScope, id: PipelineId) -> Result<()> {
    let repo = scope.repo::<Pipeline>();
    let p = repo.get(id).await?;
    if deals_in(scope, id, None).await? > 0 {
        return Err(Error::conflict("pipelineId"));
    }
    if !p.is_active {
        return Ok(());
    }
    repo.update(
        id,
        &Update::new().set("isActive", false).set("isDefault", false),
    )
    .await?;
    ensure_a_default(&repo).await
}

pub async fn patch(scope: &WorkspaceScope, id: PipelineId, cmd: PatchPipeline) -> Result<Pipeline> {
    let repo = scope.repo::<Pipeline>();
    let current = repo.get(id).await?;
    let mut u = Update::new();
    if let Some(n) = cmd.name.as_deref() {
        u = u.set("name", required_text("name", n, NAME_MAX)?);
    }
    match cmd.description {
        Some(Some(d)) => match text("description", &d, DESCRIPTION_MAX, false)? {
            Some(d) => u = u.set("description", d),
            None => u = u.unset("description"),
        },
        Some(None) => u = u.unset("description"),
        None => {}
    }
    if cmd.is_default == Some(false) && current.is_default {
        return Err(Error::invalid(
            "isDefault",
            "a workspace keeps one default pipeline; make another one the default instead",
        ));
    }
    match cmd.is_active {
        Some(false) if current.is_active => {
            if cmd.is_default == Some(true) {
                return Err(Error::invalid(
                    "isDefault",
                    "an archived pipeline cannot be the default",
                ));
            }
            archive(scope, id).await?;
        }
        Some(true) if !current.is_active => u = u.set("isActive", true),
        _ => {}
    }
    let make_default = cmd.is_default == Some(true) && !current.is_default;
    if make_default {
        if !current.is_active && cmd.is_active != Some(true) {
            return Err(Error::invalid(
                "isDefault",
                "an archived pipeline cannot be the default",
            ));
        }
        u = u.set("isDefault", true);
    }
    let p = if u.is_empty() {
        repo.get(id).await?
    } else {
        repo.update(id, &u).await?
    };
    if make_default {
        clear_other_defaults(&repo, id).await?;
    } else if p.is_active {
        ensure_a_default(&repo).await?;
    }
    Ok(p)
}

/// Rewrites the stage list computed by `f` from the current pipeline, only if nobody changed the
/// pipeline in between (compare-and-set on `updatedAt`), so concurrent stage edits never lose one
/// another.
async fn write_stages(
    scope: &WorkspaceScope,
    id: PipelineId,
    f: impl Fn(&Pipeline) -> Result<Vec<Stage>>,
) -> Result<Pipeline> {
    let repo = scope.repo::<Pipeline>();
    for _ in 0..STAGE_WRITE_ATTEMPTS {
        let p = repo.get(id).await?;
        let stages = renumber(f(&p)?)?;
        let unchanged = Filter::eq("_id", id_value(id)).and(match p.updated_at {
            Some(t) => Filter::eq("updatedAt", t.to_canonical()),
            None => Filter::Exists("updatedAt".into(), false),
        });
        let u = Update::new().set("stages", stages_value(&stages)?);
        if let Some(p) = repo.find_one_and_update(&unchanged, &u, false).await? {
            return Ok(p);
        }
    }
    Err(Error::conflict("stages"))
}

fn position(p: &Pipeline, stage: StageId) -> Result<usize> {
    p.stages
        .iter()
        .position(|s| s.id == stage)
        .ok_or(Error::NotFound)
}

/// Adds a stage at `order` (clamped; the end when absent). Returns the pipeline and the new
/// stage's id.
pub async fn add_stage(
    scope: &WorkspaceScope,
    id: PipelineId,
    input: StageInput,
) -> Result<(Pipeline, StageId)> {
    let stage = stage_from(&input, "stage")?;
    let new_id = stage.id;
    let p = write_stages(scope, id, |p| {
        if p.stages.len() >= MAX_STAGES {
            return Err(Error::invalid(
                "stages",
                format!("a pipeline has at most {MAX_STAGES} stages"),
            ));
        }
        let mut v = p.stages.clone();
        let at = input
            .order
            .map_or(v.len(), |o| usize::try_from(o).unwrap_or(usize::MAX))
            .min(v.len());
        v.insert(at, stage.clone());
        Ok(v)
    })
    .await?;
    Ok((p, new_id))
}

pub async fn patch_stage(
    scope: &WorkspaceScope,
    id: PipelineId,
    stage: StageId,
    cmd: PatchStage,
) -> Result<Pipeline> {
    let name = cmd
        .name
        .as_deref()
        .map(|n| required_text("name", n, STAGE_NAME_MAX))
        .transpose()?;
    let col = cmd
        .color
        .as_deref()
        .map(|c| color("color", c))
        .transpose()?;
    write_stages(scope, id, |p| {
        let i = position(p, stage)?;
        let mut v = p.stages.clone();
        if let Some(n) = &name {
            v[i].name = n.clone();
        }
        if let Some(c) = &col {
            v[i].color = c.clone();
        }
        if let Some(o) = cmd.outcome {
            v[i].outcome = o;
        }
        Ok(v)
    })
    .await
}

/// Deletes a stage; `Conflict { key: "stageId" }` while deals sit in it (move them first), and
/// the last stage cannot go.
pub async fn delete_stage(
    scope: &WorkspaceScope,
    id: PipelineId,
    stage: StageId,
) -> Result<Pipeline> {
    let p = get(scope, id).await?;
    position(&p, stage)?;
    if deals_in(scope, id, Some(stage)).await? > 0 {
        return Err(Error::conflict("stageId"));
    }
    write_stages(scope, id, |p| {
        let i = position(p, stage)?;
        if p.stages.len() == 1 {
            return Err(Error::invalid(
                "stageId",
                "a pipeline needs at least one stage",
            ));
        }
        let mut v = p.stages.clone();
        v.remove(i);
        Ok(v)
    })
    .await
}

/// Puts the stages in the given order, which must name every stage exactly once.
pub async fn reorder(
    scope: &WorkspaceScope,
    id: PipelineId,
    cmd: ReorderStages,
) -> Result<Pipeline> {
    write_stages(scope, id, |p| {
        let bad = || {
            Error::invalid(
                "stageOrder",
                "must list every stage of the pipeline exactly once",
            )
        };
        if cmd.stage_order.len() != p.stages.len() {
            return Err(bad());
        }
        let mut out = Vec::with_capacity(p.stages.len());
        for sid in &cmd.stage_order {
            if out.iter().any(|s: &Stage| s.id == *sid) {
                return Err(bad());
            }
            out.push(p.stage(*sid).ok_or_else(bad)?.clone());
        }
        Ok(out)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_end_in_won_and_lost() {
        let s = default_stages();
        assert_eq!(s.len(), 6);
        assert_eq!(s[4].outcome, Some(StageOutcome::Won));
        assert_eq!(s[5].outcome, Some(StageOutcome::Lost));
        assert!(s.iter().enumerate().all(|(i, x)| x.order as usize == i));
    }

    #[test]
    fn colours_and_counts_are_checked() {
        assert_eq!(color("c", "#a1b2c3").unwrap(), "#A1B2C3");
        assert!(color("c", "a1b2c3").is_err());
        assert!(color("c", "#a1b2cg").is_err());
        assert!(renumber(Vec::new()).is_err());
        let many = (0..=MAX_STAGES).map(|i| Stage::new(format!("s{i}"), 0, "#000000"));
        assert!(renumber(many.collect()).is_err());
    }
}
