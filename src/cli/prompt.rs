//! `apply`'s gate: once every Environment has planned, print the plans and ask once for
//! all of them (or not at all with `--auto-approve`, or when nothing would change).

use std::io::IsTerminal;
use std::sync::Mutex;

use async_trait::async_trait;
use tokio::sync::watch;

use mlspace_gitops::pipeline::{Approval, Gate};
use mlspace_gitops::plan::Plan;

/// Waits for every Environment's plan, then decides for all of them.
pub struct Prompt {
    /// (Environment, heading), in the order the plans are printed.
    environments: Vec<(String, String)>,
    several: bool,
    auto_approve: bool,
    state: Mutex<State>,
    decision: watch::Sender<Option<bool>>,
}

#[derive(Default)]
struct State {
    plans: Vec<(String, Plan)>,
    skipped: usize,
    /// Why applying was refused without asking (no terminal to ask on).
    refusal: Option<String>,
    cancelled: bool,
}

impl Prompt {
    /// A gate for these Environments (name and heading each).
    pub fn new(environments: Vec<(String, String)>, several: bool, auto_approve: bool) -> Self {
        Prompt {
            environments,
            several,
            auto_approve,
            state: Mutex::default(),
            decision: watch::channel(None).0,
        }
    }

    /// Why the apply was refused without a question, if it was.
    pub fn refusal(&self) -> Option<String> {
        self.lock().refusal.clone()
    }

    /// Whether a person said no.
    pub fn cancelled(&self) -> bool {
        self.lock().cancelled
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Decide once every Environment has planned or dropped out.
    fn decide_when_complete(&self, st: &mut State) {
        if st.plans.len() + st.skipped < self.environments.len() {
            return;
        }
        for (env, heading) in &self.environments {
            if let Some((_, plan)) = st.plans.iter().find(|(e, _)| e == env) {
                if self.several {
                    println!("{heading}");
                }
                print!("{plan}");
            }
        }
        let changes = st.plans.iter().any(|(_, p)| p.has_changes());
        let yes = if !changes || self.auto_approve {
            true
        } else if !std::io::stdin().is_terminal() {
            st.refusal = Some(
                "refusing to apply without confirmation: no terminal to ask on; pass --auto-approve"
                    .into(),
            );
            false
        } else {
            eprint!("\nApply these changes? Only 'yes' is accepted: ");
            let mut answer = String::new();
            let read = tokio::task::block_in_place(|| std::io::stdin().read_line(&mut answer));
            let yes = read.is_ok() && answer.trim() == "yes";
            st.cancelled = !yes;
            yes
        };
        if yes && changes {
            println!();
        }
        self.decision.send_replace(Some(yes));
    }
}

#[async_trait]
impl Gate for Prompt {
    async fn approve(&self, environment: &str, plan: &Plan) -> Approval {
        let mut rx = self.decision.subscribe();
        {
            let mut st = self.lock();
            st.plans.push((environment.to_string(), plan.clone()));
            self.decide_when_complete(&mut st);
        }
        let yes = loop {
            if let Some(yes) = *rx.borrow_and_update() {
                break yes;
            }
            if rx.changed().await.is_err() {
                break false;
            }
        };
        if yes {
            Approval::All
        } else {
            Approval::Cancel
        }
    }

    fn skipped(&self, _: &str) {
        let mut st = self.lock();
        st.skipped += 1;
        self.decide_when_complete(&mut st);
    }
}
