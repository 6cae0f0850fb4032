//! The answers every operation can get from the shared layers rather than from its handler
//! (authentication, roles, body and query decoding, rate limits, `Idempotency-Key`, `If-Match`),
//! added to the generated document in one pass so handlers document only their own answers and
//! the two cannot drift apart per route.

use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::header::{Header, HeaderBuilder};
use utoipa::openapi::path::{Operation, Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{Components, OpenApi, Ref, RefOr, Required};

use crate::error::PROBLEM_JSON;

/// Adds the shared responses, headers and parameters to every operation where they apply.
pub(crate) struct SharedResponses;

/// A shared response: component name, status, description, and the header it carries.
struct Shared {
    name: &'static str,
    status: &'static str,
    description: &'static str,
    header: Option<&'static str>,
}

const BAD_REQUEST: Shared = Shared {
    name: "BadRequest",
    status: "400",
    description: "Malformed JSON body (`malformed_json`), unreadable query string \
                  (`invalid_query`), or an `Idempotency-Key` that is not 1 to 255 visible ASCII \
                  characters (`invalid_idempotency_key`)",
    header: None,
};
const UNAUTHORIZED: Shared = Shared {
    name: "Unauthorized",
    status: "401",
    description: "Missing, expired or invalid credentials",
    header: Some("WWW-Authenticate"),
};
const FORBIDDEN: Shared = Shared {
    name: "Forbidden",
    status: "403",
    description: "The caller's role in the workspace does not allow this (viewer: read only; \
                  member: no deletes; admin: all but deleting the workspace and billing)",
    header: None,
};
const NOT_FOUND: Shared = Shared {
    name: "NotFound",
    status: "404",
    description: "No such record in this workspace, or no such workspace for the caller (also \
                  the answer for another workspace's ids)",
    header: None,
};
const IN_PROGRESS: Shared = Shared {
    name: "InProgress",
    status: "409",
    description: "A request with the same `Idempotency-Key` (`idempotency_in_progress`) or \
                  another conditional write to the same record (`record_busy`) is still \
                  running; retry after `Retry-After` seconds",
    header: Some("Retry-After"),
};
const PRECONDITION_FAILED: Shared = Shared {
    name: "PreconditionFailed",
    status: "412",
    description: "`If-Match` does not name the record's current `ETag` \
                  (`precondition_failed`); read it again",
    header: None,
};
const PAYLOAD_TOO_LARGE: Shared = Shared {
    name: "PayloadTooLarge",
    status: "413",
    description: "The request body is larger than the server accepts",
    header: None,
};
const UNSUPPORTED_MEDIA_TYPE: Shared = Shared {
    name: "UnsupportedMediaType",
    status: "415",
    description: "The body is not sent as `Content-Type: application/json`",
    header: None,
};
const VALIDATION_FAILED: Shared = Shared {
    name: "ValidationFailed",
    status: "422",
    description: "A field, filter or reference is invalid (`invalid`, with the field's path in \
                  `field`), or an `Idempotency-Key` was reused with another body \
                  (`idempotency_key_reused`)",
    header: None,
};
const TOO_MANY_REQUESTS: Shared = Shared {
    name: "TooManyRequests",
    status: "429",
    description: "Over a rate limit (per credential, per workspace, stricter on login and \
                  registration); retry after `Retry-After` seconds",
    header: Some("Retry-After"),
};

const ALL: [&Shared; 10] = [
    &BAD_REQUEST,
    &UNAUTHORIZED,
    &FORBIDDEN,
    &NOT_FOUND,
    &IN_PROGRESS,
    &PRECONDITION_FAILED,
    &PAYLOAD_TOO_LARGE,
    &UNSUPPORTED_MEDIA_TYPE,
    &VALIDATION_FAILED,
    &TOO_MANY_REQUESTS,
];

const IDEMPOTENCY_KEY: &str = "IdempotencyKey";
const IF_MATCH: &str = "IfMatch";
const ETAG: &str = "ETag";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Method {
    Get,
    Put,
    Post,
    Delete,
    Patch,
}

impl utoipa::Modify for SharedResponses {
    fn modify(&self, doc: &mut OpenApi) {
        declare(doc.components.get_or_insert_with(Components::default));
        for (path, item) in doc.paths.paths.iter_mut() {
            // A record's path: read by GET, written by PATCH, PUT or DELETE.
            let record = item.get.is_some()
                && (item.patch.is_some() || item.put.is_some() || item.delete.is_some());
            for (method, op) in [
                (Method::Get, &mut item.get),
                (Method::Put, &mut item.put),
                (Method::Post, &mut item.post),
                (Method::Delete, &mut item.delete),
                (Method::Patch, &mut item.patch),
            ] {
                if let Some(op) = op {
                    apply(path, method, record, op);
                }
            }
        }
    }
}

fn declare(c: &mut Components) {
    c.headers.insert(
        "Retry-After".into(),
        RefOr::T(header(Type::Integer, "Seconds to wait before retrying")),
    );
    c.headers.insert(
        "WWW-Authenticate".into(),
        RefOr::T(header(Type::String, "`Bearer`")),
    );
    c.headers.insert(
        ETAG.into(),
        RefOr::T(header(
            Type::String,
            "The record's version (strong, quoted); send it back as `If-Match` to write only \
             if nobody changed the record since",
        )),
    );
    for s in ALL {
        let mut r = ResponseBuilder::new().description(s.description).content(
            PROBLEM_JSON,
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        );
        if let Some(h) = s.header {
            r = r.header_ref(h, header_ref(h));
        }
        c.responses.insert(s.name.into(), RefOr::T(r.build()));
    }
    c.parameters.insert(
        IDEMPOTENCY_KEY.into(),
        RefOr::T(header_param(
            "Idempotency-Key",
            "Makes a retry safe: the first answer to this key (per caller, method and path) is \
             replayed for 24 hours (`Idempotent-Replayed: true`); the same key with another body \
             answers 422",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(255)),
        )),
    );
    c.parameters.insert(
        IF_MATCH.into(),
        RefOr::T(header_param(
            "If-Match",
            "Write only if the record's `ETag` (from a GET or a previous write) is one of these, \
             or `*`; otherwise 412",
            ObjectBuilder::new().schema_type(Type::String),
        )),
    );
}

fn header(t: Type, description: &str) -> Header {
    HeaderBuilder::new()
        .schema(Some(ObjectBuilder::new().schema_type(t)))
        .description(Some(description))
        .build()
}

fn header_ref(name: &str) -> Ref {
    Ref::new(format!("#/components/headers/{name}"))
}

fn header_param(name: &str, description: &str, schema: ObjectBuilder) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(description))
        .schema(Some(schema))
        .build()
}

/// The rules, each mirroring the layer that answers so.
fn apply(path: &str, method: Method, record: bool, op: &mut Operation) {
    let params: Vec<&Parameter> = op
        .parameters
        .iter()
        .flatten()
        .filter_map(|p| match p {
            RefOr::T(p) => Some(p),
            RefOr::Ref(_) => None,
        })
        .collect();
    let has_path_params = path.contains('{');
    let has_query = params.iter().any(|p| p.parameter_in == ParameterIn::Query);
    let has_body = op.request_body.is_some();
    let secured = op
        .security
        .as_ref()
        .is_some_and(|s| s.iter().any(|r| *r != Default::default()));
    // `Member` guards every workspace route: a role too weak for the action is 403.
    let member_route = secured && path.starts_with("/api/v1/workspaces/{workspaceId}");
    // `ratelimit::layer` counts everything under /api/v1 but the document itself.
    let rate_limited = path.starts_with("/api/v1/") && path != "/api/v1/openapi.json";
    // `etag::layer`: a write with `If-Match` first reads the record with a GET of its path.
    let if_match = record && matches!(method, Method::Put | Method::Patch | Method::Delete);

    let mut add: Vec<&Shared> = Vec::new();
    if has_body || has_query || method == Method::Post {
        add.push(&BAD_REQUEST);
    }
    if secured {
        add.push(&UNAUTHORIZED);
    }
    if member_route {
        add.push(&FORBIDDEN);
    }
    if has_path_params {
        add.push(&NOT_FOUND);
    }
    if method == Method::Post || if_match {
        add.push(&IN_PROGRESS);
    }
    if if_match {
        add.push(&PRECONDITION_FAILED);
    }
    if has_body {
        // Every body route checks its content type (JSON, multipart or CSV).
        add.push(&PAYLOAD_TOO_LARGE);
        add.push(&UNSUPPORTED_MEDIA_TYPE);
    }
    if has_body || has_query || method == Method::Post {
        add.push(&VALIDATION_FAILED);
    }
    if rate_limited {
        add.push(&TOO_MANY_REQUESTS);
    }
    for s in add {
        // The handler's own description of a status is more precise; keep it, with the header
        // the layer adds.
        match op.responses.responses.get_mut(s.status) {
            None => {
                op.responses
                    .responses
                    .insert(s.status.into(), RefOr::Ref(Ref::from_response_name(s.name)));
            }
            Some(RefOr::T(own)) => {
                if let Some(h) = s.header {
                    own.headers
                        .entry(h.into())
                        .or_insert_with(|| RefOr::Ref(header_ref(h)));
                }
            }
            Some(RefOr::Ref(_)) => {}
        }
    }

    let mut headers = Vec::new();
    if method == Method::Post {
        headers.push(IDEMPOTENCY_KEY);
    }
    if if_match {
        headers.push(IF_MATCH);
    }
    for h in headers {
        op.parameters
            .get_or_insert_with(Vec::new)
            .push(RefOr::Ref(Ref::new(format!("#/components/parameters/{h}"))));
    }

    // `etag::layer` tags a 200 JSON record answer to GET, PATCH and PUT.
    if record
        && matches!(method, Method::Get | Method::Patch | Method::Put)
        && let Some(RefOr::T(ok)) = op.responses.responses.get_mut("200")
    {
        tag(ok);
    }
}

fn tag(ok: &mut Response) {
    if ok.content.keys().any(|k| k.starts_with("application/json")) {
        ok.headers
            .entry(ETAG.into())
            .or_insert_with(|| RefOr::Ref(header_ref(ETAG)));
    }
}
