//! Locations inside a policy document, kept in two spellings at once.
//!
//! Issues carry an RFC 6901 JSON pointer for machines and a dotted label such as
//! `Statement[2].Condition.StringEquals` for messages; building both together keeps
//! them in step.

/// A location in the document: JSON pointer plus human label.
#[derive(Debug, Clone, Default)]
pub(crate) struct Loc {
    pub(crate) pointer: String,
    pub(crate) label: String,
}

impl Loc {
    /// The document root (`""` pointer).
    pub(crate) fn root() -> Self {
        Self::default()
    }

    /// The member `key` of the object at this location.
    pub(crate) fn key(&self, key: &str) -> Self {
        let mut pointer = String::with_capacity(self.pointer.len() + key.len() + 1);
        pointer.push_str(&self.pointer);
        pointer.push('/');
        // RFC 6901: '~' must be escaped before '/', or "~1" would be mangled.
        for c in key.chars() {
            match c {
                '~' => pointer.push_str("~0"),
                '/' => pointer.push_str("~1"),
                _ => pointer.push(c),
            }
        }
        let label = if self.label.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{}", self.label, key)
        };
        Self { pointer, label }
    }

    /// The element `index` of the array at this location.
    pub(crate) fn index(&self, index: usize) -> Self {
        Self {
            pointer: format!("{}/{}", self.pointer, index),
            label: format!("{}[{}]", self.label, index),
        }
    }

    /// The label for messages; the root is called "the policy document".
    pub(crate) fn name(&self) -> &str {
        if self.label.is_empty() {
            "the policy document"
        } else {
            &self.label
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointer_escapes_tilde_and_slash() {
        let loc = Loc::root()
            .key("Statement")
            .index(0)
            .key("Condition")
            .key("StringEquals")
            .key("aws:RequestTag/a~b");
        assert_eq!(
            loc.pointer,
            "/Statement/0/Condition/StringEquals/aws:RequestTag~1a~0b"
        );
        assert_eq!(
            loc.label,
            "Statement[0].Condition.StringEquals.aws:RequestTag/a~b"
        );
    }

    #[test]
    fn root_is_empty_pointer() {
        assert_eq!(Loc::root().pointer, "");
        assert_eq!(Loc::root().name(), "the policy document");
    }
}
