//! The deployment manifests in `deploy/` (README, "Deploying"), parsed by
//! real YAML and TOML parsers (Python's `PyYAML` and `tomllib`; scripts/test.sh
//! installs python3-yaml) and checked for what the lease's overlap needs
//! (issue 14, F3): a surge rollout that stops the old instance only once
//! the new one is ready on `/readyz` (warm), a spool per instance, and a
//! grace period of at least `SHUTDOWN_TIMEOUT_SECS` + 1 s.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn deploy(file: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(file)
}

/// Every document of a YAML file, or a TOML file, as JSON.
fn parsed(file: &str) -> Vec<Value> {
    let toml = Path::new(file)
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("toml"));
    let script = if toml {
        "import sys, json, tomllib; json.dump([tomllib.load(open(sys.argv[1], 'rb'))], sys.stdout)"
    } else {
        "import sys, json, yaml; json.dump(list(yaml.safe_load_all(open(sys.argv[1]))), sys.stdout)"
    };
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(deploy(file))
        .output()
        .expect("python3 (with python3-yaml; scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "{file} does not parse: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn env_value<'a>(env: &'a Value, name: &str) -> Option<&'a str> {
    env.as_array()?
        .iter()
        .find(|e| e["name"] == name)
        .and_then(|e| e["value"].as_str())
}

#[test]
fn the_kubernetes_deployment_overlaps_on_readiness_with_a_spool_per_pod() {
    let docs = parsed("kubernetes/deployment.yaml");
    let d = docs
        .iter()
        .find(|d| d["kind"] == "Deployment")
        .expect("a Deployment");
    let spec = &d["spec"];
    assert_eq!(spec["replicas"], 1);
    assert_eq!(spec["strategy"]["type"], "RollingUpdate");
    assert_eq!(spec["strategy"]["rollingUpdate"]["maxSurge"], 1);
    assert_eq!(
        spec["strategy"]["rollingUpdate"]["maxUnavailable"], 0,
        "the old pod is stopped only once the new one is ready"
    );
    let pod = &spec["template"]["spec"];
    let c = &pod["containers"][0];
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    let shutdown: u64 = env_value(&c["env"], "SHUTDOWN_TIMEOUT_SECS")
        .unwrap_or("10")
        .parse()
        .unwrap();
    let grace = pod["terminationGracePeriodSeconds"].as_u64().unwrap();
    assert!(
        grace > shutdown,
        "grace {grace} s, SHUTDOWN_TIMEOUT_SECS {shutdown}"
    );
    // The spool is on a volume of the pod's own: an emptyDir, never a
    // claim two pods of a rollout would share.
    let spool = env_value(&c["env"], "SPOOL_DIR").unwrap_or("/app/data/spool");
    let mount = c["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| spool.starts_with(m["mountPath"].as_str().unwrap()))
        .expect("the spool on a mounted volume");
    let volume = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == mount["name"])
        .expect("the mount's volume");
    assert!(volume.get("emptyDir").is_some(), "{volume}");
    assert!(volume.get("persistentVolumeClaim").is_none(), "{volume}");
    // The README shows exactly this file.
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let file = std::fs::read_to_string(deploy("kubernetes/deployment.yaml")).unwrap();
    let body: String = file
        .lines()
        .skip_while(|l| l.starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        readme.contains(&body),
        "README's manifest differs from deploy/kubernetes/deployment.yaml"
    );
}

#[test]
fn render_and_fly_stop_the_old_instance_once_the_new_one_is_warm() {
    let render = &parsed("render.yaml")[0]["services"][0];
    assert_eq!(render["healthCheckPath"], "/readyz");
    assert!(
        render.get("disk").is_none(),
        "a disk turns Render's overlap off"
    );
    let fly = &parsed("fly.toml")[0];
    assert_eq!(fly["deploy"]["strategy"], "bluegreen");
    assert_eq!(fly["services"][0]["http_checks"][0]["path"], "/readyz");
    assert!(
        fly.get("mounts").is_none(),
        "blue-green needs Machines without volumes"
    );
    let shutdown: u64 = fly["env"]["SHUTDOWN_TIMEOUT_SECS"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(fly["kill_timeout"].as_u64().unwrap() > shutdown);
}
