//! Notifications: the in-app inbox of one user in one workspace. Every read and write here is
//! filtered on the recipient, so another user's notification is as unknown as a missing one.

use serde_json::Value;

use super::tasks::enum_filter;
use crate::entities::notification::{
    Notification, NotificationId, NotificationPriority, NotificationType, RelatedEntityType,
};
use crate::entities::opportunity::{Opportunity, OpportunityStatus};
use crate::error::{Error, Result};
use crate::id::{ObjectId, UserId};
use crate::query::{Filter, Update};
use crate::repo::WorkspaceScope;
use crate::time::Timestamp;

/// The original's limits on the two texts.
pub const TITLE_MAX: usize = 200;
pub const MESSAGE_MAX: usize = 1000;

/// What a notification says and points at.
#[derive(Debug, Clone)]
pub struct Notice {
    pub kind: NotificationType,
    pub title: String,
    pub message: String,
    pub related: Option<(RelatedEntityType, ObjectId)>,
    pub priority: NotificationPriority,
}

impl Notice {
    pub fn new(
        kind: NotificationType,
        title: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            title: title.into(),
            message: message.into(),
            related: None,
            priority: NotificationPriority::Normal,
        }
    }

    pub fn about(mut self, kind: RelatedEntityType, id: impl Into<ObjectId>) -> Self {
        self.related = Some((kind, id.into()));
        self
    }
}

/// Cut to `max` characters: generated texts quote user input (a task title may be 500
/// characters) and must not fail the write that triggered them.
fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => s[..i].to_owned(),
        None => s.to_owned(),
    }
}

/// Leaves `notice` in `user`'s inbox.
pub async fn notify(scope: &WorkspaceScope, user: UserId, notice: Notice) -> Result<Notification> {
    let mut n = Notification::new(
        scope.id(),
        user,
        notice.kind,
        clip(notice.title.trim(), TITLE_MAX),
        clip(notice.message.trim(), MESSAGE_MAX),
    );
    n.priority = notice.priority;
    if let Some((kind, id)) = notice.related {
        n.related_entity_type = Some(kind);
        n.related_entity_id = Some(id);
    }
    scope.repo::<Notification>().insert(&n).await
}

/// [`notify`] for side effects of another write: that write has happened, so a failure here is
/// logged rather than failing it.
pub async fn notify_best_effort(scope: &WorkspaceScope, user: UserId, notice: Notice) {
    if let Err(e) = notify(scope, user, notice).await {
        tracing::warn!(error = %e, "could not store a notification");
    }
}

/// Tells the deal's owner (assignee, else creator) that it was won or lost, unless they did it.
pub async fn deal_closed(
    scope: &WorkspaceScope,
    caller: UserId,
    before: OpportunityStatus,
    o: &Opportunity,
) {
    let kind = match o.status {
        _ if o.status == before => return,
        OpportunityStatus::Won => NotificationType::DealWon,
        OpportunityStatus::Lost => NotificationType::DealLost,
        _ => return,
    };
    let owner = o.assigned_to.unwrap_or(o.user_id);
    if owner == caller {
        return;
    }
    let title = match kind {
        NotificationType::DealWon => "Deal won",
        _ => "Deal lost",
    };
    let notice = Notice::new(kind, title, &o.title).about(RelatedEntityType::Opportunity, o.id);
    notify_best_effort(scope, owner, notice).await;
}

fn mine(user: UserId) -> Filter {
    Filter::eq("userId", user.to_string())
}

/// Older documents may lack `isRead`; they count as unread.
fn unread() -> Filter {
    Filter::eq("isRead", true).negate()
}

/// The filter of `GET .../notifications`: the caller's, optionally by read state and type.
pub fn list_filter(user: UserId, is_read: Option<&str>, kind: Option<&str>) -> Result<Filter> {
    let mut f = mine(user);
    match is_read.map(str::trim).filter(|s| !s.is_empty()) {
        None => {}
        Some("true") => f = f.and(Filter::eq("isRead", true)),
        Some("false") => f = f.and(unread()),
        Some(_) => return Err(Error::invalid("isRead", "must be true or false")),
    }
    if let Some(t) = enum_filter::<NotificationType>("type", kind)? {
        f = f.and(t);
    }
    Ok(f)
}

pub async fn unread_count(scope: &WorkspaceScope, user: UserId) -> Result<u64> {
    scope
        .repo::<Notification>()
        .count(&mine(user).and(unread()))
        .await
}

fn one(user: UserId, id: NotificationId) -> Filter {
    Filter::eq("_id", id.to_string()).and(mine(user))
}

/// Marks one of `user`'s notifications read; the first `readAt` is kept.
pub async fn mark_read(
    scope: &WorkspaceScope,
    user: UserId,
    id: NotificationId,
    now: Timestamp,
) -> Result<Notification> {
    let repo = scope.repo::<Notification>();
    let set = Update::new()
        .set("isRead", true)
        .set("readAt", now.to_canonical());
    if let Some(n) = repo
        .find_one_and_update(&one(user, id).and(unread()), &set, false)
        .await?
    {
        return Ok(n);
    }
    repo.find(&one(user, id), &Default::default())
        .await?
        .into_iter()
        .next()
        .ok_or(Error::NotFound)
}

/// Marks all of `user`'s unread notifications read; returns how many changed.
pub async fn mark_all_read(scope: &WorkspaceScope, user: UserId, now: Timestamp) -> Result<u64> {
    scope
        .repo::<Notification>()
        .update_many(
            &mine(user).and(unread()),
            &Update::new()
                .set("isRead", true)
                .set("readAt", Value::String(now.to_canonical())),
        )
        .await
}

pub async fn delete(scope: &WorkspaceScope, user: UserId, id: NotificationId) -> Result<()> {
    match scope
        .repo::<Notification>()
        .delete_many(&one(user, id))
        .await?
    {
        0 => Err(Error::NotFound),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clips_on_characters() {
        assert_eq!(clip("héllo", 2), "hé");
        assert_eq!(clip("hi", 5), "hi");
    }

    #[test]
    fn list_filter_checks_its_parameters() {
        let u = UserId::new();
        assert!(list_filter(u, Some("true"), Some("task_assigned")).is_ok());
        assert!(matches!(
            list_filter(u, Some("yes"), None),
            Err(Error::Invalid { field, .. }) if field == "isRead"
        ));
        assert!(matches!(
            list_filter(u, None, Some("nope")),
            Err(Error::Invalid { field, .. }) if field == "type"
        ));
    }
}
