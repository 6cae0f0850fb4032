//! Static validation of a workflow (behaviour 43 and the target's graph rules): known step,
//! trigger and action types with the config each needs, `nextStepIds` that point at steps, no
//! step unreachable from a trigger, no cycle, and conditions the compiler accepts. Every error
//! names the path that was wrong, e.g. `steps[2].config.delayValue`.

use std::collections::{HashMap, HashSet};

use crm_core::{Error, ObjectId, Result};

use super::conditions::compile_criteria;
use super::model::{Criteria, Step, Workflow};

pub const STEP_TYPES: &[&str] = &["trigger", "action", "delay", "condition", "wait_until"];

/// The original's trigger types plus the target's (company, task and deal outcomes).
pub const TRIGGER_TYPES: &[&str] = &[
    "contact_created",
    "contact_updated",
    "contact_job_changed",
    "deal_created",
    "deal_updated",
    "deal_stage_changed",
    "deal_won",
    "deal_lost",
    "company_created",
    "company_updated",
    "email_opened",
    "email_clicked",
    "form_submitted",
    "task_completed",
    "manual",
    "webhook_received",
];

pub const ACTION_TYPES: &[&str] = &[
    "send_email",
    "update_field",
    "create_task",
    "assign_owner",
    "add_tag",
    "remove_tag",
    "send_notification",
    "enroll_workflow",
    "enroll_sequence",
    "update_lead_score",
    "send_webhook",
    "create_activity",
];

pub const DELAY_TYPES: &[&str] = &["duration", "until_date", "until_time", "until_weekday"];
pub const DELAY_UNITS: &[&str] = &["minutes", "hours", "days", "weeks"];
pub const WEBHOOK_METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH"];

pub const NAME_MAX: usize = 100;
pub const DESCRIPTION_MAX: usize = 500;
pub const STEPS_MAX: usize = 200;

fn bad(field: impl Into<String>, reason: impl Into<String>) -> Error {
    Error::invalid(field, reason)
}

fn present(v: &Option<String>) -> bool {
    v.as_deref().is_some_and(|s| !s.trim().is_empty())
}

pub fn criteria(c: &Criteria, at: &str) -> Result<()> {
    compile_criteria(c, at).map(|_| ())
}

/// "HH:MM", 00:00 to 23:59.
pub fn parse_hhmm(s: &str) -> Option<(u32, u32)> {
    let (h, m) = s.trim().split_once(':')?;
    let (h, m) = (h.parse::<u32>().ok()?, m.parse::<u32>().ok()?);
    (h < 24 && m < 60).then_some((h, m))
}

fn action_config(s: &Step, at: &str, self_id: Option<ObjectId>) -> Result<()> {
    let c = &s.config;
    let cfg = |k: &str| format!("{at}.config.{k}");
    let Some(kind) = c.action_type.as_deref() else {
        return Err(bad(cfg("actionType"), "is required"));
    };
    if !ACTION_TYPES.contains(&kind) {
        return Err(bad(
            cfg("actionType"),
            format!(
                "unknown action type `{kind}`; one of {}",
                ACTION_TYPES.join(", ")
            ),
        ));
    }
    let need = |ok: bool, k: &str| {
        if ok {
            Ok(())
        } else {
            Err(bad(cfg(k), format!("is required for {kind}")))
        }
    };
    match kind {
        "send_email" => {
            need(
                present(&c.email_subject) || present(&c.email_template_id),
                "emailSubject",
            )?;
            need(
                present(&c.email_body) || present(&c.email_template_id),
                "emailBody",
            )?;
        }
        "update_field" => {
            need(present(&c.field_name), "fieldName")?;
            need(c.field_value.is_some(), "fieldValue")?;
        }
        "create_task" => {
            need(present(&c.task_title), "taskTitle")?;
            if c.task_due_in_days
                .is_some_and(|d| !(0.0..=3650.0).contains(&d))
            {
                return Err(bad(cfg("taskDueInDays"), "must be 0 to 3650"));
            }
        }
        "add_tag" | "remove_tag" => need(present(&c.tag_name), "tagName")?,
        "send_notification" => need(present(&c.notification_message), "notificationMessage")?,
        "enroll_workflow" => {
            let id = c
                .target_workflow_id
                .as_deref()
                .ok_or_else(|| bad(cfg("targetWorkflowId"), "is required for enroll_workflow"))?;
            let id = ObjectId::parse_str(id)
                .map_err(|_| bad(cfg("targetWorkflowId"), "must be a workflow id"))?;
            if Some(id) == self_id {
                return Err(bad(
                    cfg("targetWorkflowId"),
                    "a workflow cannot enroll into itself",
                ));
            }
        }
        "enroll_sequence" => need(present(&c.sequence_id), "sequenceId")?,
        "update_lead_score" => need(
            present(&c.score_event_type) || c.score_points.is_some(),
            "scoreEventType",
        )?,
        "send_webhook" => {
            let url = c.webhook_url.as_deref().unwrap_or("").trim();
            if !(url.starts_with("https://") || url.starts_with("http://")) || url.contains(' ') {
                return Err(bad(cfg("webhookUrl"), "must be an http(s) URL"));
            }
            if let Some(m) = c.webhook_method.as_deref()
                && !WEBHOOK_METHODS.contains(&m)
            {
                return Err(bad(cfg("webhookMethod"), "one of GET, POST, PUT, PATCH"));
            }
        }
        "create_activity" => need(present(&c.activity_title), "activityTitle")?,
        _ => {}
    }
    Ok(())
}

fn duration(value: Option<f64>, unit: Option<&str>, v: &str, u: &str) -> Result<()> {
    if let Some(x) = value
        && !(x.is_finite() && x >= 1.0)
    {
        return Err(bad(v, "must be at least 1"));
    }
    if let Some(x) = unit
        && !DELAY_UNITS.contains(&x)
    {
        return Err(bad(u, "one of minutes, hours, days, weeks"));
    }
    Ok(())
}

fn step_config(s: &Step, at: &str, self_id: Option<ObjectId>) -> Result<()> {
    let c = &s.config;
    let cfg = |k: &str| format!("{at}.config.{k}");
    match s.step_type.as_str() {
        "trigger" => {
            let t = c.trigger_type.as_deref().unwrap_or("");
            if !TRIGGER_TYPES.contains(&t) {
                return Err(bad(
                    cfg("triggerType"),
                    format!(
                        "unknown trigger type `{t}`; one of {}",
                        TRIGGER_TYPES.join(", ")
                    ),
                ));
            }
        }
        "action" => action_config(s, at, self_id)?,
        "delay" => {
            let t = c.delay_type.as_deref().unwrap_or("duration");
            match t {
                "duration" => duration(
                    c.delay_value,
                    c.delay_unit.as_deref(),
                    &cfg("delayValue"),
                    &cfg("delayUnit"),
                )?,
                "until_date" => {
                    if c.delay_date.is_none() {
                        return Err(bad(cfg("delayDate"), "is required for until_date"));
                    }
                }
                "until_time" => {
                    if c.delay_time.as_deref().and_then(parse_hhmm).is_none() {
                        return Err(bad(cfg("delayTime"), "must be HH:MM"));
                    }
                }
                "until_weekday" => {
                    let days = c.delay_weekdays.as_deref().unwrap_or(&[]);
                    if days.is_empty() || days.iter().any(|d| *d > 6) {
                        return Err(bad(
                            cfg("delayWeekdays"),
                            "must list weekdays 0 (Sunday) to 6",
                        ));
                    }
                }
                other => {
                    return Err(bad(
                        cfg("delayType"),
                        format!(
                            "unknown delay type `{other}`; one of {}",
                            DELAY_TYPES.join(", ")
                        ),
                    ));
                }
            }
        }
        "condition" | "wait_until" => {
            let conds = c.conditions.clone().unwrap_or_default();
            if conds.is_empty() {
                return Err(bad(cfg("conditions"), "needs at least one condition"));
            }
            let crit = Criteria {
                conditions: conds,
                match_all: c.match_all.unwrap_or(true),
            };
            compile_criteria(&crit, &format!("{at}.config"))?;
            if s.step_type == "wait_until" {
                duration(
                    c.timeout_value,
                    c.timeout_unit.as_deref(),
                    &cfg("timeoutValue"),
                    &cfg("timeoutUnit"),
                )?;
            }
        }
        other => {
            return Err(bad(
                format!("{at}.type"),
                format!(
                    "unknown step type `{other}`; one of {}",
                    STEP_TYPES.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// Every rule but activation's; run on create, update, clone and before activation.
pub fn workflow(w: &Workflow) -> Result<()> {
    let name = w.name.trim();
    if name.is_empty() || name.chars().count() > NAME_MAX {
        return Err(bad("name", "must be 1 to 100 characters"));
    }
    if w.description
        .as_deref()
        .is_some_and(|d| d.chars().count() > DESCRIPTION_MAX)
    {
        return Err(bad("description", "must be at most 500 characters"));
    }
    criteria(&w.enrollment_criteria, "enrollmentCriteria")?;
    if let Some(g) = &w.goal_criteria {
        criteria(g, "goalCriteria")?;
    }
    if w.steps.len() > STEPS_MAX {
        return Err(bad("steps", "at most 200 steps"));
    }
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (i, s) in w.steps.iter().enumerate() {
        let at = format!("steps[{i}]");
        if s.id.is_empty() {
            return Err(bad(format!("{at}.id"), "is required"));
        }
        if s.id.len() > 64
            || !s
                .id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(bad(
                format!("{at}.id"),
                "letters, digits, - and _ only, at most 64",
            ));
        }
        if index.insert(s.id.as_str(), i).is_some() {
            return Err(bad(
                format!("{at}.id"),
                format!("duplicate step id `{}`", s.id),
            ));
        }
        if s.name.trim().is_empty() {
            return Err(bad(format!("{at}.name"), "is required"));
        }
        step_config(s, &at, Some(w.id.object_id()))?;
    }
    for (i, s) in w.steps.iter().enumerate() {
        let max = match s.step_type.as_str() {
            "condition" | "wait_until" => 2,
            _ => 1,
        };
        if s.next_step_ids.len() > max {
            return Err(bad(
                format!("steps[{i}].nextStepIds"),
                format!("a {} step has at most {max} next step(s)", s.step_type),
            ));
        }
        for (j, n) in s.next_step_ids.iter().enumerate() {
            let at = format!("steps[{i}].nextStepIds[{j}]");
            match index.get(n.as_str()) {
                None => return Err(bad(at, format!("no step has id `{n}`"))),
                Some(&k) if w.steps[k].step_type == "trigger" => {
                    return Err(bad(at, "cannot lead to a trigger step"));
                }
                Some(_) => {}
            }
        }
    }
    cycles(w, &index)?;
    reachability(w)?;
    Ok(())
}

fn cycles(w: &Workflow, index: &HashMap<&str, usize>) -> Result<()> {
    // 0 unvisited, 1 on the current path, 2 done.
    fn visit(w: &Workflow, index: &HashMap<&str, usize>, i: usize, state: &mut [u8]) -> Result<()> {
        state[i] = 1;
        for (j, n) in w.steps[i].next_step_ids.iter().enumerate() {
            let Some(&k) = index.get(n.as_str()) else {
                continue;
            };
            match state[k] {
                1 => {
                    return Err(bad(
                        format!("steps[{i}].nextStepIds[{j}]"),
                        format!("leads back to `{n}`: workflows may not loop"),
                    ));
                }
                0 => visit(w, index, k, state)?,
                _ => {}
            }
        }
        state[i] = 2;
        Ok(())
    }
    let mut state = vec![0u8; w.steps.len()];
    for i in 0..w.steps.len() {
        if state[i] == 0 {
            visit(w, index, i, &mut state)?;
        }
    }
    Ok(())
}

fn reachability(w: &Workflow) -> Result<()> {
    let roots: Vec<&str> = match w.trigger_step() {
        Some(_) => w
            .steps
            .iter()
            .filter(|s| s.step_type == "trigger")
            .map(|s| s.id.as_str())
            .collect(),
        None => w.steps.first().map(|s| s.id.as_str()).into_iter().collect(),
    };
    let mut seen: HashSet<&str> = HashSet::new();
    let mut todo = roots;
    while let Some(id) = todo.pop() {
        if !seen.insert(id) {
            continue;
        }
        if let Some(s) = w.step(id) {
            todo.extend(s.next_step_ids.iter().map(String::as_str));
        }
    }
    match w.steps.iter().position(|s| !seen.contains(s.id.as_str())) {
        Some(i) => Err(bad(
            format!("steps[{i}]"),
            format!("step `{}` cannot be reached from a trigger", w.steps[i].id),
        )),
        None => Ok(()),
    }
}

/// Activation needs a valid workflow with a trigger and an action step (behaviour 43).
pub fn activation(w: &Workflow) -> Result<()> {
    workflow(w)?;
    if w.trigger_step().is_none() {
        return Err(bad("steps", "activation needs a trigger step"));
    }
    if !w.steps.iter().any(|s| s.step_type == "action") {
        return Err(bad("steps", "activation needs an action step"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crm_core::{UserId, WorkspaceId};
    use serde_json::json;

    fn wf(steps: serde_json::Value) -> Workflow {
        let mut w = Workflow::new(WorkspaceId::new(), UserId::new(), "W");
        w.steps = serde_json::from_value(steps).unwrap();
        w
    }

    fn field_of(e: Error) -> String {
        match e {
            Error::Invalid { field, .. } => field,
            other => panic!("not a validation error: {other:?}"),
        }
    }

    fn trigger(next: &[&str]) -> serde_json::Value {
        json!({"id": "t", "type": "trigger", "name": "T", "position": {"x": 0, "y": 0},
               "nextStepIds": next, "config": {"triggerType": "contact_created"}})
    }

    fn tag(id: &str, next: &[&str]) -> serde_json::Value {
        json!({"id": id, "type": "action", "name": id, "nextStepIds": next,
               "config": {"actionType": "add_tag", "tagName": "x"}})
    }

    #[test]
    fn a_linear_workflow_is_valid_and_activatable() {
        let w = wf(json!([trigger(&["a"]), tag("a", &["b"]), tag("b", &[])]));
        workflow(&w).unwrap();
        activation(&w).unwrap();
    }

    #[test]
    fn cycles_are_rejected_with_the_edge_that_closes_them() {
        let w = wf(json!([trigger(&["a"]), tag("a", &["b"]), tag("b", &["a"])]));
        assert_eq!(
            field_of(workflow(&w).unwrap_err()),
            "steps[2].nextStepIds[0]"
        );
        let w = wf(json!([trigger(&["a"]), tag("a", &["a"])]));
        assert_eq!(
            field_of(workflow(&w).unwrap_err()),
            "steps[1].nextStepIds[0]"
        );
    }

    #[test]
    fn unreachable_steps_are_rejected() {
        let w = wf(json!([trigger(&["a"]), tag("a", &[]), tag("orphan", &[])]));
        assert_eq!(field_of(workflow(&w).unwrap_err()), "steps[2]");
    }

    #[test]
    fn dangling_and_unknown_things_name_their_path() {
        let w = wf(json!([trigger(&["nowhere"])]));
        assert_eq!(
            field_of(workflow(&w).unwrap_err()),
            "steps[0].nextStepIds[0]"
        );
        let w = wf(json!([trigger(&["a"]), {"id": "a", "type": "parallel", "name": "p"}]));
        assert_eq!(field_of(workflow(&w).unwrap_err()), "steps[1].type");
        let w = wf(json!([{"id": "t", "type": "trigger", "name": "T",
                           "config": {"triggerType": "lead_hot"}}]));
        assert_eq!(
            field_of(workflow(&w).unwrap_err()),
            "steps[0].config.triggerType"
        );
        let w = wf(
            json!([trigger(&["a"]), {"id": "a", "type": "action", "name": "a",
                           "config": {"actionType": "apollo_enrich"}}]),
        );
        assert_eq!(
            field_of(workflow(&w).unwrap_err()),
            "steps[1].config.actionType"
        );
        let w = wf(
            json!([trigger(&["a"]), {"id": "a", "type": "delay", "name": "d",
                           "config": {"delayType": "duration", "delayValue": 0, "delayUnit": "days"}}]),
        );
        assert_eq!(
            field_of(workflow(&w).unwrap_err()),
            "steps[1].config.delayValue"
        );
        // An unknown operator does not even parse: the API reports it at the body.
        assert!(
            serde_json::from_value::<Vec<Step>>(
                json!([{"id": "a", "type": "condition", "name": "c",
            "config": {"conditions": [{"field": "x", "operator": "roughly"}]}}])
            )
            .is_err()
        );
        let w = wf(
            json!([trigger(&["a"]), {"id": "a", "type": "condition", "name": "c",
                           "config": {"conditions": [{"field": "n", "operator": "greater_than", "value": "lots"}]}}]),
        );
        assert_eq!(
            field_of(workflow(&w).unwrap_err()),
            "steps[1].config.conditions[0].value"
        );
        let w = wf(json!([trigger(&["a.b"]), tag("a.b", &[])]));
        assert_eq!(field_of(workflow(&w).unwrap_err()), "steps[1].id");
        let w = wf(json!([trigger(&["a", "b"]), tag("a", &[]), tag("b", &[])]));
        assert_eq!(field_of(workflow(&w).unwrap_err()), "steps[0].nextStepIds");
    }

    #[test]
    fn activation_needs_a_trigger_and_an_action() {
        let w = wf(json!([trigger(&[])]));
        workflow(&w).unwrap();
        assert_eq!(field_of(activation(&w).unwrap_err()), "steps");
        let w = wf(json!([tag("a", &[])]));
        assert_eq!(field_of(activation(&w).unwrap_err()), "steps");
    }
}
