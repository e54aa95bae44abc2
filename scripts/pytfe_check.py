"""Cross-check tfe-sim's wire format with HashiCorp's official Python SDK.

Reads back, with pytfe, what tfe-bootstrap configured: SMTP settings,
organization default settings and token TTL policies. Exits non-zero on any
mismatch. Usage: python pytfe_check.py URL TOKEN_FILE
"""
import sys

from pytfe import TFEClient
from pytfe.config import TFEConfig

url, token_file = sys.argv[1], sys.argv[2]
token = open(token_file).read().strip()
client = TFEClient(TFEConfig(address=url, token=token, http2=False, max_retries=0))

failures = []
checks = 0


def expect(what, got, want):
    global checks
    checks += 1
    status = "ok" if got == want else "MISMATCH"
    print(f"  {status:8} {what}: {got!r}" + ("" if got == want else f" (wanted {want!r})"))
    if got != want:
        failures.append(what)


smtp = client.admin.smtp_settings.read()
expect("smtp.enabled", smtp.enabled, True)
expect("smtp.host", smtp.host, "smtp.example.com")
expect("smtp.port", smtp.port, 587)
expect("smtp.sender", smtp.sender, "noreply@example.com")
expect("smtp.auth", str(getattr(smtp.auth, "value", smtp.auth)), "login")
expect("smtp.username", smtp.username, "smtp-bot")

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
expect("ttl user", policies.get("user"), 730 * day)
expect("ttl audit_trails", policies.get("audit_trails"), 730 * day)

if failures:
    print(f"pytfe-check: {checks - len(failures)} passed, {len(failures)} failed")
    sys.exit(1)
print(f"pytfe-check: {checks} passed, 0 failed")
