//! deploy/ecs: the task definition (awsvpc, the daemon's task role from deploy/iam, logs to
//! CloudWatch, a /healthz health check, a stop timeout above the grace period) and the
//! service (several tasks sharing state and leases in DynamoDB); both files are valid input of
//! `RegisterTaskDefinition` and `CreateService` as botocore (from the moto venv) describes them.

use std::collections::BTreeSet;
use std::time::Duration;

use mlspace_gitops::kinds::ResourceSpec;
use mlspace_gitops::manifest::load_dir;
use serde_json::Value;

use crate::support::deploy::{assert_known_env, default_grace_period};
use crate::support::moto::venv_python;
use crate::support::{read, read_json, root};

const TASK: &str = "deploy/ecs/task-definition.json";
const SERVICE: &str = "deploy/ecs/service.json";

fn container(task: &Value) -> &Value {
    let defs = task["containerDefinitions"].as_array().unwrap();
    assert_eq!(defs.len(), 1, "one container: the daemon");
    &defs[0]
}

/// The container's environment variable `name`.
fn env<'a>(c: &'a Value, name: &str) -> Option<&'a str> {
    c["environment"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == name)
        .and_then(|e| e["value"].as_str())
}

fn duration(s: &str) -> Duration {
    humantime::parse_duration(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

#[test]
fn task_uses_awsvpc_and_the_roles_of_deploy_iam() {
    let task = read_json(TASK);
    assert_eq!(task["networkMode"], "awsvpc");
    let iam = load_dir(&root().join("deploy/iam")).unwrap().desired;
    let roles: BTreeSet<&str> = iam
        .resources
        .iter()
        .filter(|r| matches!(r.spec, ResourceSpec::Role(_)))
        .map(|r| r.name.as_str())
        .collect();
    for key in ["taskRoleArn", "executionRoleArn"] {
        let arn = task[key].as_str().unwrap();
        let name = arn.rsplit_once(":role/").expect("a role ARN").1;
        assert!(
            roles.contains(name),
            "{key} {arn} is not a Role of deploy/iam"
        );
    }
    assert!(task["taskRoleArn"]
        .as_str()
        .unwrap()
        .ends_with(":role/mlspace-gitops"));
}

#[test]
fn logs_go_to_cloudwatch() {
    let task = read_json(TASK);
    let logs = &container(&task)["logConfiguration"];
    assert_eq!(logs["logDriver"], "awslogs");
    for opt in ["awslogs-group", "awslogs-region", "awslogs-stream-prefix"] {
        assert!(logs["options"][opt].is_string(), "{opt}");
    }
    // The execution role's managed policy writes to an existing group; it cannot create one.
    assert!(logs["options"].get("awslogs-create-group").is_none());
    let group = logs["options"]["awslogs-group"].as_str().unwrap();
    assert!(
        read("docs/operations.md").contains(&format!("create-log-group --log-group-name {group}")),
        "docs/operations.md should create the log group {group}"
    );
}

#[test]
fn health_check_and_port_match_the_daemon() {
    let task = read_json(TASK);
    let c = container(&task);
    let listen = env(c, "MLSPACE_GITOPS_LISTEN").expect("MLSPACE_GITOPS_LISTEN");
    let port: u64 = listen.rsplit_once(':').unwrap().1.parse().unwrap();
    assert!(
        listen.starts_with("0.0.0.0:"),
        "awsvpc traffic arrives on the task's ENI"
    );
    let ports: Vec<u64> = c["portMappings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["containerPort"].as_u64().unwrap())
        .collect();
    assert_eq!(ports, [port]);
    let cmd: Vec<&str> = c["healthCheck"]["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(cmd[0] == "CMD" || cmd[0] == "CMD-SHELL");
    assert!(
        cmd.iter()
            .any(|a| a.contains(&format!("127.0.0.1:{port}/healthz"))),
        "{cmd:?}"
    );
    // The same check as the image's HEALTHCHECK, so both agree on what healthy means.
    assert!(read("deploy/container/Dockerfile")
        .contains(&format!("\"http://127.0.0.1:{port}/healthz\"")));
    assert!(c["healthCheck"]["startPeriod"].as_u64().unwrap() >= 10);
}

#[test]
fn stop_timeout_covers_the_grace_period() {
    let task = read_json(TASK);
    let c = container(&task);
    let grace = env(c, "MLSPACE_GITOPS_GRACE_PERIOD")
        .map(duration)
        .unwrap_or_else(default_grace_period);
    let stop = Duration::from_secs(c["stopTimeout"].as_u64().expect("stopTimeout"));
    assert!(
        stop >= grace + Duration::from_secs(10),
        "stopTimeout {stop:?} must exceed the grace period {grace:?} with a margin"
    );
    // Fargate caps stopTimeout at 120 seconds.
    assert!(stop <= Duration::from_secs(120));
}

#[test]
fn environment_and_secrets_are_ones_the_daemon_reads() {
    let text = read(TASK);
    assert_known_env(TASK, &text);
    let task = read_json(TASK);
    let c = container(&task);
    for s in c["secrets"].as_array().unwrap() {
        // The execution role may read these secrets and no others (deploy/iam).
        let from = s["valueFrom"].as_str().unwrap();
        assert!(from.starts_with("mlspace-gitops/"), "{from}");
    }
    let exec = read("deploy/iam/ecs-execution-role.yaml");
    assert!(exec.contains(":secret:mlspace-gitops/*"));
    assert!(c["user"].as_str().is_some_and(|u| !u.starts_with('0')));
}

#[test]
fn service_runs_several_tasks_that_share_state() {
    let service = read_json(SERVICE);
    let task = read_json(TASK);
    let desired = service["desiredCount"].as_u64().unwrap();
    assert!(desired >= 2, "one task is not highly available");
    assert_eq!(service["taskDefinition"], task["family"]);
    let subnets = service["networkConfiguration"]["awsvpcConfiguration"]["subnets"]
        .as_array()
        .unwrap();
    assert!(
        subnets.len() >= 2,
        "spread the tasks over availability zones"
    );
    let dc = &service["deploymentConfiguration"];
    let min = dc["minimumHealthyPercent"].as_u64().unwrap();
    assert!(
        desired * min / 100 >= 1,
        "a deployment must keep a task running"
    );
    assert_eq!(dc["deploymentCircuitBreaker"]["rollback"], true);
    // Replicas on different hosts coordinate through the DynamoDB state store.
    let state = env(container(&task), "MLSPACE_GITOPS_STATE").expect("MLSPACE_GITOPS_STATE");
    let table = state
        .strip_prefix("dynamodb://")
        .expect("a DynamoDB state store");
    let iam = load_dir(&root().join("deploy/iam")).unwrap().desired;
    assert_eq!(iam.environment.params["STATE_TABLE"], table);
}

#[test]
fn every_placeholder_is_explained_in_the_docs() {
    let ops = read("docs/operations.md");
    for rel in [TASK, SERVICE] {
        let text = read(rel);
        for (i, _) in text.match_indices("${") {
            let name = &text[i + 2..i + text[i..].find('}').unwrap()];
            assert!(
                ops.contains(&format!("{name}=")),
                "{rel} uses ${{{name}}}; docs/operations.md should say what to set it to"
            );
        }
    }
    for needle in [
        "aws ecs register-task-definition --cli-input-json",
        "aws ecs create-service --cli-input-json",
        "envsubst",
    ] {
        assert!(ops.contains(needle), "docs/operations.md lacks `{needle}`");
    }
}

#[test]
fn files_match_the_ecs_api_as_botocore_describes_it() {
    const CHECK: &str = r#"
import json, sys
import botocore.session
from botocore.validate import ParamValidator
model = botocore.session.get_session().get_service_model("ecs")
failed = False
for path, op in [(sys.argv[1], "RegisterTaskDefinition"), (sys.argv[2], "CreateService")]:
    report = ParamValidator().validate(json.load(open(path)), model.operation_model(op).input_shape)
    if report.has_errors():
        print(f"{path} ({op}):\n{report.generate_report()}")
        failed = True
sys.exit(1 if failed else 0)
"#;
    // The Python of the project's venv (scripts/moto.sh installs moto there, and botocore
    // with it), which knows every ECS API shape.
    let out = std::process::Command::new(venv_python())
        .args(["-c", CHECK])
        .arg(root().join(TASK))
        .arg(root().join(SERVICE))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
