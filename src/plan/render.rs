//! Text rendering of a plan, in the manner of a Terraform plan.

use std::fmt;

use serde_json::Value;

use super::{AccessChange, Action, Change, FieldChange, Plan};
use crate::syntax::refs;

/// A value on one line; a reference whose value AWS has not assigned yet reads
/// `(known after apply: KIND/NAME.ATTRIBUTE)`, as Terraform shows such values.
fn compact(v: &Value) -> String {
    let text = serde_json::to_string(v).expect("plain data");
    if !text.contains(refs::PREFIX) {
        return text;
    }
    let mut shown = v.clone();
    refs::substitute(&mut shown, &|r| Some(format!("(known after apply: {r})")));
    serde_json::to_string(&shown).expect("plain data")
}

impl fmt::Display for FieldChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.old, &self.new) {
            (None, Some(n)) => write!(f, "+ {}: {}", self.field, compact(n)),
            (Some(o), None) => write!(f, "- {}: {}", self.field, compact(o)),
            (Some(o), Some(n)) => write!(f, "~ {}: {} → {}", self.field, compact(o), compact(n)),
            (None, None) => write!(f, "~ {}", self.field),
        }
    }
}

impl fmt::Display for AccessChange {
    /// `    access (SUBJECT): NOTE` then one indented line a grant.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "    access ({})", self.subject)?;
        if let Some(n) = &self.note {
            write!(f, ": {n}")?;
        }
        writeln!(f)?;
        for line in self.delta.to_string().lines() {
            writeln!(f, "      {line}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.action {
            Action::Create => "will be created",
            Action::Update => "will be updated in place",
            Action::Delete => "will be deleted",
            Action::Forget => "will be forgotten (kept in AWS, ownership tag removed)",
            Action::Conflict => "is not managed by mlspace-gitops",
            Action::NoOp => "is up to date",
            Action::Skip => "is skipped",
            Action::Drift => "has drifted (observed only, not written)",
        };
        writeln!(
            f,
            "{} {} {} {what}",
            self.action.symbol(),
            self.kind,
            self.name
        )?;
        write_change_body(f, self, true)
    }
}

/// The lines under a change's heading: its fields, its reason, and its access delta when
/// `with_access`.
pub fn write_change_body(f: &mut impl fmt::Write, c: &Change, with_access: bool) -> fmt::Result {
    for fc in &c.fields {
        writeln!(f, "    {fc}")?;
    }
    if let Some(r) = &c.reason {
        writeln!(f, "    {r}")?;
    }
    if with_access {
        for a in &c.access {
            write!(f, "{a}")?;
        }
    }
    Ok(())
}

impl Plan {
    /// The counts line: `Plan: 1 to create, 0 to update, 0 to delete.` and what else applies.
    pub fn headline(&self) -> String {
        let s = &self.summary;
        let mut line = format!(
            "Plan: {} to create, {} to update, {} to delete.",
            s.create, s.update, s.delete
        );
        if s.forget > 0 {
            line.push_str(&format!(" {} to forget.", s.forget));
        }
        if s.conflict > 0 {
            line.push_str(&format!(" {} not managed (conflict).", s.conflict));
        }
        if s.errors > 0 {
            line.push_str(&format!(" {} refused.", s.errors));
        }
        if s.drift > 0 {
            line.push_str(&format!(" {} drifted, observed only.", s.drift));
        }
        if s.skip > 0 {
            line.push_str(&format!(" {} skipped (reconcile disabled).", s.skip));
        }
        line
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown: Vec<&Change> = self
            .changes
            .iter()
            .filter(|c| c.action != Action::NoOp)
            .collect();
        if shown.is_empty() && self.errors.is_empty() {
            let n = self.summary.no_op;
            writeln!(
                f,
                "No changes. AWS matches the manifests ({n} resource{}).",
                if n == 1 { "" } else { "s" }
            )?;
        }
        for c in shown {
            writeln!(f, "{c}")?;
        }
        for e in &self.errors {
            writeln!(f, "error: {e}")?;
        }
        writeln!(f, "{}", self.headline())?;
        if let Some(a) = &self.access {
            writeln!(f, "{a}")?;
        }
        Ok(())
    }
}
