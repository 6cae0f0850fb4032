//! The public waitlist: one sign-up per email. Joining twice succeeds without changing the first
//! entry, so the answer never tells whether an email was already there (and a stranger cannot
//! overwrite someone's details).

use crate::accounts::Email;
use crate::entities::waitlist::{TeamSize, Waitlist};
use crate::error::{Error, Result};
use crate::repo::Stores;
use crate::services::tasks::opt_text;

pub const TEXT_MAX: usize = 200;

#[derive(Debug, Clone, Default)]
pub struct Join {
    pub email: String,
    pub company_name: Option<String>,
    pub role: Option<String>,
    pub team_size: Option<TeamSize>,
    pub source: Option<String>,
}

/// Adds the email to the waitlist unless it is there already; both answer `Ok`.
pub async fn join(stores: &Stores, cmd: Join) -> Result<()> {
    let email = Email::parse(&cmd.email)?;
    let mut w = Waitlist::new(email.as_str());
    w.company_name = opt_text("companyName", cmd.company_name, TEXT_MAX)?;
    w.role = opt_text("role", cmd.role, TEXT_MAX)?;
    w.team_size = cmd.team_size;
    w.source = opt_text("source", cmd.source, TEXT_MAX)?;
    match stores.global::<Waitlist>().insert(&w).await {
        Ok(_) | Err(Error::Conflict { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}
