//! Sales engagement: campaigns and their enrollments, email templates, sequences, forms and
//! their public submissions, landing pages, chatbots, lead magnets, voice drops, meeting
//! schedulers and deliverability tests (ADR 0022).
//!
//! Declared through `crm_core::schema::EntityDef` like the core entities. Time-based rules take
//! a `Clock`; delays and retries are jobs of `automation::jobs::JobQueue`.

pub mod campaign;
pub mod content;
pub mod engage;
pub mod forms;
pub mod render;
pub mod sequence;
pub mod submit;
pub mod templates;
pub mod text;
pub mod window;

use crm_core::EntityDef;

/// This crate's declared entities, for `clianta_catalog::all_entities`.
pub fn entities() -> Vec<&'static EntityDef> {
    vec![
        &campaign::CAMPAIGN,
        &campaign::CAMPAIGN_ENROLLMENT,
        &templates::EMAIL_TEMPLATE,
        &sequence::SEQUENCE,
        &sequence::MULTI_CHANNEL_SEQUENCE,
        &forms::FORM,
        &forms::FORM_SUBMISSION,
        &forms::FORM_TEMPLATE,
        &forms::PUBLIC_FORM,
        &forms::LEAD_FORM,
        &content::LANDING_PAGE,
        &content::CHATBOT,
        &content::LEAD_MAGNET,
        &content::VOICE_DROP,
        &content::MEETING_SCHEDULER,
        &content::DELIVERABILITY_TEST,
    ]
}

#[cfg(test)]
mod tests {
    #[test]
    fn declarations_are_valid_and_collections_distinct() {
        let all = super::entities();
        let mut names: Vec<&str> = all.iter().map(|d| d.collection).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all.len());
        for d in all {
            d.validate().unwrap();
        }
    }
}
