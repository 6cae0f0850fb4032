//! Accounts: password policy and hashing, normalised emails, refresh-token sessions, shared
//! settings, and the workspace role table.

pub mod api_keys;
pub mod email;
pub mod invites;
pub mod mail;
pub mod membership;
pub mod otp;
pub mod password;
pub mod permissions;
pub mod session;
pub mod settings;
pub mod tokens;

use crate::schema::EntityDef;

pub use email::Email;
pub use mail::{LogMailer, Mail, MailKind, Mailer, MailerHandle};
pub use membership::Membership;
pub use password::{Password, PasswordCheck, hash_password, verify_dummy, verify_password};
pub use permissions::{Action, Resource, Role, allows};
pub use session::{IssuedRefresh, RefreshRejected, Session, Sessions};
pub use settings::{Setting, jwt_secret};

/// The entities this module declares, for schema creation.
pub fn entities() -> Vec<&'static EntityDef> {
    vec![
        &session::SESSION,
        &settings::SETTING,
        &membership::MEMBERSHIP,
        &otp::OTP_SEND,
    ]
}

#[cfg(test)]
mod tests {
    #[test]
    fn declarations_are_valid() {
        for d in super::entities() {
            d.validate().unwrap();
        }
    }
}
