//! The `Mailer` port: account mails (verification, password reset, one-time codes, invites).
//! Adapters render and deliver; the default one only logs.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::entities::otp::OtpPurpose;
use crate::error::Result;

/// What a mail is about. Secrets travel as data so an adapter decides how to render them and a
/// logger can leave them out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailKind {
    VerifyEmail {
        token: String,
    },
    ResetPassword {
        token: String,
    },
    Otp {
        code: String,
        purpose: OtpPurpose,
    },
    Invite {
        token: String,
        workspace_name: String,
        role: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    pub to: String,
    pub kind: MailKind,
}

impl Mail {
    pub fn subject(&self) -> String {
        match &self.kind {
            MailKind::VerifyEmail { .. } => "Verify your email".into(),
            MailKind::ResetPassword { .. } => "Reset your password".into(),
            MailKind::Otp { .. } => "Your one-time code".into(),
            MailKind::Invite { workspace_name, .. } => {
                format!("You are invited to {workspace_name}")
            }
        }
    }
}

#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait Mailer: Send + Sync {
    async fn send(&self, mail: Mail) -> Result<()>;
}

/// Logs that a mail would be sent. The secret is logged at `debug` only, so a developer can
/// follow a flow locally while production logs (`info`) never hold a usable token.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogMailer;

#[async_trait]
impl Mailer for LogMailer {
    async fn send(&self, mail: Mail) -> Result<()> {
        tracing::info!(to = %mail.to, subject = %mail.subject(), "mail not sent (log transport)");
        tracing::debug!(to = %mail.to, kind = ?mail.kind, "mail content (log transport)");
        Ok(())
    }
}

/// A shareable mailer with a `Debug` that prints nothing of the adapter.
#[derive(Clone)]
pub struct MailerHandle(pub Arc<dyn Mailer>);

impl MailerHandle {
    pub fn new(m: Arc<dyn Mailer>) -> Self {
        Self(m)
    }

    /// Sends without failing the caller: account flows answer the same whether or not the mail
    /// went out (no account enumeration through errors), so a failure is only logged.
    pub async fn send_logged(&self, mail: Mail) {
        let to = mail.to.clone();
        if let Err(e) = self.0.send(mail).await {
            tracing::warn!(error = %e, to = %to, "could not send a mail");
        }
    }
}

impl Default for MailerHandle {
    fn default() -> Self {
        Self(Arc::new(LogMailer))
    }
}

impl fmt::Debug for MailerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MailerHandle(..)")
    }
}
