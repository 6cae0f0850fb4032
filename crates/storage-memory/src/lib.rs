//! The in-memory reference adapter: crm_core's engine run directly over maps, behind one lock.
//! Every other adapter is held to what this one does (see `storage-contract`).

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use parking_lot::RwLock;
use serde_json::Value;

use crm_core::engine::{
    self, Document, apply_update, cmp_docs, matches, normalize_filter, upsert_seed, validate_update,
};
use crm_core::query::effective_sort;
use crm_core::schema::ID_FIELD;
use crm_core::store::{AppliedMigration, WriteOp};
use crm_core::{
    DocumentStore, EntityDef, Error, Filter, FindOptions, GroupBy, GroupRow, ObjectId, Result,
    StoreAdmin, Tenant, Update, WorkspaceId,
};

/// One tenant's records, ordered by id so iteration (and `_id` tie-breaks) are deterministic.
type Records = BTreeMap<ObjectId, Document>;

#[derive(Debug, Default)]
struct Collection {
    tenants: HashMap<Option<WorkspaceId>, Records>,
    /// Which tenant holds each id: `_id` is unique across a whole collection, as in MongoDB.
    owners: HashMap<ObjectId, Option<WorkspaceId>>,
    /// Unique-key index: (tenant, key name, canonical values) → record, so checks are O(1).
    unique: HashMap<(Option<WorkspaceId>, &'static str, String), ObjectId>,
}

/// The values of a unique key in a form where equal values (as `engine::values_equal` sees them)
/// give equal text; `None` when the key does not apply to the document.
fn unique_canon(def: &EntityDef, doc: &Document, fields: &[&'static str]) -> Option<String> {
    let vals = engine::unique_values(def, doc, fields)?;
    let mut out = String::new();
    for v in vals {
        match v {
            Value::Number(n) => match (n.as_i64(), n.as_f64()) {
                (Some(i), _) => out.push_str(&format!("n{i}")),
                (None, Some(f)) if f.fract() == 0.0 && f.abs() < 9.0e15 => {
                    out.push_str(&format!("n{}", f as i64));
                }
                (None, f) => out.push_str(&format!("f{}", f.unwrap_or(f64::NAN).to_bits())),
            },
            Value::String(s) => {
                out.push('s');
                out.push_str(s);
            }
            other => out.push_str(&other.to_string()),
        }
        out.push('\u{1f}');
    }
    Some(out)
}

impl Collection {
    fn records(&self, ws: Option<WorkspaceId>) -> Option<&Records> {
        self.tenants.get(&ws)
    }

    fn index(
        &mut self,
        def: &EntityDef,
        ws: Option<WorkspaceId>,
        id: ObjectId,
        doc: &Document,
        add: bool,
    ) {
        for uk in def.unique {
            if let Some(c) = unique_canon(def, doc, uk.fields) {
                if add {
                    self.unique.insert((ws, uk.name, c), id);
                } else if self.unique.get(&(ws, uk.name, c.clone())) == Some(&id) {
                    self.unique.remove(&(ws, uk.name, c));
                }
            }
        }
    }

    fn insert(&mut self, def: &EntityDef, ws: Option<WorkspaceId>, id: ObjectId, doc: Document) {
        self.owners.insert(id, ws);
        if let Some(old) = self.tenants.get(&ws).and_then(|r| r.get(&id)).cloned() {
            self.index(def, ws, id, &old, false);
        }
        self.index(def, ws, id, &doc, true);
        self.tenants.entry(ws).or_default().insert(id, doc);
    }

    fn remove(&mut self, def: &EntityDef, ws: Option<WorkspaceId>, id: ObjectId) -> bool {
        let gone = self.tenants.get_mut(&ws).and_then(|r| r.remove(&id));
        match gone {
            Some(old) => {
                self.owners.remove(&id);
                self.index(def, ws, id, &old, false);
                true
            }
            None => false,
        }
    }

    /// The key a new or replaced record would clash on. `changed` holds records about to be
    /// written in the same operation (checked in their new form, against each other too).
    fn unique_conflict(
        &self,
        def: &EntityDef,
        ws: Option<WorkspaceId>,
        changed: &BTreeMap<ObjectId, Document>,
    ) -> Option<&'static str> {
        for uk in def.unique {
            let mut seen: HashMap<String, ObjectId> = HashMap::new();
            for (id, doc) in changed {
                let Some(c) = unique_canon(def, doc, uk.fields) else {
                    continue;
                };
                if let Some(holder) = self.unique.get(&(ws, uk.name, c.clone()))
                    && holder != id
                    && !changed.contains_key(holder)
                {
                    return Some(uk.name);
                }
                if seen.insert(c, *id).is_some() {
                    return Some(uk.name);
                }
            }
        }
        None
    }
}

#[derive(Debug, Default)]
struct Inner {
    collections: HashMap<&'static str, Collection>,
    migrations: Vec<AppliedMigration>,
}

impl Inner {
    fn records(&self, def: &EntityDef, ws: Option<WorkspaceId>) -> Option<&Records> {
        self.collections.get(def.collection)?.records(ws)
    }

    fn collection(&mut self, def: &EntityDef) -> &mut Collection {
        self.collections.entry(def.collection).or_default()
    }
}

/// A `DocumentStore` + `StoreAdmin` that keeps everything in process memory.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: RwLock<Inner>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }
}

fn doc_id(doc: &Document) -> Result<ObjectId> {
    match doc.get(ID_FIELD) {
        Some(Value::String(s)) => ObjectId::parse_str(s)
            .map_err(|_| Error::invalid(ID_FIELD, "must be 24 hexadecimal characters")),
        _ => Err(Error::invalid(
            ID_FIELD,
            "must be 24 hexadecimal characters",
        )),
    }
}

/// Keeps or makes the `_id` and stamps the tenant, refusing a document of another tenant.
fn prepare_new(
    def: &EntityDef,
    ws: Option<WorkspaceId>,
    mut doc: Document,
) -> Result<(ObjectId, Document)> {
    let id = if doc.contains_key(ID_FIELD) {
        doc_id(&doc)?
    } else {
        ObjectId::new()
    };
    doc.insert(ID_FIELD.into(), Value::String(id.to_hex()));
    if let (Some(field), Some(ws)) = (def.tenant_field(), ws) {
        let same = match doc.get(field) {
            None => true,
            Some(Value::String(s)) => ObjectId::parse_str(s).is_ok_and(|v| v == ws.object_id()),
            Some(_) => false,
        };
        if !same {
            return Err(Error::invalid(field, "belongs to another workspace"));
        }
        doc.insert(field.into(), Value::String(ws.to_string()));
    }
    Ok((id, doc))
}

fn check_unique(
    def: &EntityDef,
    coll: &Collection,
    ws: Option<WorkspaceId>,
    changed: &BTreeMap<ObjectId, Document>,
) -> Result<()> {
    match coll.unique_conflict(def, ws, changed) {
        Some(key) => Err(Error::conflict(key)),
        None => Ok(()),
    }
}

fn check_one(
    def: &EntityDef,
    coll: &Collection,
    ws: Option<WorkspaceId>,
    id: ObjectId,
    doc: &Document,
) -> Result<()> {
    check_unique(def, coll, ws, &BTreeMap::from([(id, doc.clone())]))
}

/// Applies an update to every matching record of one tenant, all or nothing.
fn update_matching(
    def: &EntityDef,
    coll: &Collection,
    ws: Option<WorkspaceId>,
    filter: &Filter,
    update: &Update,
) -> Result<BTreeMap<ObjectId, Document>> {
    let mut changed = BTreeMap::new();
    for (id, doc) in coll.records(ws).into_iter().flat_map(|r| r.iter()) {
        if matches(def, doc, filter) {
            let mut next = doc.clone();
            apply_update(def, &mut next, update, false)?;
            changed.insert(*id, next);
        }
    }
    check_unique(def, coll, ws, &changed)?;
    Ok(changed)
}

fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// A batch op with its tenant checked, its new document prepared and its guard normalised, so
/// nothing that can fail without looking at the data is left for under the lock.
enum Prepared {
    Insert {
        def: &'static EntityDef,
        ws: Option<WorkspaceId>,
        id: ObjectId,
        doc: Document,
    },
    Update {
        def: &'static EntityDef,
        ws: Option<WorkspaceId>,
        id: ObjectId,
        update: Update,
        guard: Filter,
    },
    Delete {
        def: &'static EntityDef,
        ws: Option<WorkspaceId>,
        id: ObjectId,
        guard: Filter,
    },
}

fn prepare_op(op: WriteOp) -> Result<Prepared> {
    Ok(match op {
        WriteOp::Insert { t, def, doc } => {
            let ws = t.check(def)?;
            let (id, doc) = prepare_new(def, ws, doc)?;
            Prepared::Insert { def, ws, id, doc }
        }
        WriteOp::Update {
            t,
            def,
            id,
            update,
            guard,
        } => {
            let ws = t.check(def)?;
            validate_update(def, &update)?;
            Prepared::Update {
                def,
                ws,
                id,
                update,
                guard: normalize_filter(def, &guard)?,
            }
        }
        WriteOp::Delete { t, def, id, guard } => Prepared::Delete {
            def,
            ws: t.check(def)?,
            id,
            guard: normalize_filter(def, &guard)?,
        },
    })
}

/// What a batch changed, to put back: the record's previous state (`None`: it was new).
type Undo = Vec<(
    &'static EntityDef,
    Option<WorkspaceId>,
    ObjectId,
    Option<Document>,
)>;

/// The record an update or delete of a batch names, when it still matches its guard.
fn guarded<'a>(
    coll: &'a Collection,
    def: &EntityDef,
    ws: Option<WorkspaceId>,
    id: ObjectId,
    guard: &Filter,
) -> Result<&'a Document> {
    let doc = coll
        .records(ws)
        .and_then(|r| r.get(&id))
        .ok_or(Error::NotFound)?;
    if matches(def, doc, guard) {
        Ok(doc)
    } else {
        Err(Error::Stale)
    }
}

fn apply_op(inner: &mut Inner, op: Prepared, undo: &mut Undo) -> Result<Option<Document>> {
    match op {
        Prepared::Insert { def, ws, id, doc } => {
            let coll = inner.collection(def);
            if coll.owners.contains_key(&id) {
                return Err(Error::conflict(ID_FIELD));
            }
            check_one(def, coll, ws, id, &doc)?;
            undo.push((def, ws, id, None));
            coll.insert(def, ws, id, doc.clone());
            Ok(Some(doc))
        }
        Prepared::Update {
            def,
            ws,
            id,
            update,
            guard,
        } => {
            let coll = inner.collection(def);
            let before = guarded(coll, def, ws, id, &guard)?.clone();
            let mut next = before.clone();
            apply_update(def, &mut next, &update, false)?;
            check_one(def, coll, ws, id, &next)?;
            undo.push((def, ws, id, Some(before)));
            coll.insert(def, ws, id, next.clone());
            Ok(Some(next))
        }
        Prepared::Delete { def, ws, id, guard } => {
            let coll = inner.collection(def);
            let before = guarded(coll, def, ws, id, &guard)?.clone();
            undo.push((def, ws, id, Some(before)));
            coll.remove(def, ws, id);
            Ok(None)
        }
    }
}

/// Puts back what a failed batch changed, latest first, so the lock is released on the state
/// the batch found.
fn roll_back(inner: &mut Inner, undo: Undo) {
    for (def, ws, id, before) in undo.into_iter().rev() {
        let coll = inner.collection(def);
        match before {
            Some(doc) => coll.insert(def, ws, id, doc),
            None => {
                coll.remove(def, ws, id);
            }
        }
    }
}

#[async_trait]
impl DocumentStore for MemoryStore {
    async fn insert(&self, t: Tenant, def: &'static EntityDef, doc: Document) -> Result<Document> {
        let ws = t.check(def)?;
        let (id, doc) = prepare_new(def, ws, doc)?;
        let mut inner = self.inner.write();
        let coll = inner.collection(def);
        if coll.owners.contains_key(&id) {
            return Err(Error::conflict(ID_FIELD));
        }
        check_one(def, coll, ws, id, &doc)?;
        coll.insert(def, ws, id, doc.clone());
        Ok(doc)
    }

    async fn insert_many(
        &self,
        t: Tenant,
        def: &'static EntityDef,
        docs: Vec<Document>,
    ) -> Result<u64> {
        let ws = t.check(def)?;
        let n = docs.len();
        let mut batch = BTreeMap::new();
        for doc in docs {
            let (id, doc) = prepare_new(def, ws, doc)?;
            if batch.insert(id, doc).is_some() {
                return Err(Error::conflict(ID_FIELD));
            }
        }
        let mut inner = self.inner.write();
        let coll = inner.collection(def);
        if batch.keys().any(|id| coll.owners.contains_key(id)) {
            return Err(Error::conflict(ID_FIELD));
        }
        check_unique(def, coll, ws, &batch)?;
        for (id, doc) in batch {
            coll.insert(def, ws, id, doc);
        }
        Ok(count(n))
    }

    async fn get(&self, t: Tenant, def: &'static EntityDef, id: ObjectId) -> Result<Document> {
        let ws = t.check(def)?;
        let inner = self.inner.read();
        inner
            .records(def, ws)
            .and_then(|r| r.get(&id))
            .cloned()
            .ok_or(Error::NotFound)
    }

    async fn find(
        &self,
        t: Tenant,
        def: &'static EntityDef,
        filter: &Filter,
        opts: &FindOptions,
    ) -> Result<Vec<Document>> {
        let ws = t.check(def)?;
        let filter = normalize_filter(def, filter)?;
        let sort = effective_sort(&opts.sort);
        let inner = self.inner.read();
        let mut hits: Vec<&Document> = inner
            .records(def, ws)
            .into_iter()
            .flat_map(|r| r.values())
            .filter(|d| matches(def, d, &filter))
            .collect();
        hits.sort_by(|a, b| cmp_docs(a, b, &sort));
        let skip = usize::try_from(opts.skip).unwrap_or(usize::MAX);
        let limit = opts
            .limit
            .map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX));
        Ok(hits.into_iter().skip(skip).take(limit).cloned().collect())
    }

    async fn count(&self, t: Tenant, def: &'static EntityDef, filter: &Filter) -> Result<u64> {
        let ws = t.check(def)?;
        let filter = normalize_filter(def, filter)?;
        let inner = self.inner.read();
        let n = inner
            .records(def, ws)
            .into_iter()
            .flat_map(|r| r.values())
            .filter(|d| matches(def, d, &filter))
            .count();
        Ok(count(n))
    }

    async fn update_one(
        &self,
        t: Tenant,
        def: &'static EntityDef,
        id: ObjectId,
        update: &Update,
    ) -> Result<Document> {
        let ws = t.check(def)?;
        validate_update(def, update)?;
        let mut inner = self.inner.write();
        let coll = inner.collection(def);
        let mut next = coll
            .records(ws)
            .and_then(|r| r.get(&id))
            .cloned()
            .ok_or(Error::NotFound)?;
        apply_update(def, &mut next, update, false)?;
        check_one(def, coll, ws, id, &next)?;
        coll.insert(def, ws, id, next.clone());
        Ok(next)
    }

    async fn update_many(
        &self,
        t: Tenant,
        def: &'static EntityDef,
        filter: &Filter,
        update: &Update,
    ) -> Result<u64> {
        let ws = t.check(def)?;
        let filter = normalize_filter(def, filter)?;
        validate_update(def, update)?;
        let mut inner = self.inner.write();
        let coll = inner.collection(def);
        let changed = update_matching(def, coll, ws, &filter, update)?;
        let n = changed.len();
        for (id, doc) in changed {
            coll.insert(def, ws, id, doc);
        }
        Ok(count(n))
    }

    async fn find_one_and_update(
        &self,
        t: Tenant,
        def: &'static EntityDef,
        filter: &Filter,
        update: &Update,
        upsert: bool,
    ) -> Result<Option<Document>> {
        let ws = t.check(def)?;
        let filter = normalize_filter(def, filter)?;
        validate_update(def, update)?;
        let mut inner = self.inner.write();
        let coll = inner.collection(def);
        let hit = coll
            .records(ws)
            .into_iter()
            .flat_map(|r| r.iter())
            .find(|(_, d)| matches(def, d, &filter))
            .map(|(id, d)| (*id, d.clone()));
        let (id, next) = match hit {
            Some((id, mut doc)) => {
                apply_update(def, &mut doc, update, false)?;
                (id, doc)
            }
            None if upsert => {
                let mut seed = upsert_seed(&filter)?;
                apply_update(def, &mut seed, update, true)?;
                let (id, doc) = prepare_new(def, ws, seed)?;
                if coll.owners.contains_key(&id) {
                    return Err(Error::conflict(ID_FIELD));
                }
                (id, doc)
            }
            None => return Ok(None),
        };
        check_one(def, coll, ws, id, &next)?;
        coll.insert(def, ws, id, next.clone());
        Ok(Some(next))
    }

    async fn delete_one(&self, t: Tenant, def: &'static EntityDef, id: ObjectId) -> Result<()> {
        let ws = t.check(def)?;
        let mut inner = self.inner.write();
        if inner.collection(def).remove(def, ws, id) {
            Ok(())
        } else {
            Err(Error::NotFound)
        }
    }

    async fn delete_many(
        &self,
        t: Tenant,
        def: &'static EntityDef,
        filter: &Filter,
    ) -> Result<u64> {
        let ws = t.check(def)?;
        let filter = normalize_filter(def, filter)?;
        let mut inner = self.inner.write();
        let coll = inner.collection(def);
        let doomed: Vec<ObjectId> = coll
            .records(ws)
            .into_iter()
            .flat_map(|r| r.iter())
            .filter(|(_, d)| matches(def, d, &filter))
            .map(|(id, _)| *id)
            .collect();
        for id in &doomed {
            coll.remove(def, ws, *id);
        }
        Ok(count(doomed.len()))
    }

    /// Under the one write lock, so no reader sees part of a batch; each op is checked against
    /// the state the earlier ops left, and a failure puts every earlier op back.
    async fn write_batch(&self, ops: Vec<WriteOp>) -> Result<Vec<Option<Document>>> {
        let prepared = ops
            .into_iter()
            .map(prepare_op)
            .collect::<Result<Vec<_>>>()?;
        let mut inner = self.inner.write();
        let mut undo = Undo::with_capacity(prepared.len());
        let mut out = Vec::with_capacity(prepared.len());
        for op in prepared {
            match apply_op(&mut inner, op, &mut undo) {
                Ok(doc) => out.push(doc),
                Err(e) => {
                    roll_back(&mut inner, undo);
                    return Err(e);
                }
            }
        }
        Ok(out)
    }

    async fn aggregate(
        &self,
        t: Tenant,
        def: &'static EntityDef,
        group: &GroupBy,
    ) -> Result<Vec<GroupRow>> {
        let ws = t.check(def)?;
        let filter = normalize_filter(def, &group.filter)?;
        let inner = self.inner.read();
        let docs = inner
            .records(def, ws)
            .into_iter()
            .flat_map(|r| r.values())
            .filter(|d| matches(def, d, &filter));
        Ok(engine::group(docs, group))
    }
}

#[async_trait]
impl StoreAdmin for MemoryStore {
    async fn ping(&self) -> Result<()> {
        Ok(())
    }

    async fn ensure_schema(&self, defs: &[&'static EntityDef]) -> Result<()> {
        for def in defs {
            def.validate()?;
        }
        let mut inner = self.inner.write();
        for def in defs {
            inner.collection(def);
        }
        Ok(())
    }

    async fn applied_migrations(&self) -> Result<Vec<AppliedMigration>> {
        Ok(self.inner.read().migrations.clone())
    }

    async fn record_migration(&self, m: &AppliedMigration) -> Result<()> {
        let mut inner = self.inner.write();
        inner.migrations.retain(|a| a.version != m.version);
        inner.migrations.push(m.clone());
        inner.migrations.sort_by_key(|a| a.version);
        Ok(())
    }

    async fn forget_migration(&self, version: u32) -> Result<()> {
        self.inner
            .write()
            .migrations
            .retain(|a| a.version != version);
        Ok(())
    }

    async fn update_all_tenants(
        &self,
        def: &'static EntityDef,
        filter: &Filter,
        update: &Update,
    ) -> Result<u64> {
        let filter = normalize_filter(def, filter)?;
        validate_update(def, update)?;
        let mut inner = self.inner.write();
        let coll = inner.collection(def);
        // Compute every tenant's changes before writing any, so a failure changes nothing.
        let mut all = Vec::new();
        let tenants: Vec<Option<WorkspaceId>> = coll.tenants.keys().copied().collect();
        for ws in tenants {
            all.push((ws, update_matching(def, coll, ws, &filter, update)?));
        }
        let mut n = 0;
        for (ws, changed) in all {
            n += changed.len();
            for (id, doc) in changed {
                coll.insert(def, ws, id, doc);
            }
        }
        Ok(count(n))
    }

    fn backend(&self) -> &'static str {
        "memory"
    }
}
