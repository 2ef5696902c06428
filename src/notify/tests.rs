use super::target::{self, Scheme, Target, TargetError};
use super::*;

fn rev(id: &str) -> RevisionRef {
    RevisionRef {
        id: id.into(),
        author: Some("Ada <ada@example.com>".into()),
        message: Some("Add the data bucket".into()),
    }
}

fn facts(id: &str) -> RunFacts {
    RunFacts {
        environment: "dev".into(),
        revision: rev(id),
        whole: true,
        ..RunFacts::default()
    }
}

fn role(name: &str, a: Action) -> ChangeLine {
    (Kind::Role, name.into(), a)
}

fn events(ns: &[Notice]) -> Vec<EventKind> {
    ns.iter().map(|n| n.event).collect()
}

#[test]
fn a_revision_applied_is_said_once_with_its_changes_and_author() {
    let mut f = facts("r1");
    f.planned = vec![role("app", Action::Create), role("ops", Action::Update)];
    f.applied = f.planned.clone();
    let (mem, out) = derive(&EnvMemory::default(), &f);
    assert_eq!(events(&out), [EventKind::RevisionApplied]);
    let n = &out[0];
    assert_eq!(
        n.summary,
        "dev: revision r1 applied, 2 changes (1 create, 1 update)"
    );
    assert_eq!(n.details, ["create Role app", "update Role ops"]);
    assert_eq!(n.author.as_deref(), Some("Ada <ada@example.com>"));
    assert_eq!(n.message.as_deref(), Some("Add the data bucket"));
    // The next resync of the same revision, in sync: nothing to say.
    let (_, again) = derive(&mem, &facts("r1"));
    assert!(again.is_empty());
}

#[test]
fn a_revision_applied_over_several_runs_sums_their_changes() {
    let mut f = facts("r2");
    f.applied = vec![role("app", Action::Create)];
    f.problems = vec!["Role ops: AccessDenied".into()];
    let (mem, out) = derive(&EnvMemory::default(), &f);
    assert_eq!(events(&out), [EventKind::ReconcileFailed]);
    assert_eq!(out[0].details, ["Role ops: AccessDenied"]);
    let mut f = facts("r2");
    f.applied = vec![role("ops", Action::Create)];
    let (mem, out) = derive(&mem, &f);
    assert_eq!(events(&out), [EventKind::RevisionApplied]);
    assert_eq!(out[0].details, ["create Role app", "create Role ops"]);
    assert_eq!(mem.failing, None);
    assert!(mem.applying.is_empty());
}

#[test]
fn a_failure_is_said_again_only_when_its_errors_change() {
    let mut f = facts("r1");
    f.problems = vec!["cannot reach the account".into()];
    let (mem, out) = derive(&EnvMemory::default(), &f);
    assert_eq!(events(&out), [EventKind::ReconcileFailed]);
    let (mem, out) = derive(&mem, &f);
    assert!(out.is_empty(), "{out:?}");
    f.problems.push("Role ops: AccessDenied".into());
    let (mem, out) = derive(&mem, &f);
    assert_eq!(events(&out), [EventKind::ReconcileFailed]);
    // Success forgets it; the same failure afterwards is news again.
    let (mem, out) = derive(&mem, &facts("r1"));
    assert_eq!(events(&out), [EventKind::RevisionApplied]);
    let (_, out) = derive(&mem, &f);
    assert_eq!(events(&out), [EventKind::ReconcileFailed]);
}

#[test]
fn apply_mode_reports_repairs_each_time() {
    let (mem, _) = derive(&EnvMemory::default(), &facts("r1"));
    let mut f = facts("r1");
    f.already_applied = true;
    f.planned = vec![role("app", Action::Update)];
    f.applied = f.planned.clone();
    let (mem, out) = derive(&mem, &f);
    assert_eq!(events(&out), [EventKind::DriftRepaired]);
    assert_eq!(out[0].summary, "dev: drift repaired on 1 resource");
    assert_eq!(out[0].details, ["update Role app"]);
    // A targeted run repairs too.
    f.whole = false;
    let (_, out) = derive(&mem, &f);
    assert_eq!(events(&out), [EventKind::DriftRepaired]);
}

#[test]
fn detect_mode_reports_drift_when_the_set_changes_and_never_applies() {
    let mut f = facts("r1");
    f.detect = true;
    f.planned = vec![role("app", Action::Update)];
    let (mem, out) = derive(&EnvMemory::default(), &f);
    assert_eq!(events(&out), [EventKind::DriftDetected]);
    assert!(
        out[0].summary.contains("not repaired"),
        "{}",
        out[0].summary
    );
    let (mem, out) = derive(&mem, &f);
    assert!(out.is_empty());
    f.planned.push(role("ops", Action::Create));
    let (mem, out) = derive(&mem, &f);
    assert_eq!(events(&out), [EventKind::DriftDetected]);
    assert_eq!(out[0].details, ["update Role app", "create Role ops"]);
    // In sync again, then the first drift again: news.
    let mut clean = facts("r1");
    clean.detect = true;
    let (mem, out) = derive(&mem, &clean);
    assert!(out.is_empty());
    f.planned.pop();
    let (_, out) = derive(&mem, &f);
    assert_eq!(events(&out), [EventKind::DriftDetected]);
}

#[test]
fn drift_on_an_observed_resource_is_reported_in_apply_mode_and_the_rest_still_applies() {
    // The revision is applied once; then a resource annotated `reconcile: observe` drifts.
    let mut f = facts("r1");
    f.applied = vec![role("app", Action::Create)];
    let (mem, out) = derive(&EnvMemory::default(), &f);
    assert_eq!(events(&out), [EventKind::RevisionApplied]);
    let mut f = facts("r1");
    f.already_applied = true;
    f.observed = vec![role("ops", Action::Drift)];
    let (mem, out) = derive(&mem, &f);
    assert_eq!(events(&out), [EventKind::DriftDetected]);
    assert_eq!(
        out[0].summary,
        "dev: 1 resource differs from the manifests (reconcile: observe: not repaired)"
    );
    assert_eq!(out[0].details, ["drift Role ops"]);
    // The same drift at the next resync: said once.
    let (mem, out) = derive(&mem, &f);
    assert!(out.is_empty());
    // Another resource repaired beside it: a repair, and no new drift notice.
    f.applied = vec![role("app", Action::Update)];
    let (_, out) = derive(&mem, &f);
    assert_eq!(events(&out), [EventKind::DriftRepaired]);
}

#[test]
fn a_refused_prune_is_said_once_per_reason() {
    let mut f = facts("r1");
    f.prune_refused = Some(("refusing to delete 9 of 10".into(), "mass_deletion".into()));
    let (mem, out) = derive(&EnvMemory::default(), &f);
    assert_eq!(
        events(&out),
        [EventKind::RevisionApplied, EventKind::PruneRefused]
    );
    assert_eq!(out[1].reason.as_deref(), Some("mass_deletion"));
    let (mem, out) = derive(&mem, &f);
    assert!(out.is_empty());
    let (mem, _) = derive(&mem, &facts("r1"));
    let (_, out) = derive(&mem, &f);
    assert_eq!(events(&out), [EventKind::PruneRefused]);
}

#[test]
fn refusals_and_leadership() {
    let n = refused(
        "0123456789abcdef0123456789abcdef01234567",
        Refusal::Lint,
        vec!["role.yaml:3: error".into()],
        Some("fedcba9876543210fedcba9876543210fedcba98"),
    );
    assert_eq!(n.event, EventKind::RevisionRefused);
    assert_eq!(n.reason.as_deref(), Some("lint"));
    assert_eq!(
        n.summary,
        "revision 0123456789ab refused (lint); still applying fedcba987654"
    );
    assert!(leadership("dev", "h-1", true, true).is_none());
    let n = leadership("dev", "h-1", false, true).unwrap();
    assert_eq!(n.reason.as_deref(), Some("acquired"));
    assert_eq!(
        leadership("dev", "h-1", true, false)
            .unwrap()
            .reason
            .as_deref(),
        Some("lost")
    );
}

#[test]
fn event_lists_parse_and_name_the_unknown() {
    assert_eq!(EventKind::parse_list("").unwrap().len(), 7);
    assert_eq!(EventKind::parse_list("all").unwrap().len(), 7);
    let two = EventKind::parse_list("revision_applied, reconcile_failed").unwrap();
    assert_eq!(
        two.into_iter().collect::<Vec<_>>(),
        [EventKind::RevisionApplied, EventKind::ReconcileFailed]
    );
    let e = EventKind::parse_list("revision_applied,drift").unwrap_err();
    assert!(e.contains("`drift`") && e.contains("drift_repaired"), "{e}");
    for (k, n) in EventKind::ALL.iter().zip(EventKind::NAMES) {
        assert_eq!(k.as_str(), n);
        assert_eq!(serde_json::to_value(k).unwrap(), n);
    }
}

#[test]
fn targets_parse_and_never_show_their_url() {
    let t = Target::parse(0, "slack+https://hooks.slack.com/services/T0/B0/SECRET").unwrap();
    assert_eq!(t.scheme, Scheme::Slack);
    assert_eq!(t.address, "https://hooks.slack.com/services/T0/B0/SECRET");
    assert_eq!(t.label(), "slack-0");
    assert_eq!(format!("{t:?}"), "Target(slack-0)");
    let t = Target::parse(2, "webhook+http://127.0.0.1:9/hook").unwrap();
    assert_eq!(
        (t.scheme, t.label().as_str()),
        (Scheme::Webhook, "webhook-2")
    );
    let t = Target::parse(1, "sns://arn:aws:sns:eu-west-1:123456789012:alerts").unwrap();
    assert_eq!(t.sns_region(), Some("eu-west-1"));
    assert_eq!(t.address, "arn:aws:sns:eu-west-1:123456789012:alerts");
    let bad = [
        (
            "https://hooks.slack.com/services/T0/B0/SECRET",
            "unknown scheme",
        ),
        ("slack+http://hooks.slack.com/services/SECRET", "https://"),
        ("teams+https:///SECRET", "no host"),
        ("webhook+ftp://h/SECRET", "webhook+https://"),
        ("sns://arn:aws:sns:eu-west-1:1234:alerts", "12-digit"),
        ("sns://alerts", "arn:aws:sns"),
    ];
    for (url, want) in bad {
        let e = Target::parse(0, url).unwrap_err();
        let text = e.to_string();
        assert!(text.contains(want), "{url}: {text}");
        assert!(text.starts_with("--notify #1"), "{text}");
        assert!(!text.contains("SECRET"), "{text}");
    }
    assert!(matches!(
        Target::parse(4, "x"),
        Err(TargetError::Scheme { index: 5 })
    ));
}

fn sample() -> Notice {
    let mut f = facts("r1");
    f.applied = vec![role("a<b>", Action::Create)];
    derive(&EnvMemory::default(), &f).1.remove(0)
}

#[test]
fn slack_payload_is_escaped_text() {
    let v = target::slack(&sample());
    let text = v["text"].as_str().unwrap();
    assert_eq!(v.as_object().unwrap().len(), 1);
    assert!(
        text.starts_with(
            "*mlspace-gitops* :white_check_mark: dev: revision r1 applied, 1 change (1 create)"
        ),
        "{text}"
    );
    assert!(
        text.contains("Ada &lt;ada@example.com&gt;: Add the data bucket"),
        "{text}"
    );
    assert!(text.contains("• create Role a&lt;b&gt;"), "{text}");
}

#[test]
fn teams_payload_is_a_message_card() {
    let v = target::teams(&sample());
    assert_eq!(v["@type"], "MessageCard");
    assert_eq!(v["@context"], "https://schema.org/extensions");
    assert_eq!(
        v["summary"],
        "dev: revision r1 applied, 1 change (1 create)"
    );
    assert_eq!(
        v["title"],
        "mlspace-gitops: dev: revision r1 applied, 1 change (1 create)"
    );
    assert_eq!(v["themeColor"], "2EA44F");
    assert_eq!(
        v["text"],
        "Ada <ada@example.com>: Add the data bucket\n\n• create Role a<b>"
    );
}

#[test]
fn webhook_body_is_the_notice_and_sns_subject_fits() {
    let v = target::json_body(&sample());
    assert_eq!(v["event"], "revision_applied");
    assert_eq!(v["environment"], "dev");
    assert_eq!(v["revision"], "r1");
    assert_eq!(v["source"], "mlspace-gitops");
    assert_eq!(v["details"][0], "create Role a<b>");
    assert!(v.get("reason").is_none());
    let mut long = sample();
    long.summary = format!("é\n{}", "x".repeat(200));
    let s = target::sns_subject(&long);
    assert_eq!(s.len(), 99);
    assert!(s.starts_with("mlspace-gitops: ??x"), "{s}");
}

#[test]
fn long_details_are_cut_in_chat() {
    let mut n = sample();
    n.details = (0..30).map(|i| format!("d{i}")).collect();
    let t = target::text(&n, 20);
    assert!(t.contains("• d19") && !t.contains("• d20"));
    assert!(t.ends_with("… and 10 more"), "{t}");
}

#[test]
fn dedup_keys_tell_notices_apart() {
    let a = sample();
    let mut b = sample();
    assert_eq!(a.dedup_key(), b.dedup_key());
    b.details.push("update Role x".into());
    assert_ne!(a.dedup_key(), b.dedup_key());
}
