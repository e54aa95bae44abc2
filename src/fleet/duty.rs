//! A step's duty: the step protocol for N nodes, around any step.
//!
//! A pending step that this node never checkpointed first reads TFE: when
//! every readable key already matches it is unchanged and sends nothing (a
//! replacement node, or work another node did). With `[store]`, the nodes
//! running at once decide through a duty who applies it; the others wait,
//! then take the fleet's word (`applied-STEP`, which names the config TFE
//! last took for the step) or, where that word is older than their config,
//! confirm from live state. The duty's name is `STEP-FP16` (FP: the step's
//! shared config, [`crate::step::Desired::duty_fingerprint`]), with `-LIVE`
//! after a rollback and `-rN` after a takeover ([`crate::store::Store::claim`]).

use crate::error::Error;
use crate::step::{Applies, Ctx, Done, Drift, LiveCtx, Schedule, Step};
use crate::store::{Store, StoreError, Turn};
use crate::tokens::admin;

/// Applies a pending step for this node: alone, or as one node of the
/// fleet. `fresh`: this node has no checkpoint of it. When it fails because
/// TFE refused this node's admin token and `[store]` holds another one (a
/// node rotated it under a TTL policy), the admin session takes that one and
/// the step is tried once more.
pub fn apply(step: &'static dyn Step, ctx: &mut Ctx<'_>, fresh: bool) -> Result<Done, Error> {
    match apply_once(step, ctx, fresh) {
        Err(_) if admin::refresh_from_store(ctx) => apply_once(step, ctx, fresh),
        r => r,
    }
}

fn apply_once(step: &'static dyn Step, ctx: &mut Ctx<'_>, fresh: bool) -> Result<Done, Error> {
    let on_change = step.schedule() == Schedule::OnChange;
    let shared = on_change && !ctx.forced;
    match ctx.fleet.filter(|_| shared) {
        Some(store) => Duty::new(step, ctx, store)?.run(ctx, fresh),
        None => alone(step, ctx, fresh && shared, on_change),
    }
}

/// Without `[store]`, or `--force` on a node of a fleet (whose record then
/// follows what TFE holds now). `read_first`: a step this node never
/// checkpointed, which TFE may already hold.
fn alone(
    step: &'static dyn Step,
    ctx: &mut Ctx<'_>,
    read_first: bool,
    on_change: bool,
) -> Result<Done, Error> {
    if read_first
        && !ctx.new_install
        && let Some(d) = converged(step, ctx)
    {
        return Ok(Done::unchanged(d));
    }
    let applied = run_step(step, ctx, false)?;
    if let Some(store) = ctx.fleet.filter(|_| on_change && !step.writes_node_files()) {
        let fp = duty_fingerprint(step, ctx, store)?;
        store.set_applied(step.name().as_str(), &fp).map_err(|e| {
            Error::step(
                step.name(),
                format!(
                    "applied, but the other nodes could not be told: {e}; fix the store and rerun"
                ),
            )
        })?;
    }
    Ok(applied)
}

/// Applies it here: a step that only a site admin can run is refused
/// first when the run's token is someone else's.
fn run_step(step: &'static dyn Step, ctx: &mut Ctx<'_>, taken_over: bool) -> Result<Done, Error> {
    if step.needs_site_admin() {
        admin::require_site_admin(ctx, step.name())?;
    }
    if taken_over {
        step.take_over(ctx)
    } else {
        step.apply(ctx)
    }
}

/// One step's duty on a node of a fleet.
struct Duty<'f> {
    step: &'static dyn Step,
    store: &'f Store,
    /// The duty fingerprint of the config this node applies.
    fp: String,
    /// `STEP-FP16`.
    name: String,
    /// The step writes this node's own file: it runs here whatever the
    /// fleet did.
    local: bool,
}

/// How the fleet's answer leaves the step.
enum Next {
    /// Ended here (another node did it, or TFE holds it).
    Ended(Done),
    /// This node applies it, holding the duty key; `true` when it took the
    /// duty over from a holder that went silent or failed.
    Apply(String, bool),
}

impl<'f> Duty<'f> {
    fn new(step: &'static dyn Step, ctx: &Ctx<'_>, store: &'f Store) -> Result<Duty<'f>, Error> {
        let fp = duty_fingerprint(step, ctx, store)?;
        let name = format!("{}-{}", step.name(), &fp[..16]);
        Ok(Duty {
            step,
            store,
            fp,
            name,
            local: step.writes_node_files(),
        })
    }

    fn store_err(&self, e: StoreError) -> Error {
        Error::step(self.step.name(), e)
    }

    /// The fleet's word names this very config (never for a local step).
    fn trusted(&self) -> Result<bool, Error> {
        let word = self
            .store
            .applied(self.step.name().as_str())
            .map_err(|e| self.store_err(e))?;
        Ok(!self.local && word.as_deref() == Some(&*self.fp))
    }

    fn by_word(&self, ctx: &mut Ctx<'_>) -> Result<Done, Error> {
        let name = self.step.name();
        self.followed(
            ctx,
            Done::unchanged(format!(
                "the fleet applied this config ([store] key applied-{name}); nothing sent"
            )),
        )
    }

    /// `applied`, after [`Step::follow`] took whatever the applying node
    /// changed that this node uses too.
    fn followed(&self, ctx: &mut Ctx<'_>, applied: Done) -> Result<Done, Error> {
        Ok(match self.step.follow(ctx)? {
            Some(more) => Done::unchanged(format!("{}; {more}", applied.detail)),
            None => applied,
        })
    }

    /// Another node applied it and TFE says so (`d`): the word is recorded
    /// (best effort) and the step ends here.
    fn confirmed(&self, ctx: &mut Ctx<'_>, d: String) -> Result<Done, Error> {
        let _ = self.store.set_applied(self.step.name().as_str(), &self.fp);
        self.followed_by(ctx, d)
    }

    fn run(self, ctx: &mut Ctx<'_>, fresh: bool) -> Result<Done, Error> {
        if self.trusted()? {
            return self.by_word(ctx);
        }
        let turn = self
            .store
            .claim(&self.name)
            .map_err(|e| self.store_err(e))?;
        let next = match turn {
            // The token another node minted (or this node's own to mint,
            // when nobody published one): the step knows.
            Turn::Done if self.local => return run_step(self.step, ctx, false),
            Turn::Done => self.after_done(ctx)?,
            Turn::Mine(key) => self.mine(ctx, fresh, key)?,
            Turn::TakenOver(key) => self.taken_over(ctx, key),
        };
        match next {
            Next::Ended(done) => Ok(done),
            Next::Apply(key, taken_over) => self.apply_holding(ctx, &key, taken_over),
        }
    }

    /// The duty is done, but the word does not name this config: the done
    /// key is older than the word (the config was rolled back A→B→A), or
    /// nobody recorded the word. TFE says.
    fn after_done(&self, ctx: &mut Ctx<'_>) -> Result<Next, Error> {
        if self.trusted()? {
            return self.by_word(ctx).map(Next::Ended);
        }
        // The node that applied it may also have rotated the admin token
        // under a TTL policy: refused, take the published one.
        let confirmed = converged(self.step, ctx).or_else(|| {
            admin::refresh_from_store(ctx)
                .then(|| converged(self.step, ctx))
                .flatten()
        });
        if let Some(d) = confirmed {
            return self.confirmed(ctx, d).map(Next::Ended);
        }
        // TFE holds something else: a new duty, named after TFE's live
        // values, so that still one node applies it for the whole fleet.
        let again = format!("{}-{}", self.name, live_mark(self.step, ctx));
        match self.store.claim(&again).map_err(|e| self.store_err(e))? {
            Turn::Done => {
                if self.trusted()? {
                    return self.by_word(ctx).map(Next::Ended);
                }
                if let Some(d) = converged(self.step, ctx) {
                    return self.followed_by(ctx, d).map(Next::Ended);
                }
                self.release_has(ctx)?;
                let applied = run_step(self.step, ctx, false)?;
                self.store
                    .set_applied(self.step.name().as_str(), &self.fp)
                    .map_err(|e| self.store_err(e))?;
                Ok(Next::Ended(applied))
            }
            // Between this node's read and its claim another node may
            // have applied it (under a duty named after the older live
            // values): read once more before sending.
            Turn::Mine(key) => match converged(self.step, ctx) {
                Some(d) => {
                    let _ = self.store.set_applied(self.step.name().as_str(), &self.fp);
                    let _ = self.store.finish(&key, true);
                    self.followed_by(ctx, d).map(Next::Ended)
                }
                None => Ok(Next::Apply(key, false)),
            },
            Turn::TakenOver(key) => Ok(self.taken_over(ctx, key)),
        }
    }

    fn followed_by(&self, ctx: &mut Ctx<'_>, d: String) -> Result<Done, Error> {
        self.followed(
            ctx,
            Done::unchanged(format!("another node applied it: {d}")),
        )
    }

    /// This node holds the duty. A node new to this TFE (no checkpoint)
    /// reads TFE first: it may already hold the config (set by hand, or by
    /// nodes that ran before the store was configured).
    fn mine(&self, ctx: &mut Ctx<'_>, fresh: bool, key: String) -> Result<Next, Error> {
        if !self.local
            && fresh
            && !ctx.new_install
            && let Some(d) = converged(self.step, ctx)
        {
            let told = self
                .store
                .set_applied(self.step.name().as_str(), &self.fp)
                .and(self.store.finish(&key, true));
            told.map_err(|e| self.store_err(e))?;
            return Ok(Next::Ended(Done::unchanged(d)));
        }
        Ok(Next::Apply(key, false))
    }

    /// A duty whose holder went silent or failed. TFE is read back first:
    /// when it already holds the step's readable values, the holder applied
    /// it and only could not say so (a `put done-...` that failed), and
    /// applying again would send a second test mail.
    fn taken_over(&self, ctx: &mut Ctx<'_>, key: String) -> Next {
        let name = self.step.name();
        if !self.local
            && let Some(d) = converged(self.step, ctx)
        {
            let _ = self.store.set_applied(name.as_str(), &self.fp);
            let _ = self.store.finish(&key, true);
            return Next::Ended(Done::unchanged(format!(
                "the node that took this step did not report it, but TFE holds it: {d}"
            )));
        }
        let why = match self.store.last_failure() {
            true => "reported a failure".to_string(),
            false => format!(
                "did not finish it within [store] wait ({})",
                crate::config::duration::format_duration(self.store.wait)
            ),
        };
        ctx.warn(
            name,
            &format!(
                "the node that took this step {why}, and TFE does not hold it: this node applies it. \
                 If that node had applied it without saying so, its side effect (a test mail, an SMS) happens twice"
            ),
        );
        Next::Apply(key, true)
    }

    /// What the TFE release must have for this step, checked by the node
    /// about to send it: the other nodes did their part.
    fn release_has(&self, ctx: &mut Ctx<'_>) -> Result<(), Error> {
        match self.step.requires(ctx.cfg) {
            Some(r) => ctx.release_has(&[(self.step.name(), r)], false),
            None => Ok(()),
        }
    }

    /// Applies it holding the duty `key`; then the word first and `done`
    /// after it: a node that sees `done` finds the word.
    fn apply_holding(&self, ctx: &mut Ctx<'_>, key: &str, taken_over: bool) -> Result<Done, Error> {
        let name = self.step.name();
        let result = self
            .release_has(ctx)
            .and_then(|()| run_step(self.step, ctx, taken_over));
        let word = match (&result, self.local) {
            (Ok(_), false) => self.store.set_applied(name.as_str(), &self.fp),
            _ => Ok(()),
        };
        let finished = self.store.finish(key, result.is_ok());
        let applied = result?;
        word.and(finished).map_err(|e| {
            Error::step(
                name,
                format!("applied, but the other nodes could not be told: {e}; they take over after [store] wait"),
            )
        })?;
        Ok(applied)
    }
}

/// The fingerprint that names `step`'s duty and its `applied-STEP` word:
/// its shared config, secrets only through PBKDF2 under the fleet's salt.
fn duty_fingerprint(
    step: &'static dyn Step,
    ctx: &Ctx<'_>,
    store: &Store,
) -> Result<String, Error> {
    let name = step.name();
    let salt = store.salt().map_err(|e| Error::step(name, e))?.to_string();
    match step.shared(ctx.cfg) {
        Applies::Yes(d) => Ok(d.duty_fingerprint(&salt)),
        // Only a step that applies reaches its duty: this is a bug, said so.
        Applies::No(why) => Err(Error::step(
            name,
            format!("internal: applied although it does not apply ({why})"),
        )),
    }
}

/// TFE's live values for `step` beside the desired ones, read with the
/// site-admin client; `None` when they cannot be read (no usable token, a
/// token this step refuses, or TFE did not answer).
fn live_rows(step: &'static dyn Step, ctx: &mut Ctx<'_>) -> Option<Vec<Drift>> {
    if step.needs_site_admin() && admin::require_site_admin(ctx, step.name()).is_err() {
        return None;
    }
    let admin = admin::client(ctx, step.name()).ok()?.clone();
    step.live(&LiveCtx {
        cfg: ctx.cfg,
        admin: &admin,
        state: &ctx.state,
    })
    .ok()
}

/// A short, non-secret mark of what TFE holds now for `step` (its readable
/// live values; `none` when it has none): names a new duty after a rollback.
fn live_mark(step: &'static dyn Step, ctx: &mut Ctx<'_>) -> String {
    let rows = live_rows(step, ctx).unwrap_or_default();
    let live: Vec<String> = rows
        .iter()
        .filter(|r| !r.write_only)
        .map(|r| format!("{}={}", r.key, r.live))
        .collect();
    if live.is_empty() {
        return "none".into();
    }
    crate::util::sha256_hex(&[live.join("\n").as_bytes()])[..8].to_string()
}

/// Whether TFE already holds every readable key of `step` (at least one):
/// the detail line saying so, and what could not be compared.
fn converged(step: &'static dyn Step, ctx: &mut Ctx<'_>) -> Option<String> {
    let name = step.name();
    let rows = live_rows(step, ctx)?;
    let readable: Vec<&str> = rows
        .iter()
        .filter(|r| !r.write_only)
        .map(|r| r.key.as_str())
        .collect();
    if readable.is_empty() || rows.iter().any(|r| r.differs()) {
        return None;
    }
    // An intent left by a crash is settled: TFE holds the change.
    ctx.state.facts.witnesses.remove(name.as_str());
    let unread: Vec<&str> = rows
        .iter()
        .filter(|r| r.write_only)
        .map(|r| r.key.as_str())
        .collect();
    let mut d = format!("TFE already holds {}; nothing sent", readable.join(", "));
    if !unread.is_empty() {
        d.push_str(&format!(
            " (write-only {} cannot be compared: --force {name} re-sends them)",
            unread.join(", ")
        ));
    }
    Some(d)
}
