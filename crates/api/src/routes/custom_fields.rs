//! Custom-field definitions of a workspace (`Resource::Settings`: everyone reads, owners and
//! admins write). The rules live in `crm_core::services::custom_fields`.

use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use crm_core::accounts::{Action, Resource};
use crm_core::entities::custom_field::{
    CurrencyConfig, CustomFieldDefinition, CustomFieldEntity, CustomFieldId, CustomFieldType,
    RelationConfig, ValueRules,
};
use crm_core::repo::to_document;
use crm_core::services::custom_fields::{self as service, DefinitionChanges};
use crm_core::{Error, SortKey};
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Member;
use crate::error::{ApiResult, Problem};
use crate::extract::{ApiJson, ApiQuery};
use crate::listing::{ListParams, list_body};
use crate::state::AppState;

const DEFAULT_LIMIT: u64 = 100;
const SORTABLE: &[&str] = &["order", "createdAt", "updatedAt", "fieldKey", "fieldLabel"];

pub fn routes(r: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    r.routes(routes!(create_custom_field, list_custom_fields))
        .routes(routes!(
            get_custom_field,
            patch_custom_field,
            delete_custom_field
        ))
}

/// Present-and-null as `Some(None)`, so a PATCH can clear a value.
fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateCustomField {
    /// contact, company or deal.
    #[schema(value_type = String)]
    pub entity_type: Option<CustomFieldEntity>,
    /// Letters, digits and underscores, starting with a letter, at most 50; derived from the
    /// label (`custom_` + slug) when absent. Unique per entity type.
    pub field_key: Option<String>,
    /// 1 to 100 characters.
    pub field_label: Option<String>,
    /// text, number, date, select, multiselect, currency, person, relation, boolean, email, url.
    #[schema(value_type = String)]
    pub field_type: Option<CustomFieldType>,
    /// 1 to 50 distinct options; required for select and multiselect, refused otherwise.
    pub select_options: Option<Vec<String>>,
    pub is_required: Option<bool>,
    /// Applied to records created without a value; must itself be a valid value.
    #[schema(value_type = Object)]
    pub default_value: Option<Value>,
    /// Display position; after the last active definition when absent.
    pub order: Option<u32>,
    pub is_active: Option<bool>,
    /// `{targetEntity, displayFormat, allowMultiple}`; `targetEntity` required for relations.
    #[schema(value_type = Object)]
    pub relation_config: Option<RelationConfig>,
    /// `{defaultCurrency, showSymbol}`.
    #[schema(value_type = Object)]
    pub currency_config: Option<CurrencyConfig>,
    /// `{min, max, pattern}`: number bounds or text length, and a regular expression for text,
    /// email and url values.
    #[schema(value_type = Object)]
    pub validation: Option<ValueRules>,
}

impl From<CreateCustomField> for DefinitionChanges {
    fn from(r: CreateCustomField) -> Self {
        Self {
            entity_type: r.entity_type,
            field_key: r.field_key,
            field_label: r.field_label,
            field_type: r.field_type,
            select_options: r.select_options,
            is_required: r.is_required,
            default_value: r.default_value.map(Some),
            order: r.order,
            is_active: r.is_active,
            relation_config: r.relation_config,
            currency_config: r.currency_config,
            validation: r.validation.map(Some),
        }
    }
}

/// Every field optional. `entityType`, `fieldKey` and `fieldType` cannot change (422);
/// `defaultValue: null` and `validation: null` clear them.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PatchCustomField {
    #[schema(value_type = String)]
    pub entity_type: Option<CustomFieldEntity>,
    pub field_key: Option<String>,
    pub field_label: Option<String>,
    #[schema(value_type = String)]
    pub field_type: Option<CustomFieldType>,
    pub select_options: Option<Vec<String>>,
    pub is_required: Option<bool>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Object)]
    pub default_value: Option<Option<Value>>,
    pub order: Option<u32>,
    pub is_active: Option<bool>,
    #[schema(value_type = Object)]
    pub relation_config: Option<RelationConfig>,
    #[schema(value_type = Object)]
    pub currency_config: Option<CurrencyConfig>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Object)]
    pub validation: Option<Option<ValueRules>>,
}

impl From<PatchCustomField> for DefinitionChanges {
    fn from(r: PatchCustomField) -> Self {
        Self {
            entity_type: r.entity_type,
            field_key: r.field_key,
            field_label: r.field_label,
            field_type: r.field_type,
            select_options: r.select_options,
            is_required: r.is_required,
            default_value: r.default_value,
            order: r.order,
            is_active: r.is_active,
            relation_config: r.relation_config,
            currency_config: r.currency_config,
            validation: r.validation,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct CustomFieldFilters {
    /// contact (default), company or deal (`opportunity` is accepted for deal).
    pub entity_type: Option<String>,
    /// Also list deactivated definitions.
    pub include_inactive: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct DeleteParams {
    /// Delete the definition and strip its values from every record of its entity type;
    /// otherwise the definition is only deactivated.
    pub delete_data: Option<bool>,
}

/// A malformed id is as unknown as a missing one.
fn field_id(s: &str) -> Result<CustomFieldId, Error> {
    s.parse().map_err(|_| Error::NotFound)
}

/// Creates a definition (owners and admins).
#[utoipa::path(
    post,
    path = "/api/v1/workspaces/{workspaceId}/custom-fields",
    tag = "custom-fields",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id")),
    request_body = CreateCustomField,
    responses(
        (status = 201, description = "The definition", body = Object),
        (status = 401, description = "Not logged in", body = Problem,
            content_type = "application/problem+json"),
        (status = 403, description = "The role may not change settings", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such workspace", body = Problem,
            content_type = "application/problem+json"),
        (status = 409, description = "The entity type already has this fieldKey", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Invalid field", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn create_custom_field(
    member: Member,
    ApiJson(req): ApiJson<CreateCustomField>,
) -> ApiResult<Response> {
    let scope = member.can(Resource::Settings, Action::Create)?;
    let def = service::create(scope, req.into()).await?;
    Ok((StatusCode::CREATED, ApiJson(def)).into_response())
}

/// Definitions of one entity type (contact by default), active ones unless `includeInactive`,
/// in display order.
#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{workspaceId}/custom-fields",
    tag = "custom-fields",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"), ListParams,
        CustomFieldFilters),
    responses(
        (status = 200, description = "`{customFields, pagination}`", body = Object),
        (status = 401, description = "Not logged in", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such workspace", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Bad filter or paging", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn list_custom_fields(
    member: Member,
    ApiQuery(p): ApiQuery<ListParams>,
    ApiQuery(f): ApiQuery<CustomFieldFilters>,
) -> ApiResult<Response> {
    let scope = member.can(Resource::Settings, Action::View)?;
    let entity = match f.entity_type.as_deref() {
        None => CustomFieldEntity::Contact,
        Some(s) => service::parse_entity(s)
            .ok_or_else(|| Error::invalid("entityType", "must be one of contact, company, deal"))?,
    };
    let filter = service::list_filter(entity, f.include_inactive.unwrap_or(false));
    let sort = p.sort(
        SORTABLE,
        &[SortKey::asc("order"), SortKey::asc("createdAt")],
    )?;
    let req = p.page_request(DEFAULT_LIMIT)?;
    let fields = p.fields()?;
    let page = scope
        .repo::<CustomFieldDefinition>()
        .page(&filter, &sort, &req)
        .await?
        .try_map(|d| to_document(&d))?;
    Ok(ApiJson(list_body("customFields", page, fields.as_deref())).into_response())
}

#[utoipa::path(
    get,
    path = "/api/v1/workspaces/{workspaceId}/custom-fields/{id}",
    tag = "custom-fields",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("id" = String, Path, description = "The definition id")),
    responses(
        (status = 200, description = "The definition", body = Object),
        (status = 401, description = "Not logged in", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such definition in this workspace", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn get_custom_field(
    member: Member,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<ApiJson<CustomFieldDefinition>> {
    let scope = member.can(Resource::Settings, Action::View)?;
    let id = field_id(&id)?;
    Ok(ApiJson(
        scope.repo::<CustomFieldDefinition>().get(id).await?,
    ))
}

#[utoipa::path(
    patch,
    path = "/api/v1/workspaces/{workspaceId}/custom-fields/{id}",
    tag = "custom-fields",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("id" = String, Path, description = "The definition id")),
    request_body = PatchCustomField,
    responses(
        (status = 200, description = "The updated definition", body = Object),
        (status = 401, description = "Not logged in", body = Problem,
            content_type = "application/problem+json"),
        (status = 403, description = "The role may not change settings", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such definition in this workspace", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Invalid field, or a change of type, entity or key",
            body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn patch_custom_field(
    member: Member,
    Path((_, id)): Path<(String, String)>,
    ApiJson(req): ApiJson<PatchCustomField>,
) -> ApiResult<ApiJson<CustomFieldDefinition>> {
    let scope = member.can(Resource::Settings, Action::Edit)?;
    let id = field_id(&id)?;
    Ok(ApiJson(service::update(scope, id, req.into()).await?))
}

/// Deactivates a definition, or with `deleteData=true` deletes it and strips its values from
/// every record of its entity type.
#[utoipa::path(
    delete,
    path = "/api/v1/workspaces/{workspaceId}/custom-fields/{id}",
    tag = "custom-fields",
    security(("bearer" = [])),
    params(("workspaceId" = String, Path, description = "The workspace id"),
        ("id" = String, Path, description = "The definition id"), DeleteParams),
    responses(
        (status = 204, description = "Deactivated or deleted"),
        (status = 401, description = "Not logged in", body = Problem,
            content_type = "application/problem+json"),
        (status = 403, description = "The role may not change settings", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such definition in this workspace", body = Problem,
            content_type = "application/problem+json"),
    ),
)]
pub async fn delete_custom_field(
    member: Member,
    Path((_, id)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<DeleteParams>,
) -> ApiResult<StatusCode> {
    let scope = member.can(Resource::Settings, Action::Delete)?;
    let id = field_id(&id)?;
    service::remove(scope, id, q.delete_data.unwrap_or(false)).await?;
    Ok(StatusCode::NO_CONTENT)
}
