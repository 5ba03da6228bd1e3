//! `run --event FILE|-`: the stage files a storage notification names.

use stagepush::job::Job;
use stagepush::source::StageFile;
use stagepush::trigger::UnusableKey;

/// names whose key cannot be read (to record as pending errors, shown by `status`).
pub(super) fn event_files(
    job: &Job,
    path: &std::path::Path,
    selection: &stagepush::source::Selection,
) -> Result<(Vec<StageFile>, Vec<UnusableKey>), String> {
    let payload = if path.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)
            .map_err(|e| format!("cannot read the event from stdin: {e}"))?;
        buf
    } else {
        std::fs::read(path)
            .map_err(|e| format!("cannot read the event file {}: {e}", path.display()))?
    };
    let where_ = if path.as_os_str() == "-" {
        "stdin".to_string()
    } else {
        path.display().to_string()
    };
    let notifications =
        stagepush::events::parse(&payload).map_err(|e| format!("event {where_}: {e}"))?;
    let resolved = stagepush::trigger::resolve(&job.stage, &notifications)
        .map_err(|e| format!("event {where_}: {e}"))?;
    // `--include`, `--exclude`, `--modified-since` filter the named files as `serve`'s do.
    let (files, not_selected) = selection
        .filter(resolved.files)
        .map_err(|e| format!("event {where_}: {e}"))?;
    for reason in resolved.ignored.iter().chain(&not_selected) {
        eprintln!("event: ignored: {reason}");
    }
    eprintln!(
        "event: {} object(s) to deliver from {} event(s)",
        files.len(),
        notifications.len()
    );
    Ok((files, resolved.unusable))
}
