//! The integration tests, one module per area, in one test binary (one link instead of one
//! per file). Shared helpers live in `support`.

mod support;

mod adopt_mlspace;
mod aws_hygiene;
mod bucket_engine;
mod control;
mod crash_e2e;
mod daemon_e2e;
mod deploy_ci;
mod deploy_container;
mod deploy_ecs;
mod deploy_grafana;
mod deploy_iam;
mod deploy_prometheus;
mod deploy_systemd;
mod engine_e2e;
mod events;
mod faults_e2e;
mod fidelity;
mod hostile_input;
mod http_server;
mod iam_engine;
mod import_e2e;
mod kms_key_engine;
mod monitoring;
mod multi_env_e2e;
mod notify;
mod plan_golden;
mod prune_e2e;
mod render;
mod review_cli;
mod schema;
mod seeds;
mod shard_scale;
mod source_git;
mod source_local;
mod state_conformance;
mod state_dynamodb;
mod state_file;
mod table_engine;
mod ui;
mod validate;
mod verify_commits;
