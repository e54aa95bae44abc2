//! `[organization]` and its sub-tables: the organization, its default
//! execution mode and agent pool, service-token files and TTL policies.

use super::check::{Checker, parse_ttl};
use super::raw::RawOrganization;
use super::{OrgConfig, PoolRef};

pub(super) fn organization(c: &mut Checker, o: RawOrganization) -> OrgConfig {
    let (name, email) = identity(c, &o);
    let pool = pool(c, &o);
    let (service_token_file, owners_team_token_file, agent_token) = token_files(c, &o, &pool);
    let token_ttl = o.token_ttl.as_ref().map(|t| token_ttl(c, t));
    let security = security(c, &o);
    OrgConfig {
        name,
        email,
        security,
        default_execution_mode: o.default_execution_mode.clone(),
        default_agent_pool: pool,
        max_ttl_enabled: o.max_ttl_enabled,
        service_token_file,
        owners_team_token_file,
        agent_token,
        token_ttl,
    }
}

/// The organization's name and e-mail, and its execution mode's value.
fn identity(c: &mut Checker, o: &RawOrganization) -> (String, String) {
    let why = "in [organization]";
    let name = c
        .required("[organization] name", o.name.as_ref(), why)
        .cloned()
        .unwrap_or_default();
    // TFE's rule for organization names: letters, digits, "-" and "_"
    // (TFE answers 422 "Name is invalid" otherwise; go-tfe's own client check,
    // `validStringID` in helpers.go, is looser and lets "." through, which
    // TFE refuses). Checked here, before anything is sent.
    if !name.is_empty()
        && !name
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
    {
        c.fail(
            "[organization] name",
            format!("{name:?} may contain only letters, digits, - and _ (TFE's rule for organization names)"),
        );
    }
    let email = c
        .required("[organization] email", o.email.as_ref(), why)
        .cloned()
        .unwrap_or_default();
    c.email("[organization] email", o.email.as_ref());
    if let Some(m) = &o.default_execution_mode
        && !["remote", "local", "agent"].contains(&m.as_str())
    {
        c.fail(
            "[organization] default_execution_mode",
            format!("{m:?} is not one of remote, local, agent"),
        );
    }
    (name, email)
}

/// `default_agent_pool` (a name) or `default_agent_pool_id`, and whether
/// the execution mode allows one.
fn pool(c: &mut Checker, o: &RawOrganization) -> Option<PoolRef> {
    let pool = match (&o.default_agent_pool, &o.default_agent_pool_id) {
        (Some(_), Some(_)) => {
            c.fail(
                "[organization] default_agent_pool",
                "give either default_agent_pool (a name) or default_agent_pool_id, not both",
            );
            None
        }
        (Some(n), None) if !n.trim().is_empty() => Some(PoolRef::Name(n.clone())),
        (None, Some(id)) if id.starts_with("apool-") => Some(PoolRef::Id(id.clone())),
        (None, Some(id)) => {
            c.fail(
                "[organization] default_agent_pool_id",
                format!("{id:?} is not an agent pool id (apool-...)"),
            );
            None
        }
        (Some(_), None) => {
            c.fail("[organization] default_agent_pool", "must not be empty");
            None
        }
        (None, None) => None,
    };
    let key = if o.default_agent_pool_id.is_some() {
        "default_agent_pool_id"
    } else {
        "default_agent_pool"
    };
    match (o.default_execution_mode.as_deref(), &pool) {
        (Some("agent"), None) if o.default_agent_pool.is_none() && o.default_agent_pool_id.is_none() => c.fail(
            "[organization] default_agent_pool",
            "is required with default_execution_mode = \"agent\" (a pool name, created if missing, or default_agent_pool_id)",
        ),
        (mode, Some(_)) if mode != Some("agent") => c.fail(
            &format!("[organization] {key}"),
            format!("is only valid with default_execution_mode = \"agent\" (it is {})", mode.map(|m| format!("{m:?}")).unwrap_or_else(|| "not set".into())),
        ),
        _ => {}
    }
    pool
}

/// The token files: the organization's, the owners team's, the agent's.
fn token_files(
    c: &mut Checker,
    o: &RawOrganization,
    pool: &Option<PoolRef>,
) -> (
    Option<std::path::PathBuf>,
    Option<std::path::PathBuf>,
    Option<super::AgentTokenConfig>,
) {
    let service_token_file = o.service_token.as_ref().and_then(|s| {
        if s.file.is_none() {
            c.fail(
                "[organization.service_token] file",
                "is required: where to write the organization token (mode 0600)",
            );
        }
        s.file.clone()
    });
    let owners_team_token_file = o.owners_team_token.as_ref().and_then(|s| {
        if s.file.is_none() {
            c.fail(
                "[organization.owners_team_token] file",
                "is required: where to write the owners team's token (mode 0600)",
            );
        }
        s.file.clone()
    });
    if owners_team_token_file.is_some() && owners_team_token_file == service_token_file {
        c.fail(
            "[organization.owners_team_token] file",
            "must differ from [organization.service_token] file",
        );
    }
    let agent_token = o.agent_token.as_ref().and_then(|a| {
        if pool.is_none() {
            c.fail(
                "[organization.agent_token]",
                "needs an agent pool: set [organization] default_agent_pool (a name) or default_agent_pool_id",
            );
        }
        let Some(file) = &a.file else {
            c.fail(
                "[organization.agent_token] file",
                "is required: where to write the agent token (mode 0600)",
            );
            return None;
        };
        let file = std::path::PathBuf::from(file);
        if Some(&file) == service_token_file.as_ref() || Some(&file) == owners_team_token_file.as_ref() {
            c.fail(
                "[organization.agent_token] file",
                "must differ from the organization and owners team token files",
            );
        }
        let description = a.description.clone().unwrap_or_else(|| "tfe-bootstrap".into());
        if description.trim().is_empty() {
            c.fail("[organization.agent_token] description", "must not be empty");
        }
        Some(super::AgentTokenConfig { file, description })
    });
    (service_token_file, owners_team_token_file, agent_token)
}

/// `[organization.token_ttl]`: (policy type, ms) for each key set.
fn token_ttl(c: &mut Checker, t: &super::raw::RawTokenTtl) -> Vec<(&'static str, u64)> {
    let mut v = vec![];
    for (key, wire, val) in [
        ("organization", "organization", &t.organization),
        ("team", "team", &t.team),
        ("user", "user", &t.user),
        ("audit_trails", "audit_trails", &t.audit_trails),
    ] {
        if let Some(val) = val
            && let Some(ms) = parse_ttl(c, &format!("[organization.token_ttl] {key}"), val)
        {
            v.push((wire, ms));
        }
    }
    if t.organization.is_none() && t.team.is_none() && t.user.is_none() && t.audit_trails.is_none()
    {
        c.fail("[organization.token_ttl]", "is empty: set at least one of organization, team, user, audit_trails, or remove the table");
    }
    v
}

/// The organization's security settings.
fn security(c: &mut Checker, o: &RawOrganization) -> serde_json::Map<String, serde_json::Value> {
    // Organizations API docs ("Update an Organization"): collaborator-auth-policy
    // is `password` or `two_factor_mandatory`; session-timeout and
    // session-remember are minutes (go-tfe `Organization.SessionTimeout`,
    // `SessionRemember`, ints).
    let mut security = serde_json::Map::new();
    if let Some(p) = &o.collaborator_auth_policy {
        if ["password", "two_factor_mandatory"].contains(&p.as_str()) {
            security.insert("collaborator-auth-policy".into(), p.clone().into());
        } else {
            c.fail(
                "[organization] collaborator_auth_policy",
                format!("{p:?} must be \"password\" or \"two_factor_mandatory\""),
            );
        }
    }
    for (key, wire, val) in [
        ("session_timeout", "session-timeout", &o.session_timeout),
        ("session_remember", "session-remember", &o.session_remember),
    ] {
        let Some(text) = val else { continue };
        let full = format!("[organization] {key}");
        let d = c.duration(&full, Some(text), "1m");
        if d.is_zero() {
            continue;
        }
        if !d.as_secs().is_multiple_of(60) {
            c.fail(
                &full,
                format!("{text:?} is not a whole number of minutes (TFE keeps minutes)"),
            );
            continue;
        }
        security.insert(wire.into(), (d.as_secs() / 60).into());
    }
    security
}
