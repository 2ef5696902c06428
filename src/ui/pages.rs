//! The pages, as pure functions of a [`Status`] snapshot. Every value is interpolated
//! through maud, which escapes it; nothing here builds HTML from strings.

use std::time::{Duration, UNIX_EPOCH};

use maud::{html, Markup, DOCTYPE};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::status::{
    EnvironmentStatus, ReconcileRecord, RefusedRevision, ResourceState, ResourceStatus,
    RevisionSummary, Status,
};

/// Seconds between two refreshes of an open page.
pub const REFRESH_SECS: u64 = 5;

/// Path segments keep letters, digits and `-_.~`; everything else is percent-encoded.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

fn seg(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

/// The Environment page's path.
pub fn environment_path(env: &str) -> String {
    format!("/ui/environments/{}", seg(env))
}

/// A resource page's path.
pub fn resource_path(r: &ResourceStatus) -> String {
    format!(
        "{}/resources/{}/{}",
        environment_path(&r.environment),
        seg(r.kind.as_str()),
        seg(&r.name)
    )
}

fn history_path(env: &str) -> String {
    format!("{}/history", environment_path(env))
}

/// An epoch time as RFC 3339 (UTC, seconds).
fn time(secs: Option<u64>) -> String {
    match secs {
        Some(s) => {
            humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(s)).to_string()
        }
        None => "never".into(),
    }
}

fn short(id: &str) -> &str {
    // Commit ids are hex: a char boundary at 12 when longer.
    if id.len() > 12 && id.is_char_boundary(12) {
        &id[..12]
    } else {
        id
    }
}

/// The frame of every page: title, navigation, the source line and the refresh note.
fn page(st: &Status, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · mlspace-gitops" }
                link rel="stylesheet" href="/ui/assets/app.css";
                script src="/ui/assets/app.js" defer {}
            }
            body data-refresh=(REFRESH_SECS) {
                header {
                    nav {
                        a.brand href="/" { "mlspace-gitops" }
                        a href="/" { "Environments" }
                        a href="/ui/refused" { "Refused revisions" }
                        span #refreshed { "refreshes every " (REFRESH_SECS) " s" }
                    }
                    p #source .source {
                        "source " code { (st.source) }
                        " · mode " strong { (st.mode) }
                        " · at " (revision_id(st.source_revision.as_deref()))
                        " · fetched " (time(st.last_fetch_at))
                    }
                }
                main #main {
                    @if let Some(e) = &st.last_fetch_error {
                        p.error { "Source unreachable: " (e) }
                    }
                    (body)
                }
            }
        }
    }
}

fn revision_id(id: Option<&str>) -> Markup {
    match id {
        Some(id) => html! { code title=(id) { (short(id)) } },
        None => html! { span.none { "none" } },
    }
}

fn revision(r: Option<&RevisionSummary>) -> Markup {
    match r {
        None => html! { span.none { "none" } },
        Some(r) => html! {
            (revision_id(Some(&r.id)))
            @if let Some(m) = &r.message { " " span.message { (m) } }
            @if let Some(a) = &r.author { " " span.author { "by " (a) } }
        },
    }
}

/// An action's name as `/status` spells it.
fn action(a: crate::plan::Action) -> String {
    serde_json::to_value(a)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn state(s: ResourceState) -> Markup {
    html! { span class={ "state " (s.as_str()) } { (s.as_str()) } }
}

fn lines(text: &str) -> Markup {
    html! { pre { (text) } }
}

fn leader(e: &EnvironmentStatus) -> Markup {
    html! {
        @if e.leader {
            "this replica"
            @if let Some(h) = &e.owner { " (" code { (h) } ")" }
        } @else {
            @match &e.owner {
                Some(h) => { "replica " code { (h) } }
                None => span.none { "unknown" },
            }
        }
    }
}

/// Whether it is suspended (`mlspace-gitops suspend`), since when, by whom and why.
fn suspension(e: &EnvironmentStatus) -> Markup {
    html! {
        @if e.suspended {
            span class="state suspended" { "suspended" }
            " since " (time(e.suspended_at))
            @if let Some(by) = &e.suspended_by { " by " code { (by) } }
            @if let Some(why) = &e.suspended_reason { ": " (why) }
        } @else {
            "yes"
        }
    }
}

fn counts(st: &Status, env: &str) -> Vec<(ResourceState, usize)> {
    ResourceState::ALL
        .iter()
        .map(|s| {
            let n = st
                .resources
                .iter()
                .filter(|r| r.environment == env && r.state == *s)
                .count();
            (*s, n)
        })
        .collect()
}

/// What is known of an Environment, as a definition list.
fn environment_facts(st: &Status, e: &EnvironmentStatus) -> Markup {
    let refused = st.refused_revisions.first();
    html! {
        dl.facts {
            dt { "Account" } dd { code { (e.account) } }
            dt { "Region" } dd { code { (e.region) } }
            dt { "Directory" } dd { code { (e.directory) } }
            dt { "Leader" } dd { (leader(e)) }
            dt { "Assigned to" } dd {
                @match &e.assigned_to {
                    Some(r) => { "replica " code { (r) } }
                    None => span.none { "no replica (none has room, or membership not read yet)" },
                }
            }
            dt { "Last completed" } dd { (time(e.last_completed_at)) " (by any replica)" }
            dt { "Reconciling" } dd { (suspension(e)) }
            dt { "Last applied" } dd { (revision(e.last_applied.as_ref())) }
            dt { "Last attempted" } dd { (revision(e.last_attempted.as_ref())) }
            dt { "Last refused" } dd {
                @match refused {
                    Some(r) => { (revision(Some(&r.revision))) " (" (r.reason.as_str()) ")" }
                    None => span.none { "none" },
                }
            }
            dt { "Last reconcile" } dd { (time(e.last_reconcile_at)) }
            dt { "Last error" } dd {
                @match &e.last_error {
                    Some(err) => (lines(err)),
                    None => span.none { "none" },
                }
            }
        }
    }
}

/// `/`: every Environment with its facts and resource counts.
pub fn overview(st: &Status) -> Markup {
    page(
        st,
        "Environments",
        html! {
            h1 { "Environments" }
            @if let Some(e) = &st.last_error {
                section.error { h2 { "Last error" } (lines(e)) }
            }
            @if st.environments.is_empty() {
                p.none { "No Environment yet: the first revision has not been loaded." }
            }
            @for e in &st.environments {
                section.environment {
                    h2 { a href=(environment_path(&e.name)) { (e.name) } }
                    (environment_facts(st, e))
                    ul.counts {
                        @for (s, n) in counts(st, &e.name) {
                            li { a href={ (environment_path(&e.name)) "?state=" (s.as_str()) } { (state(s)) " " (n) } }
                        }
                    }
                    p { a href=(history_path(&e.name)) { "History of reconciles" } }
                }
            }
            @if !st.security_warnings.is_empty() {
                section {
                    h2 { "Security warnings" }
                    ul { @for w in &st.security_warnings { li { code { (w) } } } }
                }
            }
        },
    )
}

/// The filter a query string asks for: a known state, or every resource.
pub fn parse_filter(q: Option<&str>) -> Option<ResourceState> {
    let q = q?;
    ResourceState::ALL.into_iter().find(|s| s.as_str() == q)
}

/// An Environment's resources, those not in state `filter` hidden (the script filters
/// the same rows without a reload).
pub fn environment(st: &Status, e: &EnvironmentStatus, filter: Option<ResourceState>) -> Markup {
    let resources: Vec<&ResourceStatus> = st
        .resources
        .iter()
        .filter(|r| r.environment == e.name)
        .collect();
    let base = environment_path(&e.name);
    page(
        st,
        &e.name,
        html! {
            h1 { "Environment " (e.name) }
            (environment_facts(st, e))
            p { a href=(history_path(&e.name)) { "History of reconciles" } }
            nav.filter aria-label="Filter by state" {
                a href=(base) data-filter="" class=[filter.is_none().then_some("active")] { "all " (resources.len()) }
                @for (s, n) in counts(st, &e.name) {
                    a href={ (base) "?state=" (s.as_str()) } data-filter=(s.as_str())
                        class=[(filter == Some(s)).then_some("active")] { (s.as_str()) " " (n) }
                }
            }
            table.resources {
                thead { tr { th { "Kind" } th { "Name" } th { "State" } th { "Description" } th { "Error" } } }
                tbody {
                    @for r in &resources {
                        tr data-state=(r.state.as_str()) hidden[filter.is_some_and(|f| f != r.state)] {
                            td { (r.kind.as_str()) }
                            td { a href=(resource_path(r)) { (r.name) } }
                            td { (state(r.state)) }
                            td { @if let Some(d) = &r.description { (d) } }
                            td.err { @if let Some(x) = &r.error { (x) } }
                        }
                    }
                }
            }
            @if resources.is_empty() {
                p.none { "No resource reported yet." }
            }
        },
    )
}

/// One resource: its state, description, pending change and last error.
pub fn resource(st: &Status, r: &ResourceStatus) -> Markup {
    page(
        st,
        &r.name,
        html! {
            p { a href=(environment_path(&r.environment)) { "← Environment " (r.environment) } }
            h1 { (r.kind.as_str()) " " (r.name) }
            dl.facts {
                dt { "State" } dd { (state(r.state)) }
                dt { "Description" } dd {
                    @match &r.description { Some(d) => span.description { (d) }, None => span.none { "none" } }
                }
                dt { "Last error" } dd {
                    @match &r.error { Some(x) => (lines(x)), None => span.none { "none" } }
                }
                @if let Some(t) = r.retry_at {
                    dt { "Next retry" } dd { (time(Some(t))) }
                }
            }
            h2 { "Pending change" }
            @match &r.pending {
                None => p.none { "None: AWS matches git." },
                Some(p) => {
                    p { "Action: " strong { (action(p.action)) } }
                    @if !p.fields.is_empty() {
                        h3 { "Fields" }
                        pre.diff { @for f in &p.fields { (f) "\n" } }
                    }
                    @if !p.access.is_empty() {
                        h3 { "Access" }
                        pre.diff { @for a in &p.access { (a) "\n" } }
                    }
                }
            }
        },
    )
}

fn record(r: &ReconcileRecord) -> Markup {
    html! {
        tr {
            td { (time(Some(r.at))) @if r.repeats > 0 { " (and " (r.repeats) " before, alike)" } }
            td { (revision_id(Some(&r.revision))) }
            td { @if r.whole { "whole" } @else { "targeted" } }
            td { @if r.success { span.state.in_sync { "success" } } @else { span.state.failed { "failure" } } }
            td {
                @if r.changes.is_empty() && r.planned == 0 { span.none { "nothing" } }
                ul {
                    @for c in &r.changes {
                        li {
                            (action(c.action))
                            " " (c.kind.as_str()) " " code { (c.name) }
                            @if !c.summary.is_empty() { ": " (c.summary) }
                            @if let Some(e) = &c.error { " — " span.err { (e) } }
                        }
                    }
                    @if r.planned > 0 { li { (r.planned) " planned, not applied" } }
                }
            }
        }
    }
}

/// The last reconciles of an Environment, newest first.
pub fn history(st: &Status, e: &EnvironmentStatus) -> Markup {
    page(
        st,
        &format!("{} history", e.name),
        html! {
            p { a href=(environment_path(&e.name)) { "← Environment " (e.name) } }
            h1 { "History of " (e.name) }
            @if e.history.is_empty() { p.none { "No reconcile yet." } }
            @else {
                table.history {
                    thead { tr { th { "Ended" } th { "Revision" } th { "Scope" } th { "Result" } th { "Changes" } } }
                    tbody { @for r in &e.history { (record(r)) } }
                }
            }
        },
    )
}

fn refusal(r: &RefusedRevision) -> Markup {
    html! {
        section.refused {
            h2 { (revision(Some(&r.revision))) }
            p { "Refused " (time(Some(r.at))) ": " strong { (r.reason.as_str()) } }
            pre { @for l in &r.errors { (l) "\n" } }
        }
    }
}

/// The revisions refused, newest first, with why.
pub fn refused(st: &Status) -> Markup {
    page(
        st,
        "Refused revisions",
        html! {
            h1 { "Refused revisions" }
            @if st.refused_revisions.is_empty() { p.none { "None." } }
            @for r in &st.refused_revisions { (refusal(r)) }
        },
    )
}

/// A page for what does not exist.
pub fn not_found(st: &Status, what: &str) -> Markup {
    page(
        st,
        "Not found",
        html! { h1 { "Not found" } p { (what) } p { a href="/" { "Environments" } } },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::Kind;

    #[test]
    fn everything_from_git_and_aws_is_escaped() {
        let evil = "<script>alert(1)</script><img src=x onerror=alert(2)>\"'&";
        let mut st = Status::new(evil, "detect");
        st.last_error = Some(evil.into());
        st.environments = vec![EnvironmentStatus {
            name: "dev".into(),
            last_error: Some(evil.into()),
            last_applied: Some(RevisionSummary {
                id: "abc".into(),
                author: Some(evil.into()),
                message: Some(evil.into()),
            }),
            suspended: true,
            suspended_reason: Some(evil.into()),
            suspended_by: Some(evil.into()),
            ..EnvironmentStatus::default()
        }];
        st.resources = vec![ResourceStatus {
            environment: "dev".into(),
            kind: Kind::Role,
            name: "r\"><b>".into(),
            state: ResourceState::Drifted,
            error: Some(evil.into()),
            retry_at: None,
            description: Some(evil.into()),
            pending: Some(crate::status::PendingChange {
                action: crate::plan::Action::Update,
                fields: vec![evil.into()],
                access: vec![evil.into()],
            }),
        }];
        let env = &st.environments[0];
        let pages = [
            overview(&st).into_string(),
            environment(&st, env, None).into_string(),
            resource(&st, &st.resources[0]).into_string(),
            history(&st, env).into_string(),
            refused(&st).into_string(),
        ];
        for p in &pages {
            assert!(!p.contains("<script>alert"), "{p}");
            assert!(!p.contains("<img"), "{p}");
            assert!(!p.contains("<b>"), "{p}");
        }
        assert!(pages[2].contains(
            "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;&quot;'&amp;"
        ));
        // The name is escaped in the link's path too.
        assert!(
            pages[1].contains("/ui/environments/dev/resources/Role/r%22%3E%3Cb%3E"),
            "{}",
            pages[1]
        );
        // No inline script or style: the CSP forbids them.
        for p in &pages {
            assert!(!p.contains("style="), "{p}");
            assert_eq!(p.matches("<script").count(), 1, "{p}");
        }
    }

    #[test]
    fn a_suspension_shows_when_by_whom_and_why() {
        let mut st = Status::new("file:///m", "apply");
        st.environments = vec![
            EnvironmentStatus {
                name: "dev".into(),
                suspended: true,
                suspended_at: Some(0),
                suspended_reason: Some("freeze for the audit".into()),
                suspended_by: Some("ada".into()),
                ..EnvironmentStatus::default()
            },
            EnvironmentStatus {
                name: "prod".into(),
                ..EnvironmentStatus::default()
            },
        ];
        let p = environment(&st, &st.environments[0], None).into_string();
        assert!(
            p.contains(
                "<span class=\"state suspended\">suspended</span> since 1970-01-01T00:00:00Z by <code>ada</code>: freeze for the audit"
            ),
            "{p}"
        );
        let p = environment(&st, &st.environments[1], None).into_string();
        assert!(p.contains("<dt>Reconciling</dt><dd>yes</dd>"), "{p}");
    }

    #[test]
    fn the_filter_hides_other_states() {
        let mut st = Status::new("x", "apply");
        st.environments = vec![EnvironmentStatus {
            name: "dev".into(),
            ..EnvironmentStatus::default()
        }];
        let r = |name: &str, state| ResourceStatus {
            environment: "dev".into(),
            kind: Kind::Table,
            name: name.into(),
            state,
            error: None,
            retry_at: None,
            description: None,
            pending: None,
        };
        st.resources = vec![
            r("a", ResourceState::InSync),
            r("b", ResourceState::Drifted),
        ];
        assert_eq!(parse_filter(Some("drifted")), Some(ResourceState::Drifted));
        assert_eq!(parse_filter(Some("bogus")), None);
        let p = environment(&st, &st.environments[0], Some(ResourceState::Drifted)).into_string();
        assert!(p.contains(r#"<tr data-state="in_sync" hidden>"#), "{p}");
        assert!(p.contains(r#"<tr data-state="drifted">"#), "{p}");
        for s in ResourceState::ALL {
            assert!(p.contains(&format!("data-filter=\"{s}\"")), "{s}");
        }
    }
}
