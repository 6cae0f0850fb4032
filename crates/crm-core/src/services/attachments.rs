//! Attachments: a file on a deal, contact, company or ticket of the workspace. The metadata is a
//! document, the bytes a blob keyed by the attachment's id.
//!
//! Write order, so that a listed attachment always has its bytes: upload writes the blob, then
//! the record, and deletes the blob again when the record write fails; delete removes the record,
//! then the blob. A crash between the two steps can leave a blob without a record (never a record
//! without a blob); such a blob is unreachable and only costs disk.

use super::tasks::{ensure_exists, id_filter, opt_text};
use crate::blob::BlobStore;
use crate::entities::attachment::{
    Attachment, AttachmentCategory, AttachmentId, AttachmentParent, MAX_FILE_SIZE,
};
use crate::entities::company::Company;
use crate::entities::contact::Contact;
use crate::entities::ticket::Ticket;
use crate::error::{Error, Result};
use crate::id::UserId;
use crate::query::Filter;
use crate::repo::WorkspaceScope;

pub const FILE_NAME_MAX: usize = 255;
pub const DESCRIPTION_MAX: usize = 500;

/// The original's accepted types: PDF, Office, JPEG/PNG/GIF, plain text and CSV.
pub const ALLOWED_TYPES: &[&str] = &[
    "application/pdf",
    "application/msword",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.ms-excel",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.ms-powerpoint",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "image/jpeg",
    "image/png",
    "image/gif",
    "text/plain",
    "text/csv",
];

/// An upload, as the HTTP layer read it.
#[derive(Debug, Clone)]
pub struct NewAttachment {
    pub parent: AttachmentParent,
    pub file_name: String,
    /// The part's content type, as sent.
    pub file_type: String,
    pub category: Option<AttachmentCategory>,
    pub description: Option<String>,
}

/// The parent named by the upload's four optional reference fields: exactly one must be set.
pub fn parent_of(
    opportunity: Option<&str>,
    contact: Option<&str>,
    company: Option<&str>,
    ticket: Option<&str>,
) -> Result<AttachmentParent> {
    fn id<T: std::str::FromStr>(field: &str, raw: &str) -> Result<T> {
        raw.trim()
            .parse()
            .map_err(|_| Error::invalid(field, "is not a valid id"))
    }
    let given: Vec<(&str, &str)> = [
        ("opportunityId", opportunity),
        ("contactId", contact),
        ("companyId", company),
        ("ticketId", ticket),
    ]
    .into_iter()
    .filter_map(|(f, v)| v.filter(|v| !v.trim().is_empty()).map(|v| (f, v)))
    .collect();
    match given.as_slice() {
        [(field, raw)] => Ok(match *field {
            "opportunityId" => AttachmentParent::Opportunity(id(field, raw)?),
            "contactId" => AttachmentParent::Contact(id(field, raw)?),
            "companyId" => AttachmentParent::Company(id(field, raw)?),
            _ => AttachmentParent::Ticket(id(field, raw)?),
        }),
        _ => Err(Error::invalid(
            "opportunityId",
            "name exactly one of opportunityId, contactId, companyId, ticketId",
        )),
    }
}

/// The last path segment of a client file name, without control characters or quotes (it is
/// echoed in `Content-Disposition`), at most [`FILE_NAME_MAX`] characters.
pub fn sanitize_file_name(raw: &str) -> Result<String> {
    let base = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let clean: String = base
        .chars()
        .filter(|c| !c.is_control() && !matches!(c, '"' | ';'))
        .collect();
    let clean = clean.trim().trim_start_matches('.').trim();
    if clean.is_empty() {
        return Err(Error::invalid("file", "the file needs a name"));
    }
    if clean.chars().count() > FILE_NAME_MAX {
        return Err(Error::invalid(
            "file",
            format!("the file name must be at most {FILE_NAME_MAX} characters"),
        ));
    }
    Ok(clean.to_owned())
}

/// The media type without parameters, lower case, if it is one of [`ALLOWED_TYPES`].
pub fn file_type(raw: &str) -> Result<String> {
    let t = raw
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if ALLOWED_TYPES.contains(&t.as_str()) {
        Ok(t)
    } else {
        Err(Error::invalid(
            "file",
            format!("files of type `{t}` are not accepted"),
        ))
    }
}

async fn ensure_parent(scope: &WorkspaceScope, parent: AttachmentParent) -> Result<()> {
    match parent {
        AttachmentParent::Opportunity(id) => {
            // A deal in the trash takes no new files.
            super::opportunities::get(scope, id)
                .await
                .map(drop)
                .map_err(|e| match e {
                    Error::NotFound => {
                        Error::invalid("opportunityId", "does not exist in this workspace")
                    }
                    e => e,
                })
        }
        AttachmentParent::Contact(id) => {
            ensure_exists::<Contact>(scope, id.into(), "contactId").await
        }
        AttachmentParent::Company(id) => {
            ensure_exists::<Company>(scope, id.into(), "companyId").await
        }
        AttachmentParent::Ticket(id) => ensure_exists::<Ticket>(scope, id.into(), "ticketId").await,
    }
}

/// Stores the bytes, then the record (see the module comment for the order).
pub async fn create(
    scope: &WorkspaceScope,
    blobs: &dyn BlobStore,
    uploader: UserId,
    cmd: NewAttachment,
    bytes: Vec<u8>,
) -> Result<Attachment> {
    let size = bytes.len() as u64;
    if size > MAX_FILE_SIZE {
        return Err(Error::invalid(
            "file",
            format!("files may be at most {MAX_FILE_SIZE} bytes"),
        ));
    }
    let name = sanitize_file_name(&cmd.file_name)?;
    let kind = file_type(&cmd.file_type)?;
    let description = opt_text("description", cmd.description, DESCRIPTION_MAX)?;
    ensure_parent(scope, cmd.parent).await?;

    let id = AttachmentId::new();
    let url = format!("/api/v1/workspaces/{}/attachments/{id}/content", scope.id());
    let mut a = Attachment::on(scope.id(), cmd.parent, uploader, name, kind, size, url);
    a.id = id;
    a.category = cmd.category.unwrap_or_default();
    a.description = description;

    blobs.put(scope.id(), id.object_id(), bytes).await?;
    match scope.repo::<Attachment>().insert(&a).await {
        Ok(a) => Ok(a),
        Err(e) => {
            if let Err(d) = blobs.delete(scope.id(), id.object_id()).await {
                tracing::warn!(error = %d, attachment = %id, "orphaned blob after a failed insert");
            }
            Err(e)
        }
    }
}

/// The list filter: by parent (any of the four reference fields).
pub fn list_filter(
    opportunity: Option<&str>,
    contact: Option<&str>,
    company: Option<&str>,
    ticket: Option<&str>,
) -> Result<Filter> {
    let mut f = Filter::all();
    for x in [
        id_filter("opportunityId", opportunity)?,
        id_filter("contactId", contact)?,
        id_filter("companyId", company)?,
        id_filter("ticketId", ticket)?,
    ]
    .into_iter()
    .flatten()
    {
        f = f.and(x);
    }
    Ok(f)
}

/// The record and its bytes.
pub async fn content(
    scope: &WorkspaceScope,
    blobs: &dyn BlobStore,
    id: AttachmentId,
) -> Result<(Attachment, Vec<u8>)> {
    let a = scope.repo::<Attachment>().get(id).await?;
    let bytes = blobs.get(scope.id(), id.object_id()).await?;
    Ok((a, bytes))
}

/// Removes the record, then the bytes (see the module comment for the order).
pub async fn delete(scope: &WorkspaceScope, blobs: &dyn BlobStore, id: AttachmentId) -> Result<()> {
    scope.repo::<Attachment>().delete(id).await?;
    if let Err(e) = blobs.delete(scope.id(), id.object_id()).await {
        tracing::warn!(error = %e, attachment = %id, "orphaned blob after a delete");
    }
    Ok(())
}

/// Deletes every attachment of a record about to be purged (`field` is `contactId`,
/// `companyId`, `opportunityId` or `ticketId`), records before bytes as in [`delete`]. Runs
/// before the parent's own purge, so an interruption leaves the parent and never an attachment
/// pointing at a missing record.
pub async fn purge_parent(
    scope: &WorkspaceScope,
    blobs: &dyn BlobStore,
    field: &'static str,
    parent: &str,
) -> Result<u64> {
    let repo = scope.repo::<Attachment>();
    let filter = Filter::eq(field, parent);
    let batch = crate::query::FindOptions {
        limit: Some(500),
        ..Default::default()
    };
    let mut removed = 0;
    loop {
        let found = repo.find(&filter, &batch).await?;
        if found.is_empty() {
            return Ok(removed);
        }
        for a in found {
            delete(scope, blobs, a.id).await?;
            removed += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_lose_paths_and_header_breakers() {
        assert_eq!(
            sanitize_file_name("../../etc/passwd").ok().as_deref(),
            Some("passwd")
        );
        assert_eq!(
            sanitize_file_name("C:\\x\\a \"b\";c.pdf").ok().as_deref(),
            Some("a bc.pdf")
        );
        assert_eq!(
            sanitize_file_name("..hidden\r\n").ok().as_deref(),
            Some("hidden")
        );
        assert!(sanitize_file_name("dir/").is_err());
        assert!(sanitize_file_name(&"a".repeat(256)).is_err());
    }

    #[test]
    fn types_are_the_originals() {
        assert_eq!(
            file_type("Image/PNG; charset=binary").ok().as_deref(),
            Some("image/png")
        );
        assert!(file_type("text/html").is_err());
        assert!(file_type("").is_err());
    }

    #[test]
    fn exactly_one_parent() {
        let id = crate::id::ObjectId::new().to_hex();
        assert!(matches!(
            parent_of(None, Some(&id), None, None),
            Ok(AttachmentParent::Contact(_))
        ));
        assert!(parent_of(Some(&id), Some(&id), None, None).is_err());
        assert!(parent_of(None, None, None, Some(" ")).is_err());
        assert!(matches!(
            parent_of(None, None, Some("zz"), None),
            Err(Error::Invalid { field, .. }) if field == "companyId"
        ));
    }
}
