//! Pipelines over HTTP: create with default stages, one default per workspace, stage add,
//! patch, reorder and delete rules, archive, the role table and other workspaces' ids.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers panic on failure by design"
)]

mod common;

use common::{World, add_member, world};
use crm_core::accounts::Role;
use serde_json::{Value, json};

fn base(ws: &str) -> String {
    format!("/api/v1/workspaces/{ws}/pipelines")
}

fn stage_ids(p: &Value) -> Vec<String> {
    p["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["_id"].as_str().unwrap().to_owned())
        .collect()
}

fn stage_names(p: &Value) -> Vec<&str> {
    p["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn create_list_get_patch_and_one_default() {
    let World { t, owner, ws } = world().await;
    let tok = Some(owner.access.as_str());
    let first = t
        .post(&base(&ws), tok, json!({"name": "  Sales  "}))
        .await
        .ok(201)
        .clone();
    assert_eq!(first["name"], "Sales");
    assert_eq!(
        first["isDefault"], true,
        "the first pipeline is the default"
    );
    assert_eq!(first["isActive"], true);
    assert_eq!(
        stage_names(&first),
        [
            "Lead",
            "Qualified",
            "Proposal",
            "Negotiation",
            "Closed Won",
            "Closed Lost"
        ]
    );
    assert_eq!(first["stages"][4]["outcome"], "won");
    assert_eq!(first["stages"][5]["outcome"], "lost");
    assert!(first["stages"][0].get("outcome").is_none());
    let first_id = first["_id"].as_str().unwrap();

    t.clock.advance_secs(1);
    // Given stages: order decides, renumbered 0..n-1, colours upper-cased.
    let second = t
        .post(
            &base(&ws),
            tok,
            json!({"name": "Partners", "description": "channel", "isDefault": true, "stages": [
                {"name": "B", "order": 5, "color": "#aabbcc"},
                {"name": "A", "order": 1, "outcome": "won"}
            ]}),
        )
        .await
        .ok(201)
        .clone();
    assert_eq!(stage_names(&second), ["A", "B"]);
    assert_eq!(second["stages"][1]["color"], "#AABBCC");
    assert_eq!(second["stages"][0]["order"], 0);
    assert_eq!(second["stages"][1]["order"], 1);
    assert_eq!(second["isDefault"], true);
    let second_id = second["_id"].as_str().unwrap();

    // Setting a default cleared the other one.
    let got = t.get(&format!("{}/{first_id}", base(&ws)), tok).await;
    assert_eq!(got.ok(200)["isDefault"], false);

    let list = t.get(&base(&ws), tok).await.ok(200).clone();
    assert_eq!(list["pipelines"].as_array().unwrap().len(), 2);
    assert_eq!(list["pagination"]["total"], 2);
    assert_eq!(list["pipelines"][0]["_id"], second_id, "newest first");

    // PATCH: rename, clear the description, move the default back.
    let p = t
        .patch(
            &format!("{}/{first_id}", base(&ws)),
            tok,
            json!({"name": "Direct", "isDefault": true}),
        )
        .await
        .ok(200)
        .clone();
    assert_eq!(
        (p["name"].as_str(), p["isDefault"].as_bool()),
        (Some("Direct"), Some(true))
    );
    let p = t
        .patch(
            &format!("{}/{second_id}", base(&ws)),
            tok,
            json!({"description": null}),
        )
        .await
        .ok(200)
        .clone();
    assert!(p.get("description").is_none());
    assert_eq!(p["isDefault"], false);
    // The default cannot be switched off, only moved.
    t.patch(
        &format!("{}/{first_id}", base(&ws)),
        tok,
        json!({"isDefault": false}),
    )
    .await
    .problem(422, "invalid");

    // Validation.
    for (body, field) in [
        (json!({"name": " "}), "name"),
        (json!({"name": "x".repeat(101)}), "name"),
        (json!({"name": "P", "stages": []}), "stages"),
        (
            json!({"name": "P", "stages": [{"name": "A", "color": "red"}]}),
            "stages[0].color",
        ),
        (
            json!({"name": "P", "stages": [{"name": "x".repeat(51)}]}),
            "stages[0].name",
        ),
    ] {
        let r = t.post(&base(&ws), tok, body).await;
        r.problem(422, "invalid");
        assert_eq!(r.body["field"], field);
    }
    let many: Vec<Value> = (0..21).map(|i| json!({"name": format!("S{i}")})).collect();
    t.post(&base(&ws), tok, json!({"name": "P", "stages": many}))
        .await
        .problem(422, "invalid");
}

#[tokio::test]
async fn stages_add_patch_reorder_delete() {
    let World { t, owner, ws } = world().await;
    let tok = Some(owner.access.as_str());
    let p = t
        .post(
            &base(&ws),
            tok,
            json!({"name": "P", "stages": [{"name": "One"}, {"name": "Two"}]}),
        )
        .await
        .ok(201)
        .clone();
    let pid = p["_id"].as_str().unwrap();
    let stages = format!("{}/{pid}/stages", base(&ws));

    let p = t
        .post(
            &stages,
            tok,
            json!({"name": "Middle", "order": 1, "color": "#112233"}),
        )
        .await
        .ok(201)
        .clone();
    assert_eq!(stage_names(&p), ["One", "Middle", "Two"]);
    let p = t
        .post(&stages, tok, json!({"name": "Won", "outcome": "won"}))
        .await
        .ok(201)
        .clone();
    assert_eq!(stage_names(&p), ["One", "Middle", "Two", "Won"]);
    let ids = stage_ids(&p);

    let p = t
        .patch(
            &format!("{stages}/{}", ids[1]),
            tok,
            json!({"name": "Mid", "color": "#abcdef", "outcome": "lost"}),
        )
        .await
        .ok(200)
        .clone();
    assert_eq!(p["stages"][1]["name"], "Mid");
    assert_eq!(p["stages"][1]["color"], "#ABCDEF");
    assert_eq!(p["stages"][1]["outcome"], "lost");
    let p = t
        .patch(
            &format!("{stages}/{}", ids[1]),
            tok,
            json!({"outcome": null}),
        )
        .await
        .ok(200)
        .clone();
    assert!(p["stages"][1].get("outcome").is_none());

    // Reorder: a permutation renumbers; anything else is 422 and changes nothing.
    let order = vec![&ids[3], &ids[2], &ids[1], &ids[0]];
    let p = t
        .post(
            &format!("{stages}/reorder"),
            tok,
            json!({"stageOrder": order}),
        )
        .await
        .ok(200)
        .clone();
    assert_eq!(stage_names(&p), ["Won", "Two", "Mid", "One"]);
    let orders: Vec<u64> = p["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["order"].as_u64().unwrap())
        .collect();
    assert_eq!(orders, [0, 1, 2, 3]);
    let foreign = crm_core::ObjectId::new().to_hex();
    for bad in [
        json!([&ids[0], &ids[1], &ids[2]]),
        json!([&ids[0], &ids[0], &ids[1], &ids[2]]),
        json!([&ids[0], &ids[1], &ids[2], foreign]),
    ] {
        let r = t
            .post(
                &format!("{stages}/reorder"),
                tok,
                json!({"stageOrder": bad}),
            )
            .await;
        r.problem(422, "invalid");
        assert_eq!(r.body["field"], "stageOrder");
    }
    let p = t
        .get(&format!("{}/{pid}", base(&ws)), tok)
        .await
        .ok(200)
        .clone();
    assert_eq!(stage_names(&p), ["Won", "Two", "Mid", "One"]);

    // Delete renumbers; an unknown stage is 404; the last one stays.
    t.delete(&format!("{stages}/{}", ids[2]), tok).await.ok(204);
    let p = t
        .get(&format!("{}/{pid}", base(&ws)), tok)
        .await
        .ok(200)
        .clone();
    assert_eq!(stage_names(&p), ["Won", "Mid", "One"]);
    assert_eq!(p["stages"][2]["order"], 2);
    t.delete(&format!("{stages}/{foreign}"), tok)
        .await
        .problem(404, "not_found");
    t.delete(&format!("{stages}/{}", ids[3]), tok).await.ok(204);
    t.delete(&format!("{stages}/{}", ids[0]), tok).await.ok(204);
    let r = t.delete(&format!("{stages}/{}", ids[1]), tok).await;
    r.problem(422, "invalid");

    // At most 20 stages.
    for i in 1..20 {
        t.post(&stages, tok, json!({"name": format!("S{i}")}))
            .await
            .ok(201);
    }
    let r = t.post(&stages, tok, json!({"name": "S21"})).await;
    r.problem(422, "invalid");
    assert_eq!(r.body["field"], "stages");
}

#[tokio::test]
async fn stages_and_pipelines_in_use_are_kept_and_archive_moves_the_default() {
    let World { t, owner, ws } = world().await;
    let tok = Some(owner.access.as_str());
    let main = t
        .post(&base(&ws), tok, json!({"name": "Main"}))
        .await
        .ok(201)
        .clone();
    let other = t
        .post(&base(&ws), tok, json!({"name": "Other"}))
        .await
        .ok(201)
        .clone();
    let (main_id, other_id) = (
        main["_id"].as_str().unwrap(),
        other["_id"].as_str().unwrap(),
    );
    let stage = &stage_ids(&main)[1];
    let deal = t
        .post(
            &format!("/api/v1/workspaces/{ws}/opportunities"),
            tok,
            json!({"title": "Deal", "value": 10, "pipelineId": main_id, "stageId": stage}),
        )
        .await
        .ok(201)
        .clone();

    let r = t
        .delete(&format!("{}/{main_id}/stages/{stage}", base(&ws)), tok)
        .await;
    r.problem(409, "conflict");
    assert_eq!(r.body["field"], "stageId");
    assert!(r.body["detail"].as_str().unwrap().contains("Opportunities"));
    let r = t.delete(&format!("{}/{main_id}", base(&ws)), tok).await;
    r.problem(409, "conflict");
    assert_eq!(r.body["field"], "pipelineId");
    t.patch(
        &format!("{}/{main_id}", base(&ws)),
        tok,
        json!({"isActive": false}),
    )
    .await
    .problem(409, "conflict");

    // A trashed deal can come back, so it still holds its stage; a purged one does not.
    let deal_url = format!(
        "/api/v1/workspaces/{ws}/opportunities/{}",
        deal["_id"].as_str().unwrap()
    );
    t.delete(&deal_url, tok).await.ok(204);
    t.delete(&format!("{}/{main_id}/stages/{stage}", base(&ws)), tok)
        .await
        .problem(409, "conflict");
    t.delete(&format!("{deal_url}?purge=true"), tok)
        .await
        .ok(204);
    t.delete(&format!("{}/{main_id}/stages/{stage}", base(&ws)), tok)
        .await
        .ok(204);
    t.delete(&format!("{}/{main_id}", base(&ws)), tok)
        .await
        .ok(204);

    // Archived: listed only with isActive=false, still readable, no longer the default.
    let active = t.get(&base(&ws), tok).await.ok(200).clone();
    let ids: Vec<_> = active["pipelines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [other_id]);
    assert_eq!(
        active["pipelines"][0]["isDefault"], true,
        "the default moved"
    );
    let archived = t
        .get(&format!("{}?isActive=false", base(&ws)), tok)
        .await
        .ok(200)
        .clone();
    assert_eq!(archived["pipelines"][0]["_id"], main_id);
    assert_eq!(archived["pipelines"][0]["isDefault"], false);
    // Deals cannot go into an archived pipeline.
    let r = t
        .post(
            &format!("/api/v1/workspaces/{ws}/opportunities"),
            tok,
            json!({"title": "Late", "value": 1, "pipelineId": main_id}),
        )
        .await;
    r.problem(422, "invalid");
    assert_eq!(r.body["field"], "pipelineId");
    // Restore.
    let p = t
        .patch(
            &format!("{}/{main_id}", base(&ws)),
            tok,
            json!({"isActive": true}),
        )
        .await
        .ok(200)
        .clone();
    assert_eq!(p["isActive"], true);
}

#[tokio::test]
async fn role_table() {
    let World { t, owner, ws } = world().await;
    let member = t.register("member@example.com").await;
    let viewer = t.register("viewer@example.com").await;
    add_member(&t, &ws, &member, Role::Member).await;
    add_member(&t, &ws, &viewer, Role::Viewer).await;
    let p = t
        .post(&base(&ws), Some(&owner.access), json!({"name": "P"}))
        .await
        .ok(201)
        .clone();
    let pid = p["_id"].as_str().unwrap();
    let sid = &stage_ids(&p)[0];
    let one = format!("{}/{pid}", base(&ws));

    // Viewer reads, never writes.
    let v = Some(viewer.access.as_str());
    t.get(&base(&ws), v).await.ok(200);
    t.get(&one, v).await.ok(200);
    t.get(&format!("{one}/kanban"), v).await.ok(200);
    t.post(&base(&ws), v, json!({"name": "V"}))
        .await
        .problem(403, "forbidden");
    t.patch(&one, v, json!({"name": "V"}))
        .await
        .problem(403, "forbidden");
    t.post(&format!("{one}/stages"), v, json!({"name": "V"}))
        .await
        .problem(403, "forbidden");
    t.post(
        &format!("{one}/stages/reorder"),
        v,
        json!({"stageOrder": stage_ids(&p)}),
    )
    .await
    .problem(403, "forbidden");

    // Member creates and edits, never deletes.
    let m = Some(member.access.as_str());
    t.post(&base(&ws), m, json!({"name": "M"})).await.ok(201);
    t.patch(&one, m, json!({"name": "Renamed"})).await.ok(200);
    t.post(&format!("{one}/stages"), m, json!({"name": "Extra"}))
        .await
        .ok(201);
    t.patch(&format!("{one}/stages/{sid}"), m, json!({"name": "First"}))
        .await
        .ok(200);
    t.delete(&format!("{one}/stages/{sid}"), m)
        .await
        .problem(403, "forbidden");
    t.delete(&one, m).await.problem(403, "forbidden");
    t.patch(&one, m, json!({"isActive": false}))
        .await
        .problem(403, "forbidden");

    // No token: 401.
    t.get(&base(&ws), None)
        .await
        .problem(401, "unauthenticated");
}

#[tokio::test]
async fn another_workspace_is_404() {
    let World { t, owner, ws } = world().await;
    let eve = t.register("eve@example.com").await;
    let theirs = t.workspace(&eve, "Elsewhere").await;
    let p = t
        .post(&base(&theirs), Some(&eve.access), json!({"name": "Secret"}))
        .await
        .ok(201)
        .clone();
    let pid = p["_id"].as_str().unwrap();
    let sid = &stage_ids(&p)[0];
    let tok = Some(owner.access.as_str());
    // Their pipeline id under my workspace.
    let mine = format!("{}/{pid}", base(&ws));
    t.get(&mine, tok).await.problem(404, "not_found");
    t.patch(&mine, tok, json!({"name": "Mine"}))
        .await
        .problem(404, "not_found");
    t.delete(&mine, tok).await.problem(404, "not_found");
    t.get(&format!("{mine}/kanban"), tok)
        .await
        .problem(404, "not_found");
    t.post(&format!("{mine}/stages"), tok, json!({"name": "X"}))
        .await
        .problem(404, "not_found");
    t.delete(&format!("{mine}/stages/{sid}"), tok)
        .await
        .problem(404, "not_found");
    // Their workspace itself.
    t.get(&format!("{}/{pid}", base(&theirs)), tok)
        .await
        .problem(404, "not_found");
    // A stage of their pipeline in my pipeline's path.
    let my = t
        .post(&base(&ws), tok, json!({"name": "Mine"}))
        .await
        .ok(201)
        .clone();
    let my_id = my["_id"].as_str().unwrap();
    t.patch(
        &format!("{}/{my_id}/stages/{sid}", base(&ws)),
        tok,
        json!({"name": "X"}),
    )
    .await
    .problem(404, "not_found");
    // Their list stays theirs.
    let list = t.get(&base(&ws), tok).await.ok(200).clone();
    assert_eq!(list["pipelines"].as_array().unwrap().len(), 1);
    // And their stages cannot be ordered into mine.
    let mut order = stage_ids(&my);
    order[0] = sid.clone();
    t.post(
        &format!("{}/{my_id}/stages/reorder", base(&ws)),
        tok,
        json!({"stageOrder": order}),
    )
    .await
    .problem(422, "invalid");
}
