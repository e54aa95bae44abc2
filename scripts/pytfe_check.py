"""Cross-check tfe-sim's wire format with HashiCorp's official Python SDK.

Reads back, with pytfe, what tfe-bootstrap configured: SMTP settings, the
customization settings, the organization's security and default settings and
token TTL policies; then, with the organization token tfe-bootstrap minted,
reads the organization and its token's expiry. Runs after max-TTL
enforcement, so every token it uses must have survived it. Exits non-zero on
any mismatch. Usage: python pytfe_check.py URL ADMIN_TOKEN_FILE ORG_TOKEN_FILE [--hcp]

With --hcp (tfe-sim --hcp, config/hcp.toml): the token is an organization
owner's, there are no admin settings to read, and the policies are the three
that config sets.
"""
import sys

from pytfe import TFEClient
from pytfe.config import TFEConfig

url, token_file, org_token_file = sys.argv[1], sys.argv[2], sys.argv[3]
hcp = "--hcp" in sys.argv[4:]
token = open(token_file).read().strip()
client = TFEClient(TFEConfig(address=url, token=token, http2=False, max_retries=0))
org_token = open(org_token_file).read().strip()
org_client = TFEClient(TFEConfig(address=url, token=org_token, http2=False, max_retries=0))

failures = []
checks = 0


def expect(what, got, want):
    global checks
    checks += 1
    status = "ok" if got == want else "MISMATCH"
    print(f"  {status:8} {what}: {got!r}" + ("" if got == want else f" (wanted {want!r})"))
    if got != want:
        failures.append(what)


if not hcp:
    smtp = client.admin.smtp_settings.read()
    expect("smtp.enabled", smtp.enabled, True)
    expect("smtp.host", smtp.host, "smtp.example.com")
    expect("smtp.port", smtp.port, 587)
    expect("smtp.sender", smtp.sender, "noreply@example.com")
    expect("smtp.auth", str(getattr(smtp.auth, "value", smtp.auth)), "login")
    expect("smtp.username", smtp.username, "smtp-bot")

    # pytfe 1.5.0 has no customization-settings resource: read it through
    # pytfe's own transport (its auth, headers and error handling).
    custom = client._transport.request("GET", "/api/v2/admin/customization-settings").json()
    for key, want in [("support-email-address", "help@example.com"), ("login-help", "Ask #platform"),
                      ("footer", "Internal use only"), ("error", "Something broke: ask #platform"),
                      ("new-user", "Welcome")]:
        expect(f"customization {key}", custom["data"]["attributes"].get(key), want)

    # The organization's security settings ([organization] collaborator_auth_policy,
    # session_timeout = "8h", session_remember = "7d": minutes on the wire).
    # pytfe 1.5.0's Organization model has these fields but no aliases for
    # their hyphenated wire names, so organizations.read() leaves them None
    # against any server: read them through its transport instead.
    o = client._transport.request("GET", "/api/v2/organizations/my-org").json()["data"]["attributes"]
    expect("org collaborator-auth-policy", o.get("collaborator-auth-policy"), "two_factor_mandatory")
    expect("org session-timeout", o.get("session-timeout"), 8 * 60)
    expect("org session-remember", o.get("session-remember"), 7 * 24 * 60)

defaults = client.organizations.read_default_settings("my-org")
expect("org default_execution_mode", defaults.default_execution_mode, "agent")
pools = [p for p in client.agent_pools.list("my-org") if p.name == "default-pool"]
expect("agent pool 'default-pool' exists", len(pools), 1)
if pools:
    expect("org default_agent_pool_id", defaults.default_agent_pool_id, pools[0].id)

day = 86_400_000
policies = {str(getattr(p.token_type, "value", p.token_type)): p.max_ttl_ms
            for p in client.organization_token_ttl_policies.list("my-org")}
expect("ttl organization", policies.get("organization"), 365 * day)
expect("ttl team", policies.get("team"), 90 * day)
if not hcp:
    expect("ttl user", policies.get("user"), 30 * day)
expect("ttl audit_trails", policies.get("audit_trails"), 730 * day)

# The organization token, used as the service account would use it, after
# max-TTL enforcement: it works, and it expires within the organization TTL.
org = org_client.organizations.read("my-org")
expect("org token reads the organization", org.name, "my-org")
ot = org_client.organization_tokens.read("my-org")
expires = getattr(ot, "expired_at", None)
created = getattr(ot, "created_at", None)
if expires is not None and created is not None:
    lifetime_ms = (expires - created).total_seconds() * 1000
    expect("org token lifetime within 1y", lifetime_ms <= 365 * day, True)
else:
    expect("org token has an expiry", expires is not None, True)

mode = " (HCP mode)" if hcp else ""
if failures:
    print(f"pytfe-check{mode}: {checks - len(failures)} passed, {len(failures)} failed")
    sys.exit(1)
print(f"pytfe-check{mode}: {checks} passed, 0 failed")
