//! `[general]`, `[smtp]`, `[saml]`, `[twilio]`: the admin-settings sections,
//! each turned into the attributes to PATCH (wire spelling), the write-only
//! values and the secrets, with every rule of the contract checked.

use serde_json::{Map, Value};

use super::check::Checker;
use super::raw::{RawCustomization, RawGeneral, RawSaml, RawSmtp, RawTwilio};
use super::secret::SecretSource;
use super::{SettingsConfig, did_you_mean};

pub(super) fn general(c: &mut Checker, g: RawGeneral) -> SettingsConfig {
    let mut m = Map::new();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            m.insert(k.into(), v);
        }
    };
    put(
        "limit-user-organization-creation",
        g.limit_user_organization_creation.map(Value::from),
    );
    put(
        "api-rate-limiting-enabled",
        g.api_rate_limiting_enabled.map(Value::from),
    );
    put("api-rate-limit", g.api_rate_limit.map(Value::from));
    put(
        "send-passing-statuses-for-untriggered-speculative-plans",
        g.send_passing_statuses_for_untriggered_speculative_plans
            .map(Value::from),
    );
    put(
        "allow-speculative-plans-on-pull-requests-from-forks",
        g.allow_speculative_plans_on_pull_requests_from_forks
            .map(Value::from),
    );
    put(
        "default-remote-state-access",
        g.default_remote_state_access.map(Value::from),
    );
    put("plan-timeout", g.plan_timeout.clone().map(Value::from));
    put("apply-timeout", g.apply_timeout.clone().map(Value::from));
    if let Some(n) = g.api_rate_limit
        && n < 30
    {
        c.fail(
            "[general] api_rate_limit",
            format!("{n} is below TFE's minimum of 30 requests per second"),
        );
    }
    c.email(
        "[general] support_email_address",
        g.support_email_address.as_ref(),
    );
    if m.is_empty() && g.support_email_address.is_none() {
        c.fail(
            "[general]",
            "is empty: set at least one key or remove the table",
        );
    }
    SettingsConfig {
        attributes: m,
        ..Default::default()
    }
}

/// `[customization]` (customization-settings: support e-mail, login help,
/// footer, error and new-user messages; settings API docs, go-tfe
/// `AdminCustomizationSetting`), with `[general] support_email_address`
/// (deprecated: today's TFE keeps it here) moved in.
pub(super) fn customization(
    c: &mut Checker,
    raw: Option<&RawCustomization>,
    old_email: Option<&String>,
) -> Option<SettingsConfig> {
    let mut m = Map::new();
    if let Some(r) = raw {
        for (k, v) in [
            ("support-email-address", &r.support_email_address),
            ("login-help", &r.login_help),
            ("footer", &r.footer),
            ("error", &r.error),
            ("new-user", &r.new_user),
        ] {
            if let Some(v) = v {
                m.insert(k.into(), Value::from(v.clone()));
            }
        }
        c.email(
            "[customization] support_email_address",
            r.support_email_address.as_ref(),
        );
        if m.is_empty() {
            c.fail(
                "[customization]",
                "is empty: set at least one key or remove the table",
            );
        }
    }
    if let Some(e) = old_email {
        match m.get("support-email-address") {
            Some(v) if v.as_str() != Some(e.as_str()) => c.fail(
                "[general] support_email_address",
                "differs from [customization] support_email_address: keep only the one in [customization]",
            ),
            Some(_) => c.warn(
                "[general] support_email_address is deprecated and repeats [customization] support_email_address: remove it from [general]",
            ),
            None => {
                c.warn(
                    "[general] support_email_address is deprecated: move it to [customization] (TFE keeps it in customization-settings); it is applied there",
                );
                m.insert("support-email-address".into(), Value::from(e.clone()));
            }
        }
    }
    (!m.is_empty()).then(|| SettingsConfig {
        attributes: m,
        ..Default::default()
    })
}

pub(super) fn smtp(c: &mut Checker, s: RawSmtp) -> SettingsConfig {
    let mut m = Map::new();
    if let Some(v) = s.enabled {
        m.insert("enabled".into(), v.into());
    }
    if let Some(v) = &s.host {
        m.insert("host".into(), v.clone().into());
    }
    if let Some(v) = s.port {
        if !(1..=65535).contains(&v) {
            c.fail("[smtp] port", format!("{v} is not a port (1-65535)"));
        }
        m.insert("port".into(), v.into());
    }
    if let Some(v) = &s.sender {
        m.insert("sender".into(), v.clone().into());
    }
    let auth = s.auth.clone().unwrap_or_else(|| "none".into());
    if !["none", "plain", "login"].contains(&auth.as_str()) {
        let hint = did_you_mean(&auth, ["none", "plain", "login"])
            .map(|x| format!(" (did you mean {x:?}?)"))
            .unwrap_or_default();
        c.fail(
            "[smtp] auth",
            format!("{auth:?} is not one of none, plain, login{hint}"),
        );
    }
    if s.auth.is_some() {
        m.insert("auth".into(), auth.clone().into());
    }
    if let Some(v) = &s.username {
        m.insert("username".into(), v.clone().into());
    }
    let password = c.secret("[smtp] password", s.password.as_ref());
    if auth == "plain" || auth == "login" {
        c.required(
            "[smtp] username",
            s.username.as_ref(),
            &format!("with auth = {auth:?}"),
        );
        if s.password.is_none() {
            c.fail(
                "[smtp] password",
                format!("is required with auth = {auth:?}"),
            );
        }
    }
    if s.enabled == Some(true) {
        let why = "when enabled = true";
        c.required("[smtp] host", s.host.as_ref(), why);
        if s.port.is_none() {
            c.fail("[smtp] port", format!("is required {why}"));
        }
        c.required("[smtp] sender", s.sender.as_ref(), why);
    }
    if s.enabled == Some(false) && s.test_email_address.is_some() {
        c.warnings.push(
            "[smtp] test_email_address does nothing while enabled = false: TFE sends no test mail with SMTP disabled"
                .into(),
        );
    }
    c.email("[smtp] sender", s.sender.as_ref());
    c.email("[smtp] test_email_address", s.test_email_address.as_ref());
    let mut write_only = Map::new();
    if let Some(t) = &s.test_email_address {
        write_only.insert("test-email-address".into(), t.clone().into());
    }
    SettingsConfig {
        attributes: m,
        secrets: password.map(|p| vec![("password", p)]).unwrap_or_default(),
        write_only,
    }
}

pub(super) fn saml(c: &mut Checker, s: RawSaml) -> SettingsConfig {
    let mut m = Map::new();
    let text = |c: &mut Checker,
                key: &str,
                wire: &str,
                v: Option<&SecretSource>,
                m: &mut Map<String, Value>| {
        if let Some(sec) = c.secret(&format!("[saml] {key}"), v) {
            m.insert(wire.into(), sec.expose().to_string().into());
        }
    };
    text(c, "idp_cert", "idp-cert", s.idp_cert.as_ref(), &mut m);
    text(
        c,
        "certificate",
        "certificate",
        s.certificate.as_ref(),
        &mut m,
    );
    for (wire, v) in [
        ("enabled", s.enabled),
        ("debug", s.debug),
        ("team-management-enabled", s.team_management_enabled),
        ("authn-requests-signed", s.authn_requests_signed),
        ("want-assertions-signed", s.want_assertions_signed),
    ] {
        if let Some(v) = v {
            m.insert(wire.into(), v.into());
        }
    }
    for (wire, v) in [
        ("slo-endpoint-url", &s.slo_endpoint_url),
        ("sso-endpoint-url", &s.sso_endpoint_url),
        ("attr-username", &s.attr_username),
        ("attr-groups", &s.attr_groups),
        ("attr-site-admin", &s.attr_site_admin),
        ("site-admin-role", &s.site_admin_role),
    ] {
        if let Some(v) = v {
            m.insert(wire.into(), v.clone().into());
        }
    }
    saml_checked(c, &s, &mut m);
    if s.enabled == Some(true) {
        let why = "when enabled = true";
        if s.idp_cert.is_none() {
            c.fail("[saml] idp_cert", format!("is required {why}"));
        }
        c.required("[saml] sso_endpoint_url", s.sso_endpoint_url.as_ref(), why);
        c.required("[saml] slo_endpoint_url", s.slo_endpoint_url.as_ref(), why);
    }
    let key = c.secret("[saml] private_key", s.private_key.as_ref());
    SettingsConfig {
        attributes: m,
        secrets: key.map(|k| vec![("private-key", k)]).unwrap_or_default(),
        write_only: Map::new(),
    }
}

/// The `[saml]` keys with a closed set of values: URLs, signing and
/// digest methods, the provider type, the SSO token session timeout.
fn saml_checked(c: &mut Checker, s: &RawSaml, m: &mut Map<String, Value>) {
    for (key, v) in [
        ("slo_endpoint_url", &s.slo_endpoint_url),
        ("sso_endpoint_url", &s.sso_endpoint_url),
    ] {
        if let Some(u) = v
            && !u.starts_with("https://")
            && !u.starts_with("http://")
        {
            c.fail(
                &format!("[saml] {key}"),
                format!("{u:?} must be an http(s) URL"),
            );
        }
    }
    for (key, wire, v) in [
        (
            "signature_signing_method",
            "signature-signing-method",
            &s.signature_signing_method,
        ),
        (
            "signature_digest_method",
            "signature-digest-method",
            &s.signature_digest_method,
        ),
    ] {
        if let Some(x) = v {
            if !["SHA1", "SHA256"].contains(&x.as_str()) {
                c.fail(
                    &format!("[saml] {key}"),
                    format!("{x:?} is not one of SHA1, SHA256"),
                );
            }
            m.insert(wire.into(), x.clone().into());
        }
    }
    if let Some(p) = &s.provider_type {
        if !["okta", "entra", "saml", "unknown"].contains(&p.as_str()) {
            c.fail(
                "[saml] provider_type",
                format!("{p:?} is not one of okta, entra, saml, unknown"),
            );
        }
        m.insert("provider-type".into(), p.clone().into());
    }
    if let Some(t) = &s.sso_api_token_session_timeout {
        let d = c.duration("[saml] sso_api_token_session_timeout", Some(t), "14d");
        m.insert("sso-api-token-session-timeout".into(), d.as_secs().into());
    }
}

/// The section, and `test_number` (one verification SMS when applied).
pub(super) fn twilio(c: &mut Checker, t: RawTwilio) -> (SettingsConfig, Option<String>) {
    let mut m = Map::new();
    if let Some(v) = t.enabled {
        m.insert("enabled".into(), v.into());
    }
    if let Some(v) = &t.account_sid {
        m.insert("account-sid".into(), v.clone().into());
    }
    if let Some(v) = &t.from_number {
        m.insert("from-number".into(), v.clone().into());
    }
    let token = c.secret("[twilio] auth_token", t.auth_token.as_ref());
    if t.enabled == Some(true) {
        let why = "when enabled = true";
        c.required("[twilio] account_sid", t.account_sid.as_ref(), why);
        c.required("[twilio] from_number", t.from_number.as_ref(), why);
        if t.auth_token.is_none() {
            c.fail("[twilio] auth_token", format!("is required {why}"));
        }
    }
    if t.test_number.is_some() && t.enabled != Some(true) {
        c.fail(
            "[twilio] test_number",
            "needs enabled = true (TFE only sends the test SMS when Twilio is enabled)",
        );
    }
    let settings = SettingsConfig {
        attributes: m,
        secrets: token.map(|k| vec![("auth-token", k)]).unwrap_or_default(),
        write_only: Map::new(),
    };
    (settings, t.test_number.clone())
}
