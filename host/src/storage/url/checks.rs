//! The rules a stage URL's bucket, container and key follow, and the object keys a
//! stage file can have ([`check_object_key`]).

use super::{ObjectKeyError, UrlError};

/// `BUCKET/key…` of a raw URL: the key as written (no percent-decoding).
pub(super) fn raw_bucket_and_key(rest: &str) -> Result<(&str, &str), UrlError> {
    if rest.contains('?') {
        return Err(UrlError::Query);
    }
    let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(UrlError::NoBucketOrContainer);
    }
    if let Some((user, _)) = bucket.split_once('@')
        && user.contains(':')
    {
        return Err(UrlError::Credentials);
    }
    check_key(key)?;
    Ok((bucket, key))
}

/// Splits `container/rest` at the first `/`.
pub(super) fn split_first_segment(path: &str) -> (&str, &str) {
    path.split_once('/').unwrap_or((path, ""))
}

/// Rejects keys object stores (and object_store's paths) cannot hold: empty segments
/// (`a//b`, a leading `/`) and `.`/`..` segments.
pub(super) fn check_key(key: &str) -> Result<(), UrlError> {
    let trimmed = key.strip_suffix('/').unwrap_or(key);
    if trimmed.is_empty() {
        return Ok(());
    }
    for segment in trimmed.split('/') {
        if segment.is_empty() {
            return Err(UrlError::EmptySegment);
        }
        if segment == "." || segment == ".." {
            return Err(UrlError::DotSegment);
        }
    }
    Ok(())
}

/// Why no stage file can have the object key `key`, if none can: stagepush reads objects
/// through paths that cannot hold an empty key, an empty segment (`a//b`, or a leading
/// `/`, which S3 allows but which would be read as another key without it), a `.` or `..`
/// segment, a control character (NUL, …), or a trailing `/` (a folder).
pub fn check_object_key(key: &str) -> Result<(), ObjectKeyError> {
    if key.is_empty() {
        return Err(ObjectKeyError::Empty);
    }
    if let Some(c) = key.chars().find(|c| c.is_control()) {
        return Err(ObjectKeyError::ControlCharacter { code: u32::from(c) });
    }
    if key.starts_with('/') {
        return Err(ObjectKeyError::LeadingSlash);
    }
    if key.ends_with('/') {
        return Err(ObjectKeyError::Folder);
    }
    for segment in key.split('/') {
        if segment.is_empty() {
            return Err(ObjectKeyError::EmptySegment);
        }
        if segment == "." || segment == ".." {
            return Err(ObjectKeyError::DotSegment(segment.to_owned()));
        }
    }
    Ok(())
}

/// S3 and GCS bucket names: letters, digits, `.`, `-`, `_` (legacy S3 buckets may have
/// upper-case letters and underscores; the server has the last word).
pub(super) fn check_bucket(bucket: &str, what: &'static str) -> Result<(), UrlError> {
    let valid = !bucket.is_empty()
        && bucket.len() <= 255
        && bucket
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        && bucket.as_bytes()[0].is_ascii_alphanumeric();
    if valid {
        Ok(())
    } else {
        Err(UrlError::InvalidBucket {
            bucket: bucket.to_owned(),
            what,
        })
    }
}

/// Azure container names: 3 to 63 lower-case letters, digits and hyphens, or `$root`,
/// `$web`, `$logs`.
pub(super) fn check_container(container: &str) -> Result<(), UrlError> {
    let valid = matches!(container, "$root" | "$web" | "$logs")
        || ((3..=63).contains(&container.len())
            && container
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !container.starts_with('-'));
    if valid {
        Ok(())
    } else {
        Err(UrlError::InvalidContainer(container.to_owned()))
    }
}
