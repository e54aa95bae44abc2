//! Side effects with a witness: the test mail TFE sends on the SMTP PATCH,
//! the verification SMS. Each is sent at most once per change, whatever the
//! faults: the intent (the step and the change's fingerprint) is saved in
//! the state before the request leaves, and a step that finds its own
//! intent for the same change reads TFE back instead of sending again.
//! The checkpoint that follows success clears it.

use crate::error::Error;
use crate::step::{Ctx, StepName};

/// The fingerprint of the change `step` is about to make.
pub(super) fn fingerprint(ctx: &Ctx<'_>, step: &dyn crate::step::Step) -> Result<String, Error> {
    match step.desired(ctx.cfg) {
        crate::step::Applies::Yes(d) => Ok(d.fingerprint(&ctx.state.salt)),
        // Only a step that applies is applied: this is a bug, said so.
        crate::step::Applies::No(why) => Err(Error::step(
            step.name(),
            format!("internal: applied although it does not apply ({why})"),
        )),
    }
}

/// Whether an earlier attempt already sent (or may have sent) this change.
pub(super) fn sent_before(ctx: &Ctx<'_>, step: StepName, fp: &str) -> bool {
    ctx.state
        .facts
        .witnesses
        .get(step.as_str())
        .map(String::as_str)
        == Some(fp)
}

/// Records, durably, that this change is about to be sent.
pub(super) fn record(ctx: &mut Ctx<'_>, step: StepName, fp: &str) -> Result<(), Error> {
    ctx.state
        .facts
        .witnesses
        .insert(step.as_str().into(), fp.into());
    ctx.checkpoints.save(&ctx.state).map_err(Error::State)
}

/// Forgets the intent (the change is known to have landed); the checkpoint
/// that follows saves it.
pub(super) fn clear(ctx: &mut Ctx<'_>, step: StepName) {
    ctx.state.facts.witnesses.remove(step.as_str());
}

/// Forgets the intent now (TFE answered that it did not send), so a rerun
/// sends again.
pub(super) fn forget(ctx: &mut Ctx<'_>, step: StepName) -> Result<(), Error> {
    clear(ctx, step);
    ctx.checkpoints.save(&ctx.state).map_err(Error::State)
}
