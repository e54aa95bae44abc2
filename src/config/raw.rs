//! The config file exactly as written (TOML → serde). Every table rejects
//! unknown keys; nothing here is trusted until `super::validate` turns it
//! into a [`super::Config`].

use std::path::PathBuf;

use serde::Deserialize;

use super::secret::SecretSource;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub tfe: Option<RawTfe>,
    pub wait: Option<RawWait>,
    pub iact: Option<RawIact>,
    pub admin: Option<RawAdmin>,
    pub general: Option<RawGeneral>,
    pub customization: Option<RawCustomization>,
    pub smtp: Option<RawSmtp>,
    pub saml: Option<RawSaml>,
    pub twilio: Option<RawTwilio>,
    pub organization: Option<RawOrganization>,
    pub state: Option<RawState>,
    pub store: Option<RawStore>,
    pub renew: Option<RawRenew>,
    pub terraform: Option<RawTerraform>,
    pub metrics: Option<RawMetrics>,
}

/// `[customization]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCustomization {
    pub support_email_address: Option<String>,
    pub login_help: Option<String>,
    pub footer: Option<String>,
    pub error: Option<String>,
    pub new_user: Option<String>,
}

/// `[metrics]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMetrics {
    pub textfile: Option<std::path::PathBuf>,
}

/// `[terraform]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTerraform {
    pub credentials_file: Option<std::path::PathBuf>,
    pub token: Option<String>,
    pub host: Option<String>,
}

/// `[renew]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRenew {
    pub before: Option<String>,
    pub grace: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTfe {
    pub address: Option<String>,
    pub platform: Option<String>,
    pub ca_bundle: Option<PathBuf>,
    pub allow_insecure_http: Option<bool>,
    pub request_timeout: Option<String>,
    pub request_deadline: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWait {
    pub timeout: Option<String>,
    pub max_interval: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIact {
    pub source: Option<String>,
    pub token: Option<SecretSource>,
    pub command: Option<Vec<String>>,
    pub env: Option<Vec<String>>,
    pub command_timeout: Option<String>,
    pub subnets: Option<Vec<String>>,
    pub time_limit: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    pub username: Option<String>,
    pub email: Option<String>,
    pub password: Option<SecretSource>,
    pub token_file: Option<PathBuf>,
    pub token: Option<SecretSource>,
    pub rotate_token: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGeneral {
    pub limit_user_organization_creation: Option<bool>,
    pub support_email_address: Option<String>,
    pub api_rate_limiting_enabled: Option<bool>,
    pub api_rate_limit: Option<i64>,
    pub send_passing_statuses_for_untriggered_speculative_plans: Option<bool>,
    pub allow_speculative_plans_on_pull_requests_from_forks: Option<bool>,
    pub default_remote_state_access: Option<bool>,
    pub plan_timeout: Option<String>,
    pub apply_timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSmtp {
    pub enabled: Option<bool>,
    pub host: Option<String>,
    pub port: Option<i64>,
    pub sender: Option<String>,
    pub auth: Option<String>,
    pub username: Option<String>,
    pub password: Option<SecretSource>,
    pub test_email_address: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSaml {
    pub enabled: Option<bool>,
    pub debug: Option<bool>,
    pub idp_cert: Option<SecretSource>,
    pub certificate: Option<SecretSource>,
    pub private_key: Option<SecretSource>,
    pub slo_endpoint_url: Option<String>,
    pub sso_endpoint_url: Option<String>,
    pub attr_username: Option<String>,
    pub attr_groups: Option<String>,
    pub attr_site_admin: Option<String>,
    pub site_admin_role: Option<String>,
    pub sso_api_token_session_timeout: Option<String>,
    pub team_management_enabled: Option<bool>,
    pub authn_requests_signed: Option<bool>,
    pub want_assertions_signed: Option<bool>,
    pub signature_signing_method: Option<String>,
    pub signature_digest_method: Option<String>,
    pub provider_type: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTwilio {
    pub enabled: Option<bool>,
    pub account_sid: Option<String>,
    pub auth_token: Option<SecretSource>,
    pub from_number: Option<String>,
    pub test_number: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOrganization {
    pub name: Option<String>,
    pub email: Option<String>,
    pub default_execution_mode: Option<String>,
    pub default_agent_pool: Option<String>,
    pub default_agent_pool_id: Option<String>,
    pub max_ttl_enabled: Option<bool>,
    pub collaborator_auth_policy: Option<String>,
    pub session_timeout: Option<String>,
    pub session_remember: Option<String>,
    pub service_token: Option<RawServiceToken>,
    pub owners_team_token: Option<RawServiceToken>,
    pub agent_token: Option<RawAgentToken>,
    pub token_ttl: Option<RawTokenTtl>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServiceToken {
    pub file: Option<PathBuf>,
}

/// A TTL: a duration string (`"90d"`) or integer milliseconds.
#[derive(Debug, Clone, Deserialize)]
#[serde(
    untagged,
    expecting = "a duration like \"90d\" or an integer number of milliseconds"
)]
pub enum TtlValue {
    Millis(i64),
    Text(String),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTokenTtl {
    pub organization: Option<TtlValue>,
    pub team: Option<TtlValue>,
    pub user: Option<TtlValue>,
    pub audit_trails: Option<TtlValue>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawState {
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStore {
    pub command: Option<Vec<String>>,
    pub env: Option<Vec<String>>,
    pub wait: Option<String>,
    pub timeout: Option<String>,
}

/// `[organization.agent_token]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAgentToken {
    pub file: Option<String>,
    pub description: Option<String>,
}
