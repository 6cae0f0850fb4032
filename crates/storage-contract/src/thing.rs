//! The entity the contract suite owns: every field kind, a unique key and text search, so the
//! cases do not depend on how the product entities evolve.

use crm_core::schema::{Dir::*, EntityDef, FieldKind::*, IndexDef, Tenancy, UniqueKey, f};

pub static THING: EntityDef = EntityDef {
    name: "ContractThing",
    collection: "contract_things",
    tenancy: Tenancy::Workspace {
        field: "workspaceId",
    },
    timestamps: false,
    fields: &[
        f("name", Text).required(),
        f("code", Text),
        f("score", Number),
        f("rank", Number),
        f("counter", Number),
        f("active", Bool),
        f("tags", Texts),
        f("ownerId", Id),
        f("dueAt", Date),
        f("note", Text),
        f("address", Object),
        f("address.city", Text),
        f("customFields", Any),
    ],
    unique: &[UniqueKey {
        name: "code",
        fields: &["code"],
    }],
    indexes: &[
        IndexDef::on(&[("score", Desc)]),
        IndexDef::on(&[("name", Asc)]),
    ],
    text: &["name", "note"],
};

/// Every entity the suite writes to: the product's declarations and [`THING`].
pub fn all_defs() -> Vec<&'static EntityDef> {
    let mut defs = clianta_catalog::all_entities();
    defs.push(&THING);
    defs
}
