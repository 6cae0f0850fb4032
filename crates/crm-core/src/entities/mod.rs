//! Declared entities. Each file holds the typed struct, its [`EntityDef`] and its enums.

pub mod company;
pub mod contact;
pub mod user;

use crate::schema::EntityDef;

/// Every declared entity, for schema creation and the contract suite.
pub fn all() -> Vec<&'static EntityDef> {
    vec![&contact::CONTACT, &company::COMPANY, &user::USER]
}

/// Address as the original embeds it on contacts and companies.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Address {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub street: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zip_code: Option<String>,
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_declaration_is_valid_and_collections_unique() {
        let all = super::all();
        for d in &all {
            d.validate().unwrap();
        }
        let mut names: Vec<_> = all.iter().map(|d| d.collection).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all.len());
    }
}
