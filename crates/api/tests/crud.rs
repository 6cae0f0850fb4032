//! The generic CRUD routes (`clianta_api::crud`) over a test-only entity, on every store.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers panic on failure by design"
)]

mod common;

use async_trait::async_trait;
use clianta_api::crud::{Crud, crud_routes};
use clianta_api::router_with;
use common::*;
use crm_core::accounts::{Resource, Role};
use crm_core::entities::contact::{Contact, ContactId};
use crm_core::repo::{Actor, Entity, WorkspaceEntity, WorkspaceScope};
use crm_core::schema::{Dir::*, EntityDef, FieldKind::*, IndexDef, Tenancy, UniqueKey, f};
use crm_core::{Error, ObjectId, Tenant, Timestamp, UserId, WorkspaceId};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

static WIDGET: EntityDef = EntityDef {
    name: "Widget",
    collection: "testwidgets",
    tenancy: Tenancy::Workspace {
        field: "workspaceId",
    },
    timestamps: true,
    fields: &[
        f("name", Text).required(),
        f("size", Number),
        f("kind", Text),
        f("contactId", Id),
        f("createdBy", Id),
        f("meta", Object),
    ],
    unique: &[UniqueKey {
        name: "name",
        fields: &["name"],
    }],
    indexes: &[IndexDef::on(&[("kind", Asc)])],
    text: &["name"],
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Kind {
    #[default]
    Small,
    Large,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Widget {
    #[serde(rename = "_id")]
    id: ObjectId,
    workspace_id: WorkspaceId,
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    size: Option<f64>,
    #[serde(default)]
    kind: Kind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    contact_id: Option<ContactId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    created_by: Option<UserId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    meta: Option<serde_json::Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    updated_at: Option<Timestamp>,
}

impl Entity for Widget {
    const DEF: &'static EntityDef = &WIDGET;
}
impl WorkspaceEntity for Widget {}

#[async_trait]
impl Crud for Widget {
    const PATH: &'static str = "widgets";
    const RESOURCE: Resource = Resource::Analytics;
    const TAG: &'static str = "widgets";
    const FILTERS: &'static [&'static str] = &["kind", "size", "contactId"];
    const SERVER_FIELDS: &'static [&'static str] = &["createdBy"];
    const SORTS: &'static [&'static str] = &["createdAt", "name"];

    async fn check(scope: &WorkspaceScope, w: &Self) -> crm_core::Result<()> {
        if let Some(c) = w.contact_id {
            match scope.repo::<Contact>().get(c).await {
                Ok(_) => {}
                Err(Error::NotFound) => {
                    return Err(Error::invalid("contactId", "no such contact"));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn on_create(&mut self, actor: Actor) {
        self.created_by = actor.user();
    }
}

async fn app() -> World {
    let mut t = TestApp::new();
    t.state
        .storage
        .admin
        .ensure_schema(&[&WIDGET])
        .await
        .unwrap();
    t.app = router_with(t.state.clone(), crud_routes::<Widget>);
    world_with(t).await
}

fn widgets(ws: &str) -> String {
    format!("/api/v1/workspaces/{ws}/widgets")
}

#[tokio::test]
async fn create_applies_defaults_and_server_fields_and_names_wrong_fields() {
    let w = app().await;
    let made =
        w.t.post(
            &widgets(&w.ws),
            w.tok(),
            json!({"name": "Sprocket", "size": 3}),
        )
        .await;
    let body = made.ok(201);
    assert_eq!(body["kind"], "small");
    assert_eq!(body["workspaceId"], w.ws);
    assert_eq!(body["createdBy"], w.owner.id);
    assert!(body["createdAt"].is_string());

    let r = w.t.post(&widgets(&w.ws), w.tok(), json!({"size": 1})).await;
    assert_eq!(r.problem(422, "invalid").body["field"], "name");
    let r =
        w.t.post(
            &widgets(&w.ws),
            w.tok(),
            json!({"name": "X", "size": "big"}),
        )
        .await;
    assert_eq!(r.problem(422, "invalid").body["field"], "size");
    let r =
        w.t.post(
            &widgets(&w.ws),
            w.tok(),
            json!({"name": "X", "kind": "huge"}),
        )
        .await;
    assert_eq!(r.problem(422, "invalid").body["field"], "kind");
    for server in ["_id", "workspaceId", "createdAt", "createdBy"] {
        let r =
            w.t.post(&widgets(&w.ws), w.tok(), json!({"name": "Y", server: "x"}))
                .await;
        assert_eq!(r.problem(422, "invalid").body["field"], server);
    }
    // The unique key answers 409 with its name.
    let r =
        w.t.post(&widgets(&w.ws), w.tok(), json!({"name": "Sprocket"}))
            .await;
    assert_eq!(r.problem(409, "conflict").body["field"], "name");
}

#[tokio::test]
async fn list_filters_by_declared_fields_with_their_types() {
    let w = app().await;
    for (name, size, kind) in [("a", 1, "small"), ("b", 2, "large"), ("c", 2, "small")] {
        w.t.post(
            &widgets(&w.ws),
            w.tok(),
            json!({"name": name, "size": size, "kind": kind}),
        )
        .await
        .ok(201);
    }
    let all = w.t.get(&widgets(&w.ws), w.tok()).await;
    assert_eq!(all.ok(200)["pagination"]["total"], 3);
    let two =
        w.t.get(&format!("{}?size=2&sort=name", widgets(&w.ws)), w.tok())
            .await;
    let names: Vec<&str> = two.ok(200)["widgets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["b", "c"]);
    let large =
        w.t.get(&format!("{}?kind=large", widgets(&w.ws)), w.tok())
            .await;
    assert_eq!(large.ok(200)["widgets"].as_array().unwrap().len(), 1);
    let r =
        w.t.get(&format!("{}?sort=kind", widgets(&w.ws)), w.tok())
            .await;
    assert_eq!(r.problem(422, "invalid").body["field"], "sort");
    let r =
        w.t.get(&format!("{}?size=many", widgets(&w.ws)), w.tok())
            .await;
    assert_eq!(r.problem(422, "invalid").body["field"], "size");
    let found =
        w.t.get(&format!("{}?search=a", widgets(&w.ws)), w.tok())
            .await;
    assert_eq!(found.ok(200)["widgets"][0]["name"], "a");
}

#[tokio::test]
async fn patch_merges_writes_only_changes_and_keeps_unknown_fields() {
    let w = app().await;
    let made =
        w.t.post(
            &widgets(&w.ws),
            w.tok(),
            json!({"name": "Gear", "size": 4, "meta": {"a": 1, "b": 2}}),
        )
        .await;
    let id = made.ok(201)["_id"].as_str().unwrap().to_owned();
    // A field this server does not declare, as another backend might have written it.
    let ws: WorkspaceId = w.ws.parse().unwrap();
    w.t.state
        .storage
        .docs
        .update_one(
            Tenant::Workspace(ws),
            &WIDGET,
            id.parse().unwrap(),
            &crm_core::Update::new().set("legacyFlag", true),
        )
        .await
        .unwrap();
    let one = format!("{}/{id}", widgets(&w.ws));
    let r =
        w.t.patch(
            &one,
            w.tok(),
            json!({"size": null, "meta": {"b": null, "c": 3}}),
        )
        .await;
    let body = r.ok(200);
    assert!(body.get("size").is_none(), "{body}");
    assert_eq!(body["meta"], json!({"a": 1, "c": 3}));
    let stored =
        w.t.state
            .storage
            .docs
            .get(Tenant::Workspace(ws), &WIDGET, id.parse().unwrap())
            .await
            .unwrap();
    assert_eq!(stored["legacyFlag"], true);
    assert_eq!(stored["name"], "Gear");
    let r = w.t.patch(&one, w.tok(), json!({"kind": 7})).await;
    assert_eq!(r.problem(422, "invalid").body["field"], "kind");
    let r =
        w.t.patch(&one, w.tok(), json!({"createdBy": w.owner.id}))
            .await;
    assert_eq!(r.problem(422, "invalid").body["field"], "createdBy");
}

#[tokio::test]
async fn roles_follow_the_table() {
    let w = app().await;
    let viewer = w.t.register("viewer@example.com").await;
    let member = w.t.register("member@example.com").await;
    add_member(&w.t, &w.ws, &viewer, Role::Viewer).await;
    add_member(&w.t, &w.ws, &member, Role::Member).await;
    let id =
        w.t.post(&widgets(&w.ws), w.tok(), json!({"name": "A"}))
            .await
            .ok(201)["_id"]
            .as_str()
            .unwrap()
            .to_owned();
    let one = format!("{}/{id}", widgets(&w.ws));
    let v = Some(viewer.access.as_str());
    w.t.get(&one, v).await.ok(200);
    w.t.post(&widgets(&w.ws), v, json!({"name": "B"}))
        .await
        .problem(403, "forbidden");
    w.t.patch(&one, v, json!({"size": 1}))
        .await
        .problem(403, "forbidden");
    let m = Some(member.access.as_str());
    w.t.post(&widgets(&w.ws), m, json!({"name": "C"}))
        .await
        .ok(201);
    w.t.patch(&one, m, json!({"size": 1})).await.ok(200);
    w.t.delete(&one, m).await.problem(403, "forbidden");
    assert_eq!(w.t.delete(&one, w.tok()).await.status.as_u16(), 204);
    w.t.get(&one, w.tok()).await.problem(404, "not_found");
}

#[tokio::test]
async fn another_workspace_is_invisible() {
    let w = app().await;
    let other = w.t.workspace(&w.owner, "Other").await;
    let theirs =
        w.t.post(&widgets(&other), w.tok(), json!({"name": "Theirs"}))
            .await
            .ok(201)["_id"]
            .as_str()
            .unwrap()
            .to_owned();
    let mine = format!("{}/{theirs}", widgets(&w.ws));
    w.t.get(&mine, w.tok()).await.problem(404, "not_found");
    w.t.patch(&mine, w.tok(), json!({"size": 1}))
        .await
        .problem(404, "not_found");
    w.t.delete(&mine, w.tok()).await.problem(404, "not_found");
    let list = w.t.get(&widgets(&w.ws), w.tok()).await;
    assert_eq!(list.ok(200)["pagination"]["total"], 0);
    // The same unique value is free in another workspace.
    w.t.post(&widgets(&w.ws), w.tok(), json!({"name": "Theirs"}))
        .await
        .ok(201);
    // A reference into another workspace is refused with its field.
    let c =
        w.t.post(
            &format!("/api/v1/workspaces/{other}/contacts"),
            w.tok(),
            json!({"firstName": "Eve"}),
        )
        .await
        .ok(201)["_id"]
            .as_str()
            .unwrap()
            .to_owned();
    let r =
        w.t.post(
            &widgets(&w.ws),
            w.tok(),
            json!({"name": "Ref", "contactId": c}),
        )
        .await;
    assert_eq!(r.problem(422, "invalid").body["field"], "contactId");
    // A stranger to the workspace sees nothing.
    let stranger = w.t.register("stranger@example.com").await;
    w.t.get(&widgets(&w.ws), Some(&stranger.access))
        .await
        .problem(404, "not_found");
}

#[tokio::test]
async fn the_operations_are_documented() {
    let w = app().await;
    let doc = w.t.get("/api/v1/openapi.json", None).await;
    let paths = &doc.ok(200)["paths"];
    let base = &paths["/api/v1/workspaces/{workspaceId}/widgets"];
    let one = &paths["/api/v1/workspaces/{workspaceId}/widgets/{id}"];
    for (item, method, status) in [
        (base, "get", "200"),
        (base, "post", "201"),
        (one, "get", "200"),
        (one, "patch", "200"),
        (one, "delete", "204"),
    ] {
        assert!(
            item[method]["responses"][status].is_object(),
            "{method} {status}: {item}"
        );
        assert!(item[method]["responses"]["401"].is_object(), "{item}");
    }
    assert!(
        base["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "kind")
    );
}
