//! Create, get, list, patch and delete for entities whose rules are their type (ADR 0026).
//!
//! An entity opts in with one `impl Crud` and one `crud_routes::<E>(r)` line. The body of a
//! create is the entity's own JSON, decoded into its typed struct (so serde's defaults, enums
//! and bounded newtypes are the validation); a PATCH is a JSON merge patch (RFC 7396) over the
//! stored record, decoded again as a whole, and written as `$set`/`$unset` of the paths that
//! changed, so fields this server does not know survive. The OpenAPI operations are built here
//! from the declaration, so the document cannot drift from the router.

use async_trait::async_trait;
use axum::extract::{Path, RawQuery};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use crm_core::accounts::{Action, Resource};
use crm_core::query::Update;
use crm_core::repo::{Actor, WorkspaceEntity, changed_paths, to_document};
use crm_core::schema::{CREATED_AT, ID_FIELD, UPDATED_AT};
use crm_core::{Document, Error, FieldKind, FieldPath, Filter, ObjectId, SortKey, Timestamp};
use serde_json::{Map, Value};
use utoipa::IntoParams;
use utoipa::openapi::path::{
    HttpMethod, Operation, OperationBuilder, Parameter, ParameterBuilder, ParameterIn, PathItem,
    Paths,
};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{ContentBuilder, Required};
use utoipa_axum::router::OpenApiRouter;

use crate::auth::Member;
use crate::error::{ApiError, ApiResult, PROBLEM_JSON};
use crate::extract::{ApiJson, ApiQuery, decode_query};
use crate::listing::{DEFAULT_PAGE_LIMIT, ListParams, list_without_expand};
use crate::routes::tickets::path_id;
use crate::state::AppState;

/// A workspace entity served by the generic routes.
#[async_trait]
pub trait Crud: WorkspaceEntity + Clone {
    /// URL segment: `battlecards` serves `/api/v1/workspaces/{workspaceId}/battlecards[/{id}]`.
    const PATH: &'static str;
    /// The key of the list in list answers (`{"battlecards": [...], "pagination": ...}`).
    const PLURAL: &'static str = Self::PATH;
    const RESOURCE: Resource;
    /// OpenAPI tag.
    const TAG: &'static str;
    /// Fields a list may filter on with `?field=value` (declared, preferably indexed).
    const FILTERS: &'static [&'static str] = &[];
    const SORTS: &'static [&'static str] = &[CREATED_AT, UPDATED_AT];
    /// Fields only the server sets; a body naming one is refused (422).
    const SERVER_FIELDS: &'static [&'static str] = &[];

    /// Rules beyond the type (references in this workspace, cross-field checks); runs on create
    /// and on the patched record. `Error::invalid(field, ..)` answers 422.
    async fn check(
        _scope: &crm_core::repo::WorkspaceScope,
        _record: &Self,
    ) -> crm_core::Result<()> {
        Ok(())
    }

    /// Server-set fields of a new record (creator, owner).
    fn on_create(&mut self, _actor: Actor) {}
}

/// Registers the five operations of `E` with their OpenAPI description.
pub fn crud_routes<E: Crud>(r: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    let base = format!("/api/v1/workspaces/{{workspaceId}}/{}", E::PATH);
    let one = format!("{base}/{{id}}");
    let collection = PathItem::from_http_methods([HttpMethod::Get], list_op::<E>());
    let mut collection = collection;
    collection.post = Some(create_op::<E>());
    let mut item = PathItem::from_http_methods([HttpMethod::Get], get_op::<E>());
    item.patch = Some(patch_op::<E>());
    item.delete = Some(delete_op::<E>());
    let mut p1 = Paths::new();
    p1.paths.insert(base, collection);
    let mut p2 = Paths::new();
    p2.paths.insert(one, item);
    r.routes((Vec::new(), p1, get(list::<E>).post(create::<E>)))
        .routes((
            Vec::new(),
            p2,
            get(get_one::<E>).patch(patch::<E>).delete(delete::<E>),
        ))
}

const PROTECTED: [&str; 3] = [ID_FIELD, CREATED_AT, UPDATED_AT];

fn refuse_server_fields<E: Crud>(body: &Map<String, Value>) -> Result<(), Error> {
    let tenant = E::DEF.tenant_field();
    for k in body.keys() {
        if PROTECTED.contains(&k.as_str())
            || Some(k.as_str()) == tenant
            || E::SERVER_FIELDS.contains(&k.as_str())
        {
            return Err(Error::invalid(k.clone(), "is set by the server"));
        }
    }
    Ok(())
}

/// The typed record of a document, naming the first wrong field.
fn decode_record<E: Crud>(doc: Document) -> Result<E, ApiError> {
    let value = Value::Object(doc);
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let detail = e.into_inner().to_string();
        // serde names a missing field only in its message: "missing field `name`".
        let missing = detail
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split('`').next())
            .map(|f| {
                if path == "." {
                    f.to_owned()
                } else {
                    format!("{path}.{f}")
                }
            });
        ApiError::InvalidJson {
            field: missing.or((path != ".").then_some(path)),
            detail,
        }
    })
}

/// RFC 7396: objects merge key by key, `null` removes, anything else replaces.
fn merge_patch(target: &mut Map<String, Value>, patch: Map<String, Value>) {
    for (k, v) in patch {
        match v {
            Value::Null => {
                target.remove(&k);
            }
            Value::Object(p) => match target.get_mut(&k) {
                Some(Value::Object(t)) => merge_patch(t, p),
                _ => {
                    let mut t = Map::new();
                    merge_patch(&mut t, p);
                    target.insert(k, Value::Object(t));
                }
            },
            v => {
                target.insert(k, v);
            }
        }
    }
}

/// `$set`/`$unset` of the paths that differ, so unknown fields of the stored record survive.
fn diff_update<E: Crud>(before: &Document, after: &Document) -> Result<Update, Error> {
    let mut u = Update::default();
    for raw in changed_paths(E::DEF, before, after) {
        let path = FieldPath::parse(&raw)?;
        match crm_core::engine::resolve(after, &path) {
            Some(v) => u = u.set(path, v.clone()),
            None => u = u.unset(path),
        }
    }
    Ok(u)
}

async fn create<E: Crud>(
    member: Member,
    ApiJson(body): ApiJson<Map<String, Value>>,
) -> ApiResult<Response> {
    let scope = member.can(E::RESOURCE, Action::Create)?;
    refuse_server_fields::<E>(&body)?;
    let mut doc = body;
    doc.insert(ID_FIELD.into(), Value::String(ObjectId::new().to_hex()));
    if let Some(field) = E::DEF.tenant_field() {
        doc.insert(field.into(), Value::String(scope.id().to_string()));
    }
    let mut record: E = decode_record(doc)?;
    record.on_create(scope.actor());
    E::check(scope, &record).await?;
    let stored = scope.repo::<E>().insert(&record).await?;
    Ok((StatusCode::CREATED, ApiJson(stored)).into_response())
}

async fn get_one<E: Crud>(
    member: Member,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<ApiJson<E>> {
    let scope = member.can(E::RESOURCE, Action::View)?;
    Ok(ApiJson(
        scope.repo::<E>().get(path_id::<ObjectId>(&id)?).await?,
    ))
}

/// `?field=value` for a declared filter, typed by the field's declared kind.
fn typed_filter<E: Crud>(field: &str, raw: &str) -> Result<Filter, Error> {
    let bad = |why: &str| Error::invalid(field, why);
    let v = match E::DEF.kind_of(field) {
        FieldKind::Number => raw
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| bad("must be a number"))?,
        FieldKind::Bool => match raw {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => return Err(bad("must be true or false")),
        },
        FieldKind::Id | FieldKind::Ids => {
            raw.parse::<ObjectId>().map_err(|_| bad("must be an id"))?;
            Value::String(raw.to_owned())
        }
        FieldKind::Date => Value::String(
            Timestamp::parse(raw)
                .map_err(|_| bad("must be an RFC 3339 timestamp"))?
                .to_canonical(),
        ),
        _ => Value::String(raw.to_owned()),
    };
    Ok(Filter::Eq(FieldPath::parse(field)?, v))
}

async fn list<E: Crud>(
    member: Member,
    ApiQuery(p): ApiQuery<ListParams>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let scope = member.can(E::RESOURCE, Action::View)?;
    if p.search.is_some() && E::DEF.text.is_empty() {
        return Err(Error::invalid("search", "this list has no searchable fields").into());
    }
    let pairs: Vec<(String, String)> = decode_query(raw.as_deref().unwrap_or_default())?;
    let mut filter = p.base_filter();
    for (k, v) in &pairs {
        if E::FILTERS.contains(&k.as_str()) {
            filter = filter.and(typed_filter::<E>(k, v)?);
        }
    }
    let sort = p.sort(E::SORTS, &[SortKey::desc(CREATED_AT)])?;
    let body = list_without_expand(
        scope.repo::<E>(),
        &p,
        &filter,
        &sort,
        DEFAULT_PAGE_LIMIT,
        E::PLURAL,
    )
    .await?;
    Ok(ApiJson(body).into_response())
}

async fn patch<E: Crud>(
    member: Member,
    Path((_, id)): Path<(String, String)>,
    ApiJson(body): ApiJson<Map<String, Value>>,
) -> ApiResult<ApiJson<E>> {
    let scope = member.can(E::RESOURCE, Action::Edit)?;
    let id: ObjectId = path_id(&id)?;
    refuse_server_fields::<E>(&body)?;
    let repo = scope.repo::<E>();
    let current = to_document(&repo.get(id).await?)?;
    let mut merged = current.clone();
    merge_patch(&mut merged, body);
    let record: E = decode_record(merged)?;
    E::check(scope, &record).await?;
    let update = diff_update::<E>(&current, &to_document(&record)?)?;
    if update.ops.is_empty() {
        return Ok(ApiJson(record));
    }
    Ok(ApiJson(repo.update(id, &update).await?))
}

async fn delete<E: Crud>(
    member: Member,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let scope = member.can(E::RESOURCE, Action::Delete)?;
    scope.repo::<E>().delete(path_id::<ObjectId>(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

// OpenAPI: the operations of one entity, described from its declaration.

fn object() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::Object)
}

fn json_response(description: String) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new().schema(Some(object())).build(),
        )
        .build()
}

fn problem(description: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            PROBLEM_JSON,
            ContentBuilder::new()
                .schema(Some(utoipa::openapi::Ref::from_schema_name("Problem")))
                .build(),
        )
        .build()
}

fn path_param(name: &str, description: &str) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Path)
        .required(Required::True)
        .description(Some(description))
        .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
        .build()
}

fn base_op<E: Crud>(id: &str, summary: String, with_id: bool) -> OperationBuilder {
    let mut params = vec![path_param("workspaceId", "The workspace id")];
    if with_id {
        params.push(path_param("id", "The record id"));
    }
    OperationBuilder::new()
        .operation_id(Some(format!("{id}_{}", E::PATH.replace('-', "_"))))
        .tag(E::TAG)
        .summary(Some(summary))
        .parameters(Some(params))
        .securities(Some([
            utoipa::openapi::security::SecurityRequirement::new::<&str, [&str; 0], &str>(
                "bearer",
                [],
            ),
        ]))
        .response(
            "404",
            problem("No such workspace, or no such record in it (also another workspace's id)"),
        )
}

fn name<E: Crud>() -> String {
    format!("{} (collection `{}`)", E::DEF.name, E::DEF.collection)
}

fn list_op<E: Crud>() -> Operation {
    let mut params = ListParams::into_params(|| Some(ParameterIn::Query));
    for f in E::FILTERS {
        params.push(
            ParameterBuilder::new()
                .name(*f)
                .parameter_in(ParameterIn::Query)
                .required(Required::False)
                .description(Some(format!("Only records whose `{f}` equals this value")))
                .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                .build(),
        );
    }
    let mut op = base_op::<E>("list", format!("List {}", name::<E>()), false)
        .response(
            "200",
            json_response(format!(
                "`{{{}: [...], pagination}}`, newest first",
                E::PLURAL
            )),
        )
        .response("422", problem("Bad filter, sort or paging"))
        .build();
    if let Some(ps) = op.parameters.as_mut() {
        ps.extend(params.into_iter().map(utoipa::openapi::RefOr::T));
    }
    op
}

fn body_doc<E: Crud>(what: &str) -> utoipa::openapi::request_body::RequestBody {
    RequestBodyBuilder::new()
        .description(Some(format!(
            "{what} of {}, camelCase as the original stores it",
            E::DEF.name
        )))
        .content(
            "application/json",
            ContentBuilder::new().schema(Some(object())).build(),
        )
        .required(Some(Required::True))
        .build()
}

fn create_op<E: Crud>() -> Operation {
    base_op::<E>("create", format!("Create a {}", name::<E>()), false)
        .request_body(Some(body_doc::<E>("The fields")))
        .response("201", json_response(format!("The new {}", E::DEF.name)))
        .response(
            "403",
            problem("The role may not create these records"),
        )
        .response(
            "409",
            problem("A record with the same unique key exists"),
        )
        .response(
            "422",
            problem("A field has the wrong type or value, is server-set, or references a record outside this workspace"),
        )
        .build()
}

fn get_op<E: Crud>() -> Operation {
    base_op::<E>("get", format!("Get a {}", name::<E>()), true)
        .response("200", json_response(format!("The {}", E::DEF.name)))
        .build()
}

fn patch_op<E: Crud>() -> Operation {
    base_op::<E>("patch", format!("Change a {} (JSON merge patch)", name::<E>()), true)
        .request_body(Some(body_doc::<E>("A JSON merge patch (null removes a field)")))
        .response("200", json_response(format!("The updated {}", E::DEF.name)))
        .response("403", problem("The role may not edit these records"))
        .response(
            "409",
            problem("A record with the same unique key exists"),
        )
        .response(
            "422",
            problem("A field has the wrong type or value, is server-set, or references a record outside this workspace"),
        )
        .build()
}

fn delete_op<E: Crud>() -> Operation {
    base_op::<E>("delete", format!("Delete a {}", name::<E>()), true)
        .response("204", ResponseBuilder::new().description("Deleted").build())
        .response("403", problem("The role may not delete these records"))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_follows_rfc_7396() {
        let mut t = json!({"a": "b", "c": {"d": "e", "f": "g"}, "keep": 1})
            .as_object()
            .cloned()
            .unwrap();
        let p = json!({"a": "z", "c": {"f": null, "h": 1}, "n": null})
            .as_object()
            .cloned()
            .unwrap();
        merge_patch(&mut t, p);
        assert_eq!(
            Value::Object(t),
            json!({"a": "z", "c": {"d": "e", "h": 1}, "keep": 1})
        );
    }
}
