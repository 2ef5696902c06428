//! The web UI in a real browser: Debian's headless `chromium` driven over WebDriver
//! (`chromedriver`, through fantoccini), against the daemon on moto. The pages render the
//! bundled environment, the state filter works without a reload, drift made behind the
//! daemon's back shows within one refresh, and `<script>` / `<img onerror>` payloads in a
//! commit message and a resource description stay text. Screenshots go to
//! `target/ui-screenshots/`. The credentials (`--ui-auth-file`) and the security headers
//! are checked over plain HTTP.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

use crate::support::daemon::Daemon;
use crate::support::git::Repo;
use crate::support::http::{parse_reply, request_head, Reply};
use crate::support::{
    free_port, manifests_dir, mlspace, require, root, text, Clients as _, CommandExt, Moto,
};
use mlspace_gitops::ui::{pages::REFRESH_SECS, CSP};

/// Where the screenshots go.
fn shots() -> PathBuf {
    let dir = root().join("target/ui-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// One request to 127.0.0.1:`port` with its headers in the reply.
fn get(port: u16, path: &str, headers: &[(&str, &str)]) -> Reply {
    use std::io::{Read, Write};
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request_head(addr, "GET", path, headers, 0).as_bytes())
        .unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    parse_reply(&raw).expect("an HTTP reply")
}

/// chromedriver on a port of its own driving a fresh headless chromium profile; both
/// killed on drop.
struct Browser {
    rt: tokio::runtime::Runtime,
    client: Option<Client>,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn start() -> Browser {
        let chromium = require("chromium");
        let chromedriver = require("chromedriver");
        let port = free_port();
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let profile = tempfile::tempdir().unwrap();
        let rt = tokio::runtime::Runtime::new().unwrap();
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }),
        );
        let start = Instant::now();
        let client = loop {
            let attempt = rt.block_on(
                ClientBuilder::rustls()
                    .unwrap()
                    .capabilities(caps.clone())
                    .connect(&format!("http://127.0.0.1:{port}")),
            );
            match attempt {
                Ok(c) => break c,
                Err(e) if start.elapsed() > Duration::from_secs(30) => {
                    panic!("chromedriver did not start a session: {e}")
                }
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        };
        Browser {
            rt,
            client: Some(client),
            driver,
            _profile: profile,
        }
    }

    fn c(&self) -> &Client {
        self.client.as_ref().unwrap()
    }

    fn goto(&self, url: &str) {
        self.rt.block_on(self.c().goto(url)).unwrap();
    }

    fn js(&self, script: &str) -> Value {
        self.rt.block_on(self.c().execute(script, vec![])).unwrap()
    }

    fn click(&self, css: &str) {
        self.rt
            .block_on(async { self.c().find(Locator::Css(css)).await?.click().await })
            .unwrap();
    }

    /// The text of `<main>` as shown.
    fn main_text(&self) -> String {
        self.js("return document.getElementById('main').innerText")
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The names in the visible rows of the resources table.
    fn visible_rows(&self) -> Vec<String> {
        let v = self.js(
            "return Array.from(document.querySelectorAll('table.resources tbody tr'))\
             .filter(r => !r.hidden && r.offsetParent !== null)\
             .map(r => r.children[1].innerText)",
        );
        serde_json::from_value(v).unwrap()
    }

    fn screenshot(&self, name: &str) {
        let png = self.rt.block_on(self.c().screenshot()).unwrap();
        std::fs::write(shots().join(format!("{name}.png")), png).unwrap();
    }

    fn wait(&self, what: &str, timeout: Duration, mut f: impl FnMut(&Browser) -> bool) -> Duration {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if f(self) {
                return start.elapsed();
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let note = self.js("return (document.getElementById('refreshed') || {}).textContent");
        panic!(
            "timed out waiting for {what} (refresh: {note}); page text:\n{}",
            self.main_text()
        );
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(c) = self.client.take() {
            let _ = self.rt.block_on(c.close());
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn drift_project_tag(moto: &Moto, role: &str) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        moto.aws()
            .await
            .iam()
            .tag_role()
            .role_name(role)
            .tags(
                aws_sdk_iam::types::Tag::builder()
                    .key("project")
                    .value("changed-behind-the-daemons-back")
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
    });
}

fn state_of(d: &Daemon, name: &str) -> Option<String> {
    d.status()["resources"]
        .as_array()?
        .iter()
        .find(|r| r["name"] == name)
        .and_then(|r| r["state"].as_str().map(str::to_string))
}

#[test]
fn ui_shows_the_bundled_environment_filters_and_follows_drift() {
    let moto = Moto::start();
    let manifests = manifests_dir();
    let o = mlspace(&["apply", "--auto-approve"])
        .manifests(&manifests)
        .aws(&moto)
        .run();
    assert!(o.status.success(), "{}", text(&o));
    let token_dir = tempfile::tempdir().unwrap();
    let token = token_dir.path().join("control-token");
    std::fs::write(&token, "ui-test-control-token").unwrap();
    let d = Daemon::start(
        &moto,
        manifests.to_str().unwrap(),
        &[
            "--mode",
            "detect",
            "--control-token-file",
            token.to_str().unwrap(),
        ],
    );
    d.wait_until(
        "every resource reported in sync",
        Duration::from_secs(90),
        || {
            d.status()["resources"]
                .as_array()
                .is_some_and(|r| r.len() >= 30 && r.iter().all(|r| r["state"] == "in_sync"))
        },
    );
    let total = d.status()["resources"].as_array().unwrap().len();
    let base = format!("http://127.0.0.1:{}", d.port);
    let b = Browser::start();

    // The overview: the Environment, its account and region, who leads, the counts.
    b.goto(&format!("{base}/"));
    let text = b.main_text();
    for want in [
        "mlspace",
        "123456789012",
        "us-east-1",
        "this replica",
        "in_sync",
    ] {
        assert!(
            text.contains(want),
            "{want} missing from the overview:\n{text}"
        );
    }
    b.screenshot("overview");

    // The Environment: every resource by name, the filter without a reload.
    b.click("section.environment h2 a");
    b.wait("the Environment page", Duration::from_secs(10), |b| {
        b.visible_rows().len() == total
    });
    for name in ["mlspace-app-role", "mlspace-notebook-role", "mlspace-key"] {
        assert!(
            b.visible_rows().iter().any(|r| r == name),
            "{name} not listed"
        );
    }
    b.js("window.sameDocument = true; return null");
    b.click("nav.filter a[data-filter='drifted']");
    assert_eq!(b.visible_rows(), Vec::<String>::new());
    let url = b.js("return location.search");
    assert_eq!(url, "?state=drifted");
    b.click("nav.filter a[data-filter='in_sync']");
    assert_eq!(b.visible_rows().len(), total);
    b.click("nav.filter a[data-filter='drifted']");
    assert_eq!(
        b.js("return window.sameDocument"),
        true,
        "the filter reloaded the page"
    );
    // Linkable: the same filter from its URL, rendered by the server.
    b.goto(&format!("{base}/ui/environments/mlspace?state=in_sync"));
    assert_eq!(b.visible_rows().len(), total);
    b.goto(&format!("{base}/ui/environments/mlspace?state=drifted"));
    assert!(b.visible_rows().is_empty());
    b.js("window.sameDocument = true; return null");

    // Drift behind the daemon's back: in /status after a resync, on the open page (no
    // reload) within one refresh.
    drift_project_tag(&moto, "mlspace-app-role");
    d.wait_until("the drift in /status", Duration::from_secs(30), || {
        state_of(&d, "mlspace-app-role").as_deref() == Some("drifted")
    });
    let shown = b.wait(
        "the drift on the open page",
        Duration::from_secs(REFRESH_SECS + 3),
        |b| b.visible_rows() == ["mlspace-app-role"],
    );
    assert_eq!(
        b.js("return window.sameDocument"),
        true,
        "the page was reloaded"
    );
    eprintln!(
        "drift shown {:.1} s after /status had it",
        shown.as_secs_f64()
    );
    b.screenshot("environment-drifted");

    // Its page: the field diff of the pending change.
    b.click("table.resources tbody tr:not([hidden]) a");
    b.wait("the resource page", Duration::from_secs(10), |b| {
        b.main_text().contains("Pending change")
    });
    let text = b.main_text();
    assert!(text.contains("spec.tags.project"), "{text}");
    assert!(text.contains("changed-behind-the-daemons-back"), "{text}");
    b.screenshot("resource-drifted");

    b.goto(&format!("{base}/ui/environments/mlspace/history"));
    let text = b.main_text();
    assert!(text.contains("whole"), "{text}");
    assert!(text.contains("1 planned, not applied"), "{text}");
    b.screenshot("history");

    // Suspended through the control API, as the CLI does it: the open page says so, with
    // who and why, and lists every resource as suspended, within one refresh.
    b.goto(&format!("{base}/ui/environments/mlspace?state=suspended"));
    assert!(b.visible_rows().is_empty());
    b.js("window.sameDocument = true; return null");
    let o = mlspace(&[
        "suspend",
        "mlspace",
        "--reason",
        "audit <b>freeze</b>",
        "--by",
        "ops",
    ])
    .without_own_settings()
    .args(["--daemon", &base])
    .arg("--token-file")
    .arg(&token)
    .run();
    assert!(o.status.success(), "{}", crate::support::text(&o));
    b.wait(
        "the suspension on the open page",
        Duration::from_secs(REFRESH_SECS + 3),
        |b| b.visible_rows().len() == total,
    );
    let page = b.main_text();
    assert!(
        page.contains("suspended since") && page.contains("by ops: audit <b>freeze</b>"),
        "{page}"
    );
    assert_eq!(b.js("return window.sameDocument"), true);
    b.screenshot("environment-suspended");
}

const SCRIPT: &str = "<script>window.pwned=1;document.title='pwned'</script>";
const IMG: &str = "<img src=x onerror=\"window.pwned=2;document.title='pwned'\">";

fn environment() -> &'static str {
    "apiVersion: mlspace-gitops/v1\nkind: Environment\nmetadata: {name: hostile}\nspec:\n  region: us-east-1\n  account: \"123456789012\"\n"
}

fn role(description: &str) -> String {
    format!(
        "apiVersion: mlspace-gitops/v1\nkind: Role\nmetadata: {{name: payload-role}}\nspec:\n  description: {}\n  assumeRolePolicy:\n    Version: '2012-10-17'\n    Statement: [{{Effect: Allow, Principal: {{Service: ec2.amazonaws.com}}, Action: 'sts:AssumeRole'}}]\n",
        serde_json::to_string(description).unwrap()
    )
}

/// Nothing of a payload ran, no element came of it, and it shows as text.
fn assert_inert(b: &Browser, page: &str, payload: &str) {
    assert_eq!(
        b.js("return typeof window.pwned"),
        "undefined",
        "{page}: a payload ran"
    );
    assert_eq!(
        b.js("return document.title.includes('pwned')"),
        false,
        "{page}: a payload ran"
    );
    assert_eq!(
        b.js("return document.querySelectorAll('img').length"),
        0,
        "{page}: markup from git became an element"
    );
    let text = b.main_text();
    assert!(
        text.contains(payload),
        "{page}: {payload} not shown as text:\n{text}"
    );
}

#[test]
fn ui_keeps_payloads_from_git_inert_and_lists_refused_revisions() {
    let moto = Moto::start();
    let repo = Repo::new();
    let message = format!("{SCRIPT} {IMG}");
    let description = format!("{IMG}{SCRIPT}");
    repo.commit(
        &[
            ("manifests/env.yaml", environment()),
            ("manifests/role.yaml", &role(&description)),
        ],
        &message,
    );
    let d = Daemon::start(&moto, &repo.url(), &[]);
    d.wait_until("the role in sync", Duration::from_secs(60), || {
        state_of(&d, "payload-role").as_deref() == Some("in_sync")
    });
    // An invalid revision, its message a payload too: refused, with file and line.
    let bad = repo.commit(
        &[(
            "manifests/role.yaml",
            &role(&description).replace("assumeRolePolicy", "assumeRolePolicyy"),
        )],
        &message,
    );
    d.wait_until("the refusal", Duration::from_secs(30), || {
        d.status()["refused_revisions"][0]["revision"]["id"] == bad.as_str()
    });
    let base = format!("http://127.0.0.1:{}", d.port);

    // Every page carries the policy; the script and stylesheet come from the binary.
    let r = get(d.port, "/", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-security-policy"), Some(CSP));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(r.header("referrer-policy"), Some("no-referrer"));
    let etag = r.header("etag").unwrap().to_string();
    assert_eq!(get(d.port, "/", &[("If-None-Match", &etag)]).status, 304);
    // Nothing from another origin.
    assert!(
        !r.body.contains("src=\"http") && !r.body.contains("href=\"http"),
        "{}",
        r.body
    );
    let js = get(d.port, "/ui/assets/app.js", &[]);
    assert_eq!(js.status, 200);
    assert!(js
        .header("content-type")
        .unwrap()
        .starts_with("text/javascript"));

    let b = Browser::start();
    b.goto(&format!("{base}/"));
    assert_inert(&b, "overview", SCRIPT);
    assert_inert(&b, "overview", IMG);
    b.screenshot("payload-overview");

    b.goto(&format!(
        "{base}/ui/environments/hostile/resources/Role/payload-role"
    ));
    assert_inert(&b, "resource", &description);
    b.screenshot("payload-resource");

    b.goto(&format!("{base}/ui/environments/hostile"));
    assert_inert(&b, "environment", &description);

    b.goto(&format!("{base}/ui/refused"));
    assert_inert(&b, "refused", SCRIPT);
    let text = b.main_text();
    assert!(text.contains(&bad[..12]), "{text}");
    assert!(text.contains("invalid"), "{text}");
    assert!(text.contains("role.yaml:"), "no file:line in\n{text}");
    b.screenshot("payload-refused");

    // A refresh (new /status, same page) keeps them inert.
    std::thread::sleep(Duration::from_secs(REFRESH_SECS + 1));
    assert_inert(&b, "refused after a refresh", SCRIPT);
}

#[test]
fn ui_and_status_need_a_credential_when_an_auth_file_is_set() {
    use mlspace_gitops::http::{self, HttpState};
    use mlspace_gitops::status::{Readiness, Status};
    use mlspace_gitops::ui::UiAuth;

    // A malformed file stops the daemon at start, naming the file and line, not the value.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("ui-auth");
    std::fs::write(&bad, "token good-token\nbasic no-colon-hunter2\n").unwrap();
    let o = mlspace(&["run", "--source", dir.path().to_str().unwrap()])
        .arg("--ui-auth-file")
        .arg(&bad)
        .run();
    let out = text(&o);
    assert!(!o.status.success(), "{out}");
    assert!(out.contains(&format!("{}:2:", bad.display())), "{out}");
    assert!(
        !out.contains("hunter2") && !out.contains("good-token"),
        "{out}"
    );

    let file = dir.path().join("ui-auth-good");
    std::fs::write(
        &file,
        "# the UI's users\ntoken s3cret-token\nbasic ops:pass word\n",
    )
    .unwrap();
    let auth = UiAuth::from_file(&file).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let port = rt.block_on(async {
        let state = HttpState {
            registry: prometheus::Registry::new(),
            status: Arc::new(RwLock::new(Status::new("file:///m", "apply"))),
            readiness: Arc::new(Readiness::new(
                Duration::from_secs(60),
                Duration::from_secs(10),
            )),
            webhook_secret: None,
            trigger: Arc::new(tokio::sync::Notify::new()),
            control: Default::default(),
            ui_auth: Some(Arc::new(auth)),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(http::serve(listener, state, std::future::pending()));
        port
    });
    let call = |path: &str, auth: Option<&str>| {
        let headers: Vec<(&str, &str)> = auth.map(|a| ("Authorization", a)).into_iter().collect();
        get(port, path, &headers)
    };
    for path in [
        "/",
        "/status",
        "/ui/refused",
        "/ui/assets/app.js",
        "/ui/environments/x",
    ] {
        let r = call(path, None);
        assert_eq!(r.status, 401, "{path}");
        assert_eq!(
            r.header("www-authenticate"),
            Some("Basic realm=\"mlspace-gitops\", charset=\"UTF-8\""),
            "{path}"
        );
        assert_eq!(call(path, Some("Bearer wrong")).status, 401, "{path}");
        assert_eq!(call(path, Some("Basic b3BzOnBhc3M=")).status, 401, "{path}");
    }
    assert_eq!(call("/", Some("Bearer s3cret-token")).status, 200);
    assert_eq!(call("/status", Some("Bearer s3cret-token")).status, 200);
    // ops:pass word
    assert_eq!(call("/", Some("Basic b3BzOnBhc3Mgd29yZA==")).status, 200);
    // The probes, metrics and the webhook (signed on its own) stay open.
    assert_eq!(call("/healthz", None).status, 200);
    assert_eq!(call("/metrics", None).status, 200);
    assert_eq!(call("/readyz", None).status, 503);

    // A browser given the user and password loads the page, its assets and its refreshes.
    let b = Browser::start();
    b.goto(&format!("http://127.0.0.1:{port}/"));
    // Without them, no page (the browser asks for the user and password).
    assert_eq!(
        b.js("return document.getElementById('main') === null"),
        true
    );
    b.goto(&format!("http://ops:pass%20word@127.0.0.1:{port}/"));
    assert!(b.main_text().contains("Environments"));
    assert_eq!(
        b.js("return getComputedStyle(document.querySelector('header')).borderBottomStyle"),
        "solid",
        "the stylesheet did not load"
    );
    b.wait("a refresh", Duration::from_secs(REFRESH_SECS + 5), |b| {
        b.js("return document.getElementById('refreshed').textContent")
            .as_str()
            .is_some_and(|t| t.starts_with("updated"))
    });
    b.screenshot("auth-basic");
}
