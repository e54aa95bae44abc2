#!/usr/bin/env bash
# The way operators bootstrap TFE today, written for the benchmark: a bash
# loop with curl and jq that polls the readiness endpoint every 5 seconds (as
# HashiCorp's own module test scripts do), then fires the API calls. It does
# the same work as config/demo.toml. No checkpoints, no retries, no resume.
# Usage: reference-bootstrap.sh URL   (secrets from TFE_ADMIN_PASSWORD, SMTP_PASSWORD)
set -euo pipefail
url=$1
api=(-fsS -H "Content-Type: application/vnd.api+json")

until curl -fsS -o /dev/null "$url/api/v1/health/readiness" 2>/dev/null; do sleep 5; done

iact=$(curl -fsS "$url/admin/retrieve-iact")
token=$(curl -fsS -H "Content-Type: application/json" -X POST \
  -d "$(jq -n --arg p "$TFE_ADMIN_PASSWORD" '{username:"tfe-admin",email:"platform@example.com",password:$p}')" \
  "$url/admin/initial-admin-user?token=$iact" | jq -r .token)
auth=(-H "Authorization: Bearer $token")

curl "${api[@]}" "${auth[@]}" -o /dev/null -X PATCH "$url/api/v2/admin/general-settings" \
  -d '{"data":{"type":"general-settings","attributes":{"limit-user-organization-creation":true,"api-rate-limiting-enabled":true,"api-rate-limit":60}}}'
curl "${api[@]}" "${auth[@]}" -o /dev/null -X PATCH "$url/api/v2/admin/smtp-settings" \
  -d "$(jq -n --arg p "$SMTP_PASSWORD" '{data:{type:"smtp-settings",attributes:{enabled:true,host:"smtp.example.com",port:587,sender:"noreply@example.com",auth:"login",username:"smtp-bot",password:$p,"test-email-address":"ops@example.com"}}}')"

if ! curl "${api[@]}" "${auth[@]}" -o /dev/null "$url/api/v2/organizations/my-org" 2>/dev/null; then
  curl "${api[@]}" "${auth[@]}" -o /dev/null -X POST "$url/api/v2/organizations" \
    -d '{"data":{"type":"organizations","attributes":{"name":"my-org","email":"platform@example.com"}}}'
fi
pool=$(curl "${api[@]}" "${auth[@]}" "$url/api/v2/organizations/my-org/agent-pools?q=default-pool" \
  | jq -r '.data[] | select(.attributes.name=="default-pool") | .id')
if [ -z "$pool" ]; then
  pool=$(curl "${api[@]}" "${auth[@]}" -X POST "$url/api/v2/organizations/my-org/agent-pools" \
    -d '{"data":{"type":"agent-pools","attributes":{"name":"default-pool","organization-scoped":true}}}' | jq -r .data.id)
fi
curl "${api[@]}" "${auth[@]}" -o /dev/null -X PATCH "$url/api/v2/organizations/my-org" \
  -d "{\"data\":{\"type\":\"organizations\",\"attributes\":{\"default-execution-mode\":\"agent\"},\"relationships\":{\"default-agent-pool\":{\"data\":{\"type\":\"agent-pools\",\"id\":\"$pool\"}}}}}"
curl "${api[@]}" "${auth[@]}" -o /dev/null -X PATCH "$url/api/v2/organizations/my-org/token-ttl-policies" \
  -d '{"data":{"type":"organization-token-ttl-policies","attributes":{"token-ttl-policies":[{"token-type":"organization","max-ttl-ms":31536000000},{"token-type":"team","max-ttl-ms":7776000000},{"token-type":"user","max-ttl-ms":63072000000},{"token-type":"audit_trails","max-ttl-ms":63072000000}]}}}'
curl "${api[@]}" "${auth[@]}" -o /dev/null -X PATCH "$url/api/v2/organizations/my-org" \
  -d '{"data":{"type":"organizations","attributes":{"max-ttl-enabled":true}}}'
