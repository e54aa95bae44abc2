//! What the service-account token steps (`org-token`, `team-token`) share:
//! mint once and keep the file. Regenerating a service-account token
//! invalidates the previous one (seed 003), so an existing file is never
//! re-minted silently.

use std::path::Path;

use super::{AMBIGUOUS_RETRIES, admin_client, api_error};
use crate::error::Error;
use crate::state::TokenFile;
use crate::step::{Applied, Ctx, StepName};
use crate::tfe::TfeError;
use crate::util::write_atomic;

/// Mints a service-account token once and writes it (0600, atomically).
/// An existing file is kept unless `--force`: regenerating invalidates the
/// token in use. When the config moves the file, the token is carried over
/// instead of regenerated. After an ambiguous failure the mint is retried,
/// which only invalidates a token nobody received.
pub(super) fn mint_once(
    ctx: &mut Ctx<'_>,
    step: StepName,
    file: &Path,
    org: &str,
    what: &str,
    mint: impl Fn(&crate::tfe::Client) -> Result<String, TfeError>,
) -> Result<Applied, Error> {
    let record = TokenFile {
        path: file.to_path_buf(),
        organization: org.to_string(),
    };
    let previous = ctx.state.facts.token_files.get(step.as_str()).cloned();
    if !ctx.forced {
        if file.exists() {
            if let Some(p) = previous
                .as_ref()
                .filter(|p| p.path == file && p.organization != org)
            {
                return Err(Error::step(
                    step,
                    format!(
                        "{} holds {what} of organization {:?}, not {org:?}: move it away, or rerun with --force {} to mint one for {org:?}",
                        file.display(),
                        p.organization,
                        step.as_str()
                    ),
                ));
            }
            ctx.state
                .facts
                .token_files
                .insert(step.as_str().into(), record);
            return Ok(Applied::unchanged(format!(
                "{} exists: not regenerated (that would invalidate the token in use; --force {} mints a new one)",
                file.display(),
                step.as_str()
            )));
        }
        if let Some(p) =
            previous.filter(|p| p.organization == org && p.path != file && p.path.exists())
        {
            let token = std::fs::read(&p.path).map_err(|e| {
                Error::step(
                    step,
                    format!("cannot read {} to move it: {e}", p.path.display()),
                )
            })?;
            write_atomic(file, &token)
                .map_err(|e| Error::step(step, format!("cannot write {}: {e}", file.display())))?;
            ctx.state
                .facts
                .token_files
                .insert(step.as_str().into(), record);
            return Ok(Applied::changed(format!(
                "{what} copied from {} to {} (0600), not regenerated; the old file is left in place",
                p.path.display(),
                file.display()
            )));
        }
    }
    let client = admin_client(ctx, step)?.clone();
    let mut tries = 0;
    let token = loop {
        match mint(&client) {
            Err(e) if e.is_ambiguous() && tries < AMBIGUOUS_RETRIES => tries += 1,
            r => break r.map_err(|e| api_error(step, ctx, e))?,
        }
    };
    write_atomic(file, format!("{token}\n").as_bytes()).map_err(|e| {
        Error::step(
            step,
            format!(
                "{what} was minted but {} could not be written: {e}; fix it and rerun with --force {}",
                file.display(),
                step.as_str()
            ),
        )
    })?;
    ctx.state
        .facts
        .token_files
        .insert(step.as_str().into(), record);
    Ok(Applied::changed(format!(
        "{what} written to {} (0600)",
        file.display()
    )))
}
