//! CSV import and export of contacts and companies through HTTP: per-row reports, duplicate
//! modes, dry runs, malformed files, export filters and layout, the round trip, the role table
//! and workspace isolation.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers panic on failure by design"
)]

mod common;

use axum::body::{Body, to_bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use common::{Account, Resp, TestApp, World, add_member, world};
use crm_core::accounts::Role;
use serde_json::{Value, json};
use tower::ServiceExt;

fn base(ws: &str, what: &str) -> String {
    format!("/api/v1/workspaces/{ws}/{what}")
}

/// A CSV (or other) body with its content type; the answer parsed as JSON.
async fn post_csv(t: &TestApp, uri: &str, tok: Option<&str>, ct: &str, csv: &str) -> Resp {
    let mut b = Request::builder()
        .method(Method::POST)
        .uri(uri)
        .header(header::CONTENT_TYPE, ct);
    if let Some(tok) = tok {
        b = b.header(header::AUTHORIZATION, format!("Bearer {tok}"));
    }
    t.send(b.body(Body::from(csv.to_owned())).unwrap()).await
}

async fn import(w: &World, what: &str, query: &str, csv: &str) -> Resp {
    import_as(&w.t, &w.ws, w.tok(), what, query, csv).await
}

async fn import_as(
    t: &TestApp,
    ws: &str,
    tok: Option<&str>,
    what: &str,
    query: &str,
    csv: &str,
) -> Resp {
    let uri = format!("{}/import{query}", base(ws, what));
    post_csv(t, &uri, tok, "text/csv", csv).await
}

/// A GET answered with text: (status, headers, body).
async fn get_text(t: &TestApp, uri: &str, tok: Option<&str>) -> (StatusCode, HeaderMap, String) {
    let mut b = Request::builder().method(Method::GET).uri(uri);
    if let Some(tok) = tok {
        b = b.header(header::AUTHORIZATION, format!("Bearer {tok}"));
    }
    let res = t
        .app
        .clone()
        .oneshot(b.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = to_bytes(res.into_body(), usize::MAX).await.unwrap();
    (status, headers, String::from_utf8(bytes.to_vec()).unwrap())
}

async fn export(t: &TestApp, ws: &str, tok: Option<&str>, what: &str, query: &str) -> String {
    let (s, h, body) = get_text(t, &format!("{}/export{query}", base(ws, what)), tok).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(h[header::CONTENT_TYPE], "text/csv; charset=utf-8");
    body
}

/// Rows of a CSV text as cells (parsed with the csv crate the server uses).
fn parse(csv: &str) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(csv.as_bytes())
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect()
}

async fn list(w: &World, what: &str, query: &str) -> Vec<Value> {
    let r =
        w.t.get(&format!("{}{query}", base(&w.ws, what)), w.tok())
            .await;
    r.ok(200)[what].as_array().unwrap().clone()
}

async fn count(w: &World, what: &str) -> usize {
    list(w, what, "?limit=500").await.len()
}

async fn contact(w: &World, body: Value) -> Value {
    w.t.post(&base(&w.ws, "contacts"), w.tok(), body)
        .await
        .ok(201)
        .clone()
}

async fn custom_field(w: &World, body: Value) {
    w.t.post(&base(&w.ws, "custom-fields"), w.tok(), body)
        .await
        .ok(201);
}

fn statuses(report: &Value) -> Vec<(u64, String)> {
    report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["row"].as_u64().unwrap(),
                r["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn row(report: &Value, line: u64) -> &Value {
    report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["row"] == line)
        .unwrap_or_else(|| panic!("no row {line} in {report}"))
}

#[tokio::test]
async fn imports_contacts_with_headers_matched_by_name() {
    let w = world().await;
    custom_field(
        &w,
        json!({"entityType": "contact", "fieldKey": "plan", "fieldLabel": "Plan",
               "fieldType": "select", "selectOptions": ["free", "pro"]}),
    )
    .await;
    custom_field(
        &w,
        json!({"entityType": "contact", "fieldKey": "seats", "fieldLabel": "Seats",
               "fieldType": "number"}),
    )
    .await;
    let csv = "First Name,last_name,E-mail,Tags,City,custom.plan,Seats,Lifecycle Stage\n\
               Ada,Lovelace,ADA@Example.com,vip; math ,London,pro,12,mql\n\
               \"Grace \"\"Amazing\"\"\",Hopper,,navy,,free,3.5,\n";
    let r = import(&w, "contacts", "", csv).await;
    let rep = r.ok(200);
    assert_eq!(
        (
            rep["total"].as_u64(),
            rep["created"].as_u64(),
            rep["failed"].as_u64()
        ),
        (Some(2), Some(2), Some(0)),
        "{rep}"
    );
    assert_eq!(rep["dryRun"], false);
    assert_eq!(
        statuses(rep),
        [(2, "created".into()), (3, "created".into())]
    );
    let ada_id = row(rep, 2)["id"].as_str().unwrap().to_owned();

    let ada =
        w.t.get(&format!("{}/{ada_id}", base(&w.ws, "contacts")), w.tok())
            .await;
    let ada = ada.ok(200);
    assert_eq!(ada["firstName"], "Ada");
    assert_eq!(ada["email"], "ada@example.com");
    assert_eq!(ada["tags"], json!(["vip", "math"]));
    assert_eq!(ada["address"], json!({"city": "London"}));
    assert_eq!(ada["lifecycleStage"], "mql");
    assert_eq!(ada["customFields"], json!({"plan": "pro", "seats": 12}));
    let grace = list(&w, "contacts", "?search=hopper").await;
    assert_eq!(grace[0]["firstName"], "Grace \"Amazing\"");
    assert_eq!(grace[0]["customFields"]["seats"], 3.5);
    assert!(grace[0].get("email").is_none());
}

#[tokio::test]
async fn every_invalid_row_is_reported_with_its_line_and_field() {
    let w = world().await;
    custom_field(
        &w,
        json!({"entityType": "contact", "fieldKey": "seats", "fieldLabel": "Seats",
               "fieldType": "number", "validation": {"min": 1}}),
    )
    .await;
    let csv = "firstName,email,status,custom.seats,custom.nope,notes\n\
               Ok,ok@example.com,lead,2,,\"two\nlines\"\n\
               ,nofirst@example.com,,,,\n\
               Bad,not-an-email,,,,\n\
               Bad,,vip,,,\n\
               Bad,,,zero,,\n\
               Bad,,,0,,\n\
               Bad,,,,x,\n";
    let rep = import(&w, "contacts", "", csv).await.ok(200).clone();
    assert_eq!(rep["created"], 1, "{rep}");
    assert_eq!(rep["failed"], 6);
    let expect = [
        (4, "firstName"),
        (5, "email"),
        (6, "status"),
        (7, "customFields.seats"),
        (8, "customFields.seats"),
        (9, "customFields.nope"),
    ];
    for (line, field) in expect {
        let r = row(&rep, line);
        assert_eq!(r["status"], "failed", "{r}");
        assert_eq!(r["errors"][0]["field"], field, "{r}");
        assert_eq!(r["errors"][0]["code"], "invalid", "{r}");
        assert!(r.get("id").is_none());
    }
    // The quoted cell spans lines 2 and 3, so the next row starts on line 4.
    assert_eq!(row(&rep, 2)["status"], "created");
    assert_eq!(count(&w, "contacts").await, 1);
}

#[tokio::test]
async fn skip_mode_skips_stored_and_repeated_duplicates() {
    let w = world().await;
    let old = contact(&w, json!({"firstName": "Old", "email": "dup@example.com"})).await;
    let csv = "firstName,email,phone\n\
               New,DUP@example.com,1\n\
               Fresh,fresh@example.com,2\n\
               Again,fresh@example.com,3\n";
    let rep = import(&w, "contacts", "?onDuplicate=skip", csv)
        .await
        .ok(200)
        .clone();
    assert_eq!(
        statuses(&rep),
        [
            (2, "skipped".into()),
            (3, "created".into()),
            (4, "skipped".into())
        ]
    );
    assert_eq!(
        (rep["skipped"].as_u64(), rep["created"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(row(&rep, 2)["id"], old["_id"]);
    assert_eq!(row(&rep, 2)["errors"][0]["code"], "duplicate");
    assert_eq!(row(&rep, 2)["errors"][0]["field"], "email");
    assert!(
        row(&rep, 4)["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("line 3")
    );
    let stored = list(&w, "contacts", "?search=dup").await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["firstName"], "Old");
    assert!(stored[0].get("phone").is_none());
    assert_eq!(count(&w, "contacts").await, 2);
}

#[tokio::test]
async fn fail_mode_rejects_the_whole_file_and_writes_nothing() {
    let w = world().await;
    contact(&w, json!({"firstName": "Old", "email": "dup@example.com"})).await;
    let dup = "firstName,email\nA,a@example.com\nB,dup@example.com\n";
    let r = import(&w, "contacts", "?onDuplicate=fail", dup).await;
    r.problem(422, "import_rejected");
    assert_eq!(
        statuses(&r.body),
        [(2, "valid".into()), (3, "failed".into())]
    );
    assert_eq!(r.body["created"], 0);
    assert_eq!(r.body["failed"], 1);
    assert_eq!(row(&r.body, 3)["errors"][0]["code"], "duplicate");

    let invalid = "firstName,email\nA,a@example.com\nB,broken\n";
    let r = import(&w, "contacts", "?onDuplicate=fail", invalid).await;
    r.problem(422, "import_rejected");
    assert_eq!(row(&r.body, 3)["errors"][0]["field"], "email");
    assert_eq!(count(&w, "contacts").await, 1);

    let clean = "firstName,email\nA,a@example.com\nB,b@example.com\n";
    let rep = import(&w, "contacts", "?onDuplicate=fail", clean).await;
    assert_eq!(rep.ok(200)["created"], 2);
    assert_eq!(count(&w, "contacts").await, 3);
}

#[tokio::test]
async fn update_mode_patches_the_existing_record() {
    let w = world().await;
    let old = contact(
        &w,
        json!({"firstName": "Old", "email": "dup@example.com", "phone": "1", "tags": ["a"]}),
    )
    .await;
    let id = old["_id"].as_str().unwrap();
    // No first name: an update needs only what changes.
    let csv = "email,phone,lifecycleStage\n\
               dup@example.com,2,sql\n\
               dup@example.com,3,\n\
               new@example.com,4,\n";
    let rep = import(&w, "contacts", "?onDuplicate=update", csv)
        .await
        .ok(200)
        .clone();
    assert_eq!(row(&rep, 2)["status"], "updated", "{rep}");
    assert_eq!(row(&rep, 2)["id"], id);
    // A second row for the same record, and a new row without the required first name.
    assert_eq!(row(&rep, 3)["status"], "failed");
    assert_eq!(row(&rep, 3)["errors"][0]["code"], "duplicate");
    assert_eq!(row(&rep, 4)["errors"][0]["field"], "firstName");
    let got =
        w.t.get(&format!("{}/{id}", base(&w.ws, "contacts")), w.tok())
            .await;
    let got = got.ok(200);
    assert_eq!(got["phone"], "2");
    assert_eq!(got["firstName"], "Old");
    assert_eq!(got["tags"], json!(["a"]));
    assert_eq!(got["lifecycleStage"], "sql");
    assert_eq!(got["previousLifecycleStage"], "lead");

    let bad = "email,status\ndup@example.com,vip\n";
    let rep = import(&w, "contacts", "?onDuplicate=update", bad).await;
    assert_eq!(row(rep.ok(200), 2)["errors"][0]["field"], "status");
}

#[tokio::test]
async fn a_dry_run_reports_and_writes_nothing() {
    let w = world().await;
    contact(&w, json!({"firstName": "Old", "email": "dup@example.com"})).await;
    let csv = "firstName,email\nA,a@example.com\nB,dup@example.com\nC,bad\n";
    for mode in ["skip", "update", "fail"] {
        let r = import(
            &w,
            "contacts",
            &format!("?dryRun=true&onDuplicate={mode}"),
            csv,
        )
        .await;
        if mode == "fail" {
            r.problem(422, "import_rejected");
            continue;
        }
        let rep = r.ok(200);
        assert_eq!(rep["dryRun"], true);
        assert_eq!(rep["created"], 1, "{rep}");
        assert_eq!(rep["failed"], 1);
        let dup = if mode == "skip" { "skipped" } else { "updated" };
        assert_eq!(row(rep, 3)["status"], dup);
    }
    let stored = list(&w, "contacts", "").await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["firstName"], "Old");
}

#[tokio::test]
async fn malformed_files_answer_400_with_the_line() {
    let w = world().await;
    let ragged = "firstName,email\nA,a@example.com\nB,b@example.com,extra\n";
    let r = import(&w, "contacts", "", ragged).await;
    r.problem(400, "malformed_csv");
    assert_eq!(r.body["line"], 3);
    assert!(r.body["detail"].as_str().unwrap().contains("line 3"));

    let quoting = "firstName,email\nA,a@example.com\n\"B,b@example.com\n";
    // An unterminated quote swallows the rest of the file into one ragged record.
    import(&w, "contacts", "", quoting)
        .await
        .problem(400, "malformed_csv");

    let bytes = post_csv(
        &w.t,
        &format!("{}/import", base(&w.ws, "contacts")),
        w.tok(),
        "text/csv",
        "",
    )
    .await;
    bytes.problem(400, "malformed_csv");

    let json = post_csv(
        &w.t,
        &format!("{}/import", base(&w.ws, "contacts")),
        w.tok(),
        "application/json",
        "{}",
    )
    .await;
    json.problem(415, "unsupported_media_type");
    import(&w, "contacts", "?onDuplicate=maybe", "firstName\nA\n")
        .await
        .problem(400, "invalid_query");
    assert_eq!(count(&w, "contacts").await, 0);
}

#[tokio::test]
async fn mapping_renames_and_ignores_columns() {
    let w = world().await;
    let csv = "Nom,Courriel,Junk,Ville\nMarie,marie@example.fr,zzz,Paris\n";
    let mapping = json!({"Nom": "firstName", "Courriel": "email", "Junk": null,
                         "Ville": "address.city"})
    .to_string();
    let q = format!(
        "?mapping={}",
        form_urlencoded::byte_serialize(mapping.as_bytes()).collect::<String>()
    );
    let rep = import(&w, "contacts", &q, csv).await.ok(200).clone();
    assert_eq!(rep["created"], 1, "{rep}");
    let c = &list(&w, "contacts", "").await[0];
    assert_eq!(c["firstName"], "Marie");
    assert_eq!(c["email"], "marie@example.fr");
    assert_eq!(c["address"]["city"], "Paris");
    assert_eq!(c["customFields"], json!({}));

    // Without the mapping, an unknown column is an unknown custom field on every row using it.
    let rep = import(&w, "contacts", "", "firstName,Junk\nA,zzz\nB,\n")
        .await
        .ok(200)
        .clone();
    assert_eq!(row(&rep, 2)["errors"][0]["field"], "customFields.Junk");
    assert_eq!(row(&rep, 3)["status"], "created");

    for bad in [
        json!({"Missing": "firstName"}),
        json!({"Nom": "frstName"}),
        json!({"Nom": 3}),
    ] {
        let q = format!(
            "?mapping={}",
            form_urlencoded::byte_serialize(bad.to_string().as_bytes()).collect::<String>()
        );
        let r = import(&w, "contacts", &q, csv).await;
        assert!(matches!(r.status.as_u16(), 400 | 422), "{bad}: {}", r.body);
    }
    let two = "First Name,firstName\nA,B\n";
    import(&w, "contacts", "", two)
        .await
        .problem(422, "invalid");
}

#[tokio::test]
async fn row_and_size_limits() {
    let w = world().await;
    let mut many = String::from("firstName\n");
    for i in 0..=10_000 {
        many.push_str(&format!("c{i}\n"));
    }
    let r = import(&w, "contacts", "", &many).await;
    r.problem(422, "invalid");
    assert_eq!(r.body["field"], "file");
    let huge = format!("firstName,notes\nA,{}\n", "x".repeat(1024 * 1024 + 10));
    import(&w, "contacts", "", &huge)
        .await
        .problem(413, "payload_too_large");
    assert_eq!(count(&w, "contacts").await, 0);
}

#[tokio::test]
async fn export_writes_the_filtered_contacts_in_a_stable_layout() {
    let w = world().await;
    custom_field(
        &w,
        json!({"entityType": "contact", "fieldKey": "plan", "fieldLabel": "Plan",
               "fieldType": "multiselect", "selectOptions": ["a", "b"]}),
    )
    .await;
    contact(
        &w,
        json!({"firstName": "=HYPERLINK(\"x\")", "lastName": "Quote, \"Q\"", "status": "customer",
               "tags": ["t1", "t2"], "customFields": {"plan": ["a", "b"]},
               "address": {"city": "Oslo"}}),
    )
    .await;
    contact(
        &w,
        json!({"firstName": "Lead", "status": "lead", "phone": "+47 1"}),
    )
    .await;
    let (s, h, text) = get_text(
        &w.t,
        &format!("{}/export?status=customer", base(&w.ws, "contacts")),
        w.tok(),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{text}");
    let disposition = h[header::CONTENT_DISPOSITION].to_str().unwrap();
    assert!(
        disposition.starts_with("attachment; filename=\"contacts-")
            && disposition.ends_with(".csv\""),
        "{disposition}"
    );
    assert!(text.contains("\r\n"), "RFC 4180 line ends");
    let rows = parse(&text);
    assert_eq!(rows.len(), 2, "{text}");
    let header = &rows[0];
    assert_eq!(header[0], "_id");
    assert_eq!(&header[1..4], ["firstName", "lastName", "email"]);
    assert_eq!(header.last().unwrap(), "custom.plan");
    let at = |name: &str| header.iter().position(|h| h == name).unwrap();
    let r = &rows[1];
    assert_eq!(r[at("firstName")], "'=HYPERLINK(\"x\")");
    assert_eq!(r[at("lastName")], "Quote, \"Q\"");
    assert_eq!(r[at("tags")], "t1;t2");
    assert_eq!(r[at("custom.plan")], "a;b");
    assert_eq!(r[at("address.city")], "Oslo");
    assert!(r[at("createdAt")].ends_with('Z'));

    let leads = parse(&export(&w.t, &w.ws, w.tok(), "contacts", "?status=lead").await);
    assert_eq!(leads[1][at("phone")], "'+47 1");
    let tagged = parse(&export(&w.t, &w.ws, w.tok(), "contacts", "?tags=t2").await);
    assert_eq!(tagged.len(), 2);
    let searched = parse(&export(&w.t, &w.ws, w.tok(), "contacts", "?search=lead").await);
    assert_eq!(searched.len(), 2);
    let all = parse(&export(&w.t, &w.ws, w.tok(), "contacts", "").await);
    assert_eq!(all.len(), 3);
    let (s, _, body) = get_text(
        &w.t,
        &format!("{}/export?status=vip", base(&w.ws, "contacts")),
        w.tok(),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
}

#[tokio::test]
async fn export_pages_through_many_records_in_order() {
    let w = world().await;
    let mut csv = String::from("firstName,email\n");
    for i in 0..1_203 {
        csv.push_str(&format!("c{i:04},c{i}@example.com\n"));
    }
    assert_eq!(
        import(&w, "contacts", "", &csv).await.ok(200)["created"],
        1_203
    );
    let rows = parse(&export(&w.t, &w.ws, w.tok(), "contacts", "").await);
    assert_eq!(rows.len(), 1_204);
    let mut ids: Vec<&String> = rows[1..].iter().map(|r| &r[0]).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 1_203, "each record once");
}

#[tokio::test]
async fn export_then_import_reproduces_the_records_elsewhere() {
    let w = world().await;
    let other = w.t.workspace(&w.owner, "Elsewhere").await;
    for ws in [&w.ws, &other] {
        w.t.post(
            &base(ws, "custom-fields"),
            w.tok(),
            json!({"entityType": "contact", "fieldKey": "plan", "fieldLabel": "Plan",
                   "fieldType": "multiselect", "selectOptions": ["a", "b"]}),
        )
        .await
        .ok(201);
        w.t.post(
            &base(ws, "custom-fields"),
            w.tok(),
            json!({"entityType": "contact", "fieldKey": "since", "fieldLabel": "Since",
                   "fieldType": "date"}),
        )
        .await
        .ok(201);
    }
    contact(
        &w,
        json!({"firstName": "-Ada", "lastName": "Lovelace, \"Countess\"",
               "email": "ada@example.com", "phone": "+44 1", "tags": ["x", "y z"],
               "status": "customer", "lifecycleStage": "sql", "website": "ada.org",
               "address": {"street": "1 Main\nSt", "zipCode": "N1"},
               "notes": "line one\nline \"two\"",
               "customFields": {"plan": ["b", "a"], "since": "2024-02-03T04:05:06Z"}}),
    )
    .await;
    contact(&w, json!({"firstName": "Bob"})).await;
    let text = export(&w.t, &w.ws, w.tok(), "contacts", "").await;
    let rep = import_as(&w.t, &other, w.tok(), "contacts", "", &text)
        .await
        .ok(200)
        .clone();
    assert_eq!(rep["created"], 2, "{rep}");

    let strip = |mut v: Value| {
        let m = v.as_object_mut().unwrap();
        for k in ["_id", "workspaceId", "createdAt", "updatedAt"] {
            m.remove(k);
        }
        v
    };
    let read = |ws: String| {
        let t = &w.t;
        let tok = w.tok().map(str::to_owned);
        async move {
            let r = t
                .get(
                    &format!("{}?sort=firstName", base(&ws, "contacts")),
                    tok.as_deref(),
                )
                .await;
            r.ok(200)["contacts"]
                .as_array()
                .unwrap()
                .iter()
                .cloned()
                .map(strip)
                .collect::<Vec<_>>()
        }
    };
    let (a, b) = (read(w.ws.clone()).await, read(other.clone()).await);
    assert_eq!(a, b);
    assert_eq!(a[0]["firstName"], "-Ada");
}

#[tokio::test]
async fn companies_import_dedupes_by_name_and_domain_and_exports() {
    let w = world().await;
    w.t.post(
        &base(&w.ws, "companies"),
        w.tok(),
        json!({"name": "Acme", "website": "https://www.acme.com/about"}),
    )
    .await
    .ok(201);
    let csv = "Name,Website,Employee Count,Annual Revenue,Is Target Account,Company Size,Tags\n\
               ACME ,,,,,,\n\
               Acme Europe,acme.com,,,,,\n\
               Globex,globex.io,250,1000000.5,yes,201-500,big;eu\n\
               globex,,,,,,\n\
               Initech,,-3,,,,\n";
    let rep = import(&w, "companies", "", csv).await.ok(200).clone();
    assert_eq!(
        statuses(&rep),
        [
            (2, "skipped".into()),
            (3, "skipped".into()),
            (4, "created".into()),
            (5, "skipped".into()),
            (6, "failed".into())
        ],
        "{rep}"
    );
    assert_eq!(row(&rep, 3)["errors"][0]["field"], "website");
    assert_eq!(row(&rep, 6)["errors"][0]["field"], "employeeCount");
    let globex = &list(&w, "companies", "?search=globex").await[0];
    assert_eq!(globex["employeeCount"], 250);
    assert_eq!(globex["annualRevenue"], 1000000.5);
    assert_eq!(globex["isTargetAccount"], true);
    assert_eq!(globex["companySize"], "201-500");
    assert_eq!(globex["tags"], json!(["big", "eu"]));

    let rep = import(
        &w,
        "companies",
        "?onDuplicate=update",
        "name,industry\nacme,Anvils\n",
    )
    .await
    .ok(200)
    .clone();
    assert_eq!(rep["updated"], 1, "{rep}");
    let acme = &list(&w, "companies", "?search=acme").await[0];
    assert_eq!(acme["industry"], "Anvils");
    // An update sets every field the row gives.
    assert_eq!(acme["name"], "acme");

    let rows = parse(&export(&w.t, &w.ws, w.tok(), "companies", "?industry=anv").await);
    assert_eq!(rows.len(), 2);
    let at = |name: &str| rows[0].iter().position(|h| h == name).unwrap();
    assert_eq!(rows[1][at("name")], "acme");
    assert_eq!(rows[1][at("website")], "https://www.acme.com/about");
}

#[tokio::test]
async fn the_role_table_applies() {
    let w = world().await;
    let viewer = w.t.register("viewer@example.com").await;
    let member = w.t.register("member@example.com").await;
    let admin = w.t.register("admin@example.com").await;
    let stranger = w.t.register("stranger@example.com").await;
    add_member(&w.t, &w.ws, &viewer, Role::Viewer).await;
    add_member(&w.t, &w.ws, &member, Role::Member).await;
    add_member(&w.t, &w.ws, &admin, Role::Admin).await;
    let tok = |a: &Account| Some(a.access.clone());
    for what in ["contacts", "companies"] {
        let first = if what == "contacts" {
            "firstName"
        } else {
            "name"
        };
        let csv = |n: &str| format!("{first}\n{n}\n");
        let v = import_as(&w.t, &w.ws, tok(&viewer).as_deref(), what, "", &csv("V")).await;
        v.problem(403, "forbidden");
        let v = import_as(
            &w.t,
            &w.ws,
            tok(&viewer).as_deref(),
            what,
            "?dryRun=true",
            &csv("V"),
        )
        .await;
        v.problem(403, "forbidden");
        for (who, n) in [(&member, "M"), (&admin, "A")] {
            let r = import_as(&w.t, &w.ws, tok(who).as_deref(), what, "", &csv(n)).await;
            assert_eq!(r.ok(200)["created"], 1);
            let r = import_as(
                &w.t,
                &w.ws,
                tok(who).as_deref(),
                what,
                "?onDuplicate=update",
                &csv(&format!("{n}2")),
            )
            .await;
            r.ok(200);
        }
        let r = import_as(&w.t, &w.ws, tok(&stranger).as_deref(), what, "", &csv("S")).await;
        r.problem(404, "not_found");
        let r = import_as(&w.t, &w.ws, None, what, "", &csv("S")).await;
        r.problem(401, "unauthenticated");

        for who in [&viewer, &member, &admin] {
            let rows = parse(&export(&w.t, &w.ws, tok(who).as_deref(), what, "").await);
            assert_eq!(rows.len(), 5, "{what}");
        }
        let uri = format!("{}/export", base(&w.ws, what));
        let (s, _, _) = get_text(&w.t, &uri, tok(&stranger).as_deref()).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, _, _) = get_text(&w.t, &uri, None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn other_workspaces_stay_out_of_imports_and_exports() {
    let w = world().await;
    let b_owner = w.t.register("b@example.com").await;
    let b_ws = w.t.workspace(&b_owner, "B Corp").await;
    let b_tok = Some(b_owner.access.as_str());
    let a_company =
        w.t.post(&base(&w.ws, "companies"), w.tok(), json!({"name": "A Co"}))
            .await
            .ok(201)["_id"]
            .as_str()
            .unwrap()
            .to_owned();
    contact(
        &w,
        json!({"firstName": "Secret", "email": "secret@example.com", "companyId": a_company}),
    )
    .await;

    // B's export never holds A's rows, whatever the filter names.
    let rows = parse(&export(&w.t, &b_ws, b_tok, "contacts", "").await);
    assert_eq!(rows.len(), 1);
    let rows = parse(
        &export(
            &w.t,
            &b_ws,
            b_tok,
            "contacts",
            &format!("?companyId={a_company}"),
        )
        .await,
    );
    assert_eq!(rows.len(), 1);
    let (s, _, _) = get_text(&w.t, &format!("{}/export", base(&w.ws, "contacts")), b_tok).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // A's ids as references in B's import are unknown records.
    let csv = format!(
        "firstName,companyId,assignedTo\nX,{a_company},\nY,,{}\n",
        w.owner.id
    );
    let rep = import_as(&w.t, &b_ws, b_tok, "contacts", "", &csv)
        .await
        .ok(200)
        .clone();
    assert_eq!(row(&rep, 2)["errors"][0]["field"], "companyId", "{rep}");
    assert_eq!(row(&rep, 3)["errors"][0]["field"], "assignedTo");
    let csv = format!("name,parentCompanyId\nChild,{a_company}\n");
    let rep = import_as(&w.t, &b_ws, b_tok, "companies", "", &csv)
        .await
        .ok(200)
        .clone();
    assert_eq!(row(&rep, 2)["errors"][0]["field"], "parentCompanyId");
    // A's email is no duplicate in B.
    let rep = import_as(
        &w.t,
        &b_ws,
        b_tok,
        "contacts",
        "?onDuplicate=update",
        "firstName,email\nMine,secret@example.com\n",
    )
    .await
    .ok(200)
    .clone();
    assert_eq!(rep["created"], 1, "{rep}");
    let a = list(&w, "contacts", "").await;
    assert_eq!(a[0]["firstName"], "Secret");
    // And A cannot import into B.
    import_as(&w.t, &b_ws, w.tok(), "contacts", "", "firstName\nZ\n")
        .await
        .problem(404, "not_found");
}
