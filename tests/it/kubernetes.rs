//! The Kubernetes example (scripts/kubernetes, issue 34 item 2), checked
//! the ways that work with no cluster: `kubectl kustomize` renders it,
//! `kubernetes-validate --strict` (PyPI: Kubernetes' own OpenAPI schemas,
//! unknown fields refused) validates every object offline, and the Job's
//! container runs as written against tfe-sim: its args, its env from the
//! Secret, the ConfigMap's config at the mount path, the state on the
//! "volume", and `kubectl exec` as the IACT command, checked against the
//! Role it is granted. No container engine runs here, so the image itself
//! is not built (scripts/release-check.sh runs its fetch stage).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use super::util::*;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/kubernetes")
}

/// The rendered manifests (`kubectl kustomize`'s YAML) and their objects
/// as JSON, or None when kubectl or kubernetes-validate is missing (CI
/// installs both and sets TFE_BOOTSTRAP_REQUIRE_KUBE).
fn rendered() -> Option<(String, Vec<Value>)> {
    if !tools_present(
        &["kubectl", "kubernetes-validate"],
        "TFE_BOOTSTRAP_REQUIRE_KUBE",
        "kubectl; pip install kubernetes-validate",
    ) {
        return None;
    }
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(dir())
        .output_timed()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let yaml = String::from_utf8(out.stdout).unwrap();
    // kubernetes-validate's own interpreter has PyYAML (its dependency).
    let validator = String::from_utf8(
        Command::new("sh")
            .args(["-c", "command -v kubernetes-validate"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let shebang = std::fs::read_to_string(validator.trim()).unwrap();
    let python = shebang
        .lines()
        .next()
        .unwrap()
        .trim_start_matches("#!")
        .trim();
    let mut child = Command::new(python)
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps([d for d in yaml.safe_load_all(sys.stdin) if d]))",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(yaml.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    Some((yaml, serde_json::from_slice(&out.stdout).unwrap()))
}

fn object<'a>(objs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objs.iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in scripts/kubernetes"))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_manifests_render_and_validate_against_kubernetes_schemas() {
    let Some((yaml, objs)) = rendered() else {
        return;
    };
    let rendered = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(rendered.path(), yaml).unwrap();
    for k8s in ["1.30.0", "1.33.0"] {
        let v = Command::new("kubernetes-validate")
            .args(["--strict", "-k", k8s])
            .arg(rendered.path())
            .arg(dir().join("secret.example.yaml"))
            .output_timed()
            .unwrap();
        assert!(
            v.status.success(),
            "kubernetes-validate {k8s}:\n{}{}",
            String::from_utf8_lossy(&v.stdout),
            String::from_utf8_lossy(&v.stderr)
        );
    }
    // Every object lands in TFE's namespace; the Job and the CronJob run as
    // the service account the Role is bound to.
    for o in &objs {
        assert_eq!(o["metadata"]["namespace"], "terraform-enterprise", "{o}");
    }
    let binding = object(&objs, "RoleBinding", "tfe-bootstrap-iact");
    assert_eq!(binding["roleRef"]["name"], "tfe-bootstrap-iact");
    assert_eq!(binding["subjects"][0]["name"], "tfe-bootstrap");
    let job = object(&objs, "Job", "tfe-bootstrap");
    let cron = object(&objs, "CronJob", "tfe-bootstrap-renew");
    let dockerfile = std::fs::read_to_string(dir().join("Dockerfile")).unwrap();
    for pod in [
        &job["spec"]["template"]["spec"],
        &cron["spec"]["jobTemplate"]["spec"]["template"]["spec"],
    ] {
        assert_eq!(pod["serviceAccountName"], "tfe-bootstrap");
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
        let c = &pod["containers"][0];
        assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
        // The image's entrypoint and user (scripts/kubernetes/Dockerfile).
        assert!(dockerfile.contains(&format!(
            "ENTRYPOINT [\"{}\"]",
            c["command"][0].as_str().unwrap()
        )));
        assert!(dockerfile.contains(&format!(
            "USER {0}:{0}",
            pod["securityContext"]["runAsUser"]
        )));
    }
    assert_eq!(
        job["metadata"]["annotations"]["helm.sh/hook"], "post-install",
        "the Job doubles as a Helm post-install hook"
    );
    assert!(
        dockerfile.contains("ARG BASE=gcr.io/distroless/static-debian12:nonroot"),
        "a distroless static base"
    );
}

/// The Job's container, run as written: what it would do in the pod, done
/// here against tfe-sim. Only the mount paths and TFE's address are mapped
/// (no kubelet, no cluster DNS); the `kubectl exec` it runs for the IACT
/// is a stand-in that checks its arguments against the Role and the
/// variables in-cluster kubectl needs, then prints the IACT as `tfectl
/// admin token` does.
#[test]
fn the_job_runs_as_written_against_tfe_sim() {
    let Some((_, objs)) = rendered() else {
        return;
    };
    // TFE allows the API only from elsewhere (here the test is not inside
    // the pod CIDR): the IACT must come from the command.
    let w = World::new(tfe_bootstrap::sim::SimOptions {
        iact_subnets: vec!["10.244.0.0/16".parse().unwrap()],
        ..sim_opts()
    });
    let job = object(&objs, "Job", "tfe-bootstrap");
    let pod = &job["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    let mounts: Vec<(String, String)> = c["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap().to_string(),
                m["mountPath"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let root = w.dir.path().join("pod");
    let local = |mount: &str| root.join(mount.trim_start_matches('/'));
    let map_paths = |text: &str| {
        mounts.iter().fold(text.to_string(), |t, (_, m)| {
            t.replace(m.as_str(), local(m).to_str().unwrap())
        })
    };
    // The ConfigMap's files at the config mount; the volume empty.
    let config_map = object(&objs, "ConfigMap", "tfe-bootstrap");
    let config_mount = &mounts.iter().find(|(n, _)| n == "config").unwrap().1;
    std::fs::create_dir_all(local(config_mount)).unwrap();
    for (file, text) in config_map["data"].as_object().unwrap() {
        let text = map_paths(text.as_str().unwrap()).replace(
            "address = \"https://tfe.example.com\"",
            &format!("address = \"{}\"\nallow_insecure_http = true", w.sim.url()),
        );
        std::fs::write(local(config_mount).join(file), text).unwrap();
    }
    let state_mount = &mounts.iter().find(|(n, _)| n == "state").unwrap().1;
    std::fs::create_dir_all(local(state_mount)).unwrap();
    // The stand-in kubectl: exactly the verbs and names the Role grants.
    let role = object(&objs, "Role", "tfe-bootstrap-iact");
    let rules = role["rules"].as_array().unwrap();
    let granted = |resource: &str, verb: &str| {
        rules.iter().any(|r| {
            strings(&r["resources"]).iter().any(|x| x == resource)
                && strings(&r["verbs"]).iter().any(|x| x == verb)
        })
    };
    assert!(granted("deployments", "get") && granted("pods", "list") && granted("pods", "get"));
    assert!(granted("pods/exec", "create") && granted("pods/exec", "get"));
    let deployment = rules
        .iter()
        .find(|r| strings(&r["resources"]) == ["deployments"])
        .map(|r| strings(&r["resourceNames"]))
        .unwrap();
    let shims = w.dir.path().join("bin");
    std::fs::create_dir_all(&shims).unwrap();
    let log = w.dir.path().join("kubectl.log");
    std::fs::write(
        shims.join("kubectl"),
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{log}'\n\
             [ -n \"$KUBERNETES_SERVICE_HOST\" ] && [ -n \"$KUBERNETES_SERVICE_PORT\" ] || \
             {{ echo 'error: no in-cluster configuration (KUBERNETES_SERVICE_HOST unset)' >&2; exit 1; }}\n\
             [ \"$*\" = 'exec --namespace {ns} deploy/{deploy} --container terraform-enterprise -- tfectl admin token' ] || \
             {{ echo \"forbidden: $*\" >&2; exit 1; }}\n\
             echo '{IACT}'\n",
            log = log.display(),
            ns = role["metadata"]["namespace"].as_str().unwrap(),
            deploy = deployment[0],
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        shims.join("kubectl"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    // The Secret as the operator creates it (secret.example.yaml): the
    // admin password only, so the IACT comes from the command.
    let secret = std::fs::read_to_string(dir().join("secret.example.yaml")).unwrap();
    assert!(secret.contains("admin-password:") && !secret.contains("iact-token:"));
    let run_container = |c: &Value| {
        let args = strings(&c["args"]);
        let mut cmd = Command::new(bin());
        cmd.args(args.iter().map(|a| map_paths(a)))
            .env_clear()
            .env("PATH", format!("{}:/usr/bin:/bin", shims.display()))
            .env("HOME", w.dir.path())
            // What the kubelet sets in every pod.
            .env("KUBERNETES_SERVICE_HOST", "10.96.0.1")
            .env("KUBERNETES_SERVICE_PORT", "443");
        for e in c["env"].as_array().into_iter().flatten() {
            let r = &e["valueFrom"]["secretKeyRef"];
            assert_eq!(r["name"], "tfe-bootstrap");
            match r["key"].as_str().unwrap() {
                "admin-password" => cmd.env(e["name"].as_str().unwrap(), ADMIN_PASSWORD),
                other => {
                    assert_eq!(r["optional"], true, "{other} is absent from the Secret");
                    &mut cmd
                }
            };
        }
        to_run(cmd.output_timed().unwrap())
    };
    let first = run_container(c);
    assert_code(&first, 0);
    assert!(
        std::fs::read_to_string(&log)
            .unwrap()
            .contains("tfectl admin token"),
        "the IACT came from kubectl exec"
    );
    assert_eq!(w.snapshot()["users"].as_array().unwrap().len(), 1);
    let state = local(state_mount).join("state");
    let token = state.join("admin-token");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&token).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    assert!(w.authenticates(&token_in(&token)));
    // A retried pod (or the Job run again) changes nothing; the CronJob's
    // renew finds the tokens on the same volume.
    let before = w.mutating().len();
    assert_code(&run_container(c), 0);
    let cron = object(&objs, "CronJob", "tfe-bootstrap-renew");
    let renew =
        run_container(&cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]);
    assert_code(&renew, 0);
    assert_eq!(w.mutating().len(), before, "nothing sent again");
    w.assert_no_secrets(&first);
    w.assert_no_secrets(&renew);
}
