//! What Terraform CLI needs to start against the install: the entitlement
//! set and workspaces, enough for `terraform init` with a `cloud` block
//! (discovery, ping, entitlements, then the workspace by name, created when
//! missing) to finish. Sources: TFE API docs `organizations.mdx` ("Show the
//! Entitlement Set") and `workspaces.mdx` ("Show Workspace", "Create a
//! Workspace"); go-tfe `organization.go` `Entitlements` and `workspace.go`
//! `Workspace`, `WorkspaceCreateOptions`.

use serde_json::{Value, json};

use super::*;
use crate::sim::http::{Request, Response};

/// One workspace: the parts a client reads back.
#[derive(Debug, Clone)]
pub struct Workspace {
    pub id: String,
    pub name: String,
    pub organization: String,
    pub execution_mode: String,
    pub terraform_version: String,
    pub created: String,
}

/// The attributes go-tfe's `WorkspaceCreateOptions` may send: accepted
/// (TFE takes them); only a few are kept.
const CREATE_ATTRIBUTES: &[&str] = &[
    "name",
    "agent-pool-id",
    "allow-destroy-plan",
    "assessments-enabled",
    "auto-apply",
    "auto-apply-run-trigger",
    "auto-destroy-at",
    "auto-destroy-activity-duration",
    "description",
    "execution-mode",
    "file-triggers-enabled",
    "global-remote-state",
    "migration-environment",
    "operations",
    "queue-all-runs",
    "speculative-enabled",
    "source-name",
    "source-url",
    "structured-run-output-enabled",
    "terraform-version",
    "trigger-prefixes",
    "trigger-patterns",
    "vcs-repo",
    "working-directory",
    "tag-names",
    "setting-overwrites",
    "hyok-enabled",
];

impl Tfe {
    /// `GET /organizations/:org/entitlement-set` (type `entitlement-sets`):
    /// the attributes of go-tfe `organization.go` `Entitlements`, each one.
    /// That an enterprise install is entitled to all but the HCP-only
    /// Waypoint features is the sim's own reading, not from a source.
    pub(super) fn entitlement_set(&self, org: &str) -> Response {
        Response::json(
            200,
            &json!({"data": {"id": format!("org-{org}"), "type": "entitlement-sets", "attributes": {
                "agents": true, "audit-logging": true, "cost-estimation": true,
                "global-run-tasks": true, "operations": true, "private-module-registry": true,
                "run-tasks": true, "sso": true, "sentinel": true, "state-storage": true,
                "teams": true, "vcs-integrations": true, "waypoint-actions": false,
                "waypoint-templates-and-addons": false,
            }}}),
        )
    }

    fn workspace_doc(&self, w: &Workspace) -> Value {
        let operations = w.execution_mode != "local";
        json!({"data": {"id": w.id, "type": "workspaces", "attributes": {
            "name": w.name, "execution-mode": w.execution_mode, "operations": operations,
            "terraform-version": w.terraform_version, "created-at": w.created,
            "auto-apply": false, "locked": false, "working-directory": "",
            "structured-run-output-enabled": true, "tag-names": [],
            "actions": {"is-destroyable": true},
            "permissions": {"can-update": true, "can-queue-run": true, "can-read-state-versions": true,
                "can-create-state-versions": true, "can-force-unlock": true, "can-lock": true,
                "can-unlock": true, "can-queue-apply": true, "can-queue-destroy": true,
                "can-read-settings": true, "can-update-variable": true, "can-destroy": true},
        }, "relationships": {
            "organization": {"data": {"id": w.organization, "type": "organizations"}},
        }}})
    }

    /// `GET /organizations/:org/workspaces/:name`.
    pub(super) fn show_workspace(&self, org: &str, name: &str) -> Response {
        match self
            .workspaces
            .iter()
            .find(|w| w.organization == org && w.name == name)
        {
            Some(w) => Response::json(200, &self.workspace_doc(w)),
            None => not_found(),
        }
    }

    /// `GET|PATCH /workspaces/:id` (go-tfe `ReadByID`, `UpdateByID`; the
    /// workspaces docs): for a member of the workspace's organization
    /// (`member` decides). A PATCH sets `execution-mode` and
    /// `terraform-version` (Terraform CLI sets the latter after creating
    /// one); the other accepted attributes are taken and not kept.
    pub(super) fn workspace_by_id(
        &mut self,
        id: &str,
        req: &Request,
        member: impl Fn(&str) -> bool,
    ) -> Response {
        let Some(i) = self
            .workspaces
            .iter()
            .position(|w| w.id == id && member(&w.organization))
        else {
            return not_found();
        };
        if req.method == "PATCH" {
            let attrs = match workspace_attributes(req) {
                Ok(a) => a,
                Err(r) => return r,
            };
            let w = &mut self.workspaces[i];
            if let Some(v) = attrs.get("execution-mode").and_then(Value::as_str) {
                w.execution_mode = v.to_string();
            }
            if let Some(v) = attrs.get("terraform-version").and_then(Value::as_str) {
                w.terraform_version = v.to_string();
            }
        }
        Response::json(200, &self.workspace_doc(&self.workspaces[i]))
    }

    /// `POST /organizations/:org/workspaces`: a name is required and unique
    /// within the organization (422 otherwise, as for organizations).
    pub(super) fn create_workspace(&mut self, org: &str, req: &Request) -> Response {
        let attrs = match workspace_attributes(req) {
            Ok(a) => a,
            Err(r) => return r,
        };
        let Some(name) = attrs
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
        else {
            return invalid("name is required");
        };
        if self
            .workspaces
            .iter()
            .any(|w| w.organization == org && w.name == name)
        {
            return invalid("name has already been taken");
        }
        let w = Workspace {
            id: format!("ws-{}", self.random(16)),
            name: name.to_string(),
            organization: org.to_string(),
            execution_mode: attrs
                .get("execution-mode")
                .and_then(Value::as_str)
                .unwrap_or("remote")
                .to_string(),
            terraform_version: attrs
                .get("terraform-version")
                .and_then(Value::as_str)
                .unwrap_or("latest")
                .to_string(),
            created: self.now_rfc3339(),
        };
        let doc = self.workspace_doc(&w);
        self.workspaces.push(w);
        Response::json(201, &doc)
    }
}

/// A workspace body's attributes, each one go-tfe may send (422 for any
/// other, as TFE answers an unknown attribute).
fn workspace_attributes(req: &Request) -> Result<serde_json::Map<String, Value>, Response> {
    let attrs = body_attributes(req, "workspaces")?;
    match attrs
        .keys()
        .find(|k| !CREATE_ATTRIBUTES.contains(&k.as_str()))
    {
        Some(k) => Err(invalid(format!("unknown attribute {k:?} for workspaces"))),
        None => Ok(attrs),
    }
}
