//! deploy/container/Dockerfile, checked statically (no container engine is needed): a
//! multi-stage build whose small runtime stage gets only the binary from the builder, runs
//! as a non-root user, exposes the metrics port, checks /healthz and starts `run`.

use crate::support::deploy::assert_known_env;
use crate::support::read;

const DOCKERFILE: &str = "deploy/container/Dockerfile";

/// One instruction: keyword (upper case) and its arguments, continuation lines joined.
#[derive(Debug)]
struct Instr {
    op: String,
    args: String,
}

/// Instructions of a Dockerfile, grouped by stage (each starts with its FROM).
fn stages(text: &str) -> Vec<Vec<Instr>> {
    let mut logical = Vec::new();
    let mut cur = String::new();
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('#') || (t.is_empty() && cur.is_empty()) {
            continue;
        }
        match t.strip_suffix('\\') {
            Some(head) => {
                cur.push_str(head);
                cur.push(' ');
            }
            None => {
                cur.push_str(t);
                logical.push(std::mem::take(&mut cur));
            }
        }
    }
    let mut out: Vec<Vec<Instr>> = Vec::new();
    for l in logical {
        let (op, args) = l.split_once(char::is_whitespace).unwrap_or((&l, ""));
        let instr = Instr {
            op: op.to_ascii_uppercase(),
            args: args.split_whitespace().collect::<Vec<_>>().join(" "),
        };
        if instr.op == "FROM" {
            out.push(Vec::new());
        }
        match out.last_mut() {
            Some(stage) => stage.push(instr),
            None => assert_eq!(instr.op, "ARG", "only ARG may come before the first FROM"),
        }
    }
    out
}

fn find<'a>(stage: &'a [Instr], op: &str) -> Vec<&'a str> {
    stage
        .iter()
        .filter(|i| i.op == op)
        .map(|i| i.args.as_str())
        .collect()
}

#[test]
fn multi_stage_build_copies_only_the_binary_into_a_small_runtime() {
    let text = read(DOCKERFILE);
    let stages = stages(&text);
    assert!(stages.len() >= 2, "not a multi-stage build");
    let builder = &stages[0];
    let from = find(builder, "FROM")[0];
    assert!(
        from.starts_with("rust:") && from.ends_with(" AS builder"),
        "{from}"
    );
    let build = find(builder, "RUN").join("\n");
    assert!(
        build.contains("cargo build --release --locked --bin mlspace-gitops"),
        "{build}"
    );

    let runtime = stages.last().unwrap();
    let base = find(runtime, "FROM")[0];
    assert!(
        base.contains("-slim") || base.contains("distroless"),
        "runtime base {base} is not a small image"
    );
    assert!(
        !find(runtime, "RUN").join(" ").contains("cargo"),
        "the runtime stage must not build"
    );
    let copies = find(runtime, "COPY");
    assert_eq!(
        copies,
        ["--from=builder /usr/local/bin/mlspace-gitops /usr/local/bin/mlspace-gitops"],
        "the runtime gets the binary and nothing else from the build"
    );
}

#[test]
fn runtime_runs_as_non_root_and_starts_the_daemon() {
    let text = read(DOCKERFILE);
    let stages = stages(&text);
    let runtime = stages.last().unwrap();
    let users = find(runtime, "USER");
    let user = users.last().expect("the runtime stage sets USER");
    let name = user.split(':').next().unwrap();
    assert!(!["root", "0", ""].contains(&name), "USER {user}");
    // USER must come after the last RUN that needs root (package installs, useradd).
    let pos = |op: &str| runtime.iter().rposition(|i| i.op == op).unwrap();
    assert!(pos("USER") > pos("RUN"));

    let entry: Vec<String> =
        serde_json::from_str(find(runtime, "ENTRYPOINT")[0]).expect("exec-form ENTRYPOINT");
    assert_eq!(entry, ["/usr/local/bin/mlspace-gitops", "run"]);
    assert!(
        find(runtime, "CMD").is_empty(),
        "arguments come from the environment"
    );
}

#[test]
fn metrics_port_is_exposed_and_the_health_check_hits_healthz() {
    let text = read(DOCKERFILE);
    let stages = stages(&text);
    let runtime = stages.last().unwrap();
    assert_eq!(find(runtime, "EXPOSE"), ["9464"]);
    let env = find(runtime, "ENV").join(" ");
    assert!(
        env.contains("MLSPACE_GITOPS_LISTEN=0.0.0.0:9464"),
        "the daemon listens on loopback by default; the container must listen on 9464 for all: {env}"
    );
    assert_known_env(DOCKERFILE, &text);

    let hc = find(runtime, "HEALTHCHECK");
    let hc = hc.first().expect("a HEALTHCHECK");
    let cmd = hc.split_once("CMD ").expect("HEALTHCHECK CMD").1;
    let argv: Vec<String> = serde_json::from_str(cmd).expect("exec-form health check");
    assert!(
        argv.iter().any(|a| a == "http://127.0.0.1:9464/healthz"),
        "{argv:?}"
    );
    // The tool it runs is installed in the runtime image and fails on HTTP errors.
    assert_eq!(argv[0], "curl");
    assert!(argv.iter().any(|a| a.starts_with('-') && a.contains('f')));
    assert!(find(runtime, "RUN").join(" ").contains(" curl"));
    // The route exists.
    assert!(read("src/http/mod.rs").contains(".route(\"/healthz\""));
}

#[test]
fn toolchain_and_build_context_fit_the_crate() {
    let text = read(DOCKERFILE);
    let arg = text
        .lines()
        .find_map(|l| l.strip_prefix("ARG RUST_VERSION="))
        .expect("ARG RUST_VERSION");
    let cargo = read("Cargo.toml");
    let msrv = cargo
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = "))
        .unwrap()
        .trim_matches('"');
    let parse = |v: &str| -> (u32, u32) {
        let mut it = v.split('.').map(|p| p.parse::<u32>().unwrap());
        (it.next().unwrap(), it.next().unwrap())
    };
    assert!(
        parse(arg) >= parse(msrv),
        "RUST_VERSION {arg} < rust-version {msrv}"
    );
    // The build context leaves out build output and local state.
    let ignore = read("deploy/container/Dockerfile.dockerignore");
    for needle in ["target/", ".git/"] {
        assert!(ignore.lines().any(|l| l.trim() == needle), "{needle}");
    }
}

#[test]
fn docs_show_how_to_build_and_run_the_image() {
    let ops = read("docs/operations.md");
    assert!(ops.contains("docker build -f deploy/container/Dockerfile"));
}
