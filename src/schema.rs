//! The JSON Schema of a manifest document, built with schemars from the same spec types the
//! loader deserializes into, so it cannot disagree with them on field names, types, defaults
//! or unknown fields. `mlspace-gitops schema` prints it for editors (yaml-language-server).
//!
//! The schema checks structure only: placeholders, name rules, references between documents
//! and policy documents are `mlspace-gitops validate`'s job.

use schemars::generate::SchemaSettings;
use schemars::SchemaGenerator;
use serde_json::{json, Map, Value};

use crate::kinds::common::Metadata;
use crate::kinds::environment::EnvironmentSpec;
use crate::kinds::{with_kind, Kind, KindFn, Registered};
use crate::manifest::API_VERSION;

/// The schema's title, also what editors show for the whole document.
pub const TITLE: &str = "mlspace-gitops manifest (mlspace-gitops/v1)";

/// The `spec` schema of `kind` (a `$ref` into the generator's definitions).
fn spec_ref(generator: &mut SchemaGenerator, kind: Kind) -> Value {
    struct SpecRef<'a>(&'a mut SchemaGenerator);
    impl KindFn<Value> for SpecRef<'_> {
        fn document<K: Registered>(self) -> Value {
            self.0.subschema_for::<K::Spec>().to_value()
        }
    }
    with_kind(kind, SpecRef(generator))
        .unwrap_or_else(|| generator.subschema_for::<EnvironmentSpec>().to_value())
}

/// The JSON Schema (draft-07, which every yaml-language-server release reads) of one
/// manifest document: the four header fields, then, per `kind`, the matching `spec` type
/// through `if`/`then`, so an editor completes and checks the fields of that kind only.
pub fn manifest_schema() -> Value {
    let mut generator = SchemaSettings::draft07().into_generator();
    let metadata = generator.subschema_for::<Metadata>().to_value();
    // `if kind == K then spec is KSpec`, one branch per kind; `allOf` lets every branch
    // apply, and only the one whose `if` holds constrains anything.
    let per_kind: Vec<Value> = Kind::ALL
        .iter()
        .copied()
        .map(|kind| {
            json!({
                "if": {
                    "properties": {"kind": {"const": kind.as_str()}},
                    "required": ["kind"]
                },
                "then": {
                    "properties": {"spec": spec_ref(&mut generator, kind)}
                }
            })
        })
        .collect();
    let kinds: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
    let definitions: Map<String, Value> = generator.take_definitions(true);
    json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": TITLE,
        "description": "One document of an mlspace-gitops manifests directory. \
            `mlspace-gitops validate` checks what a schema cannot: placeholders, AWS name \
            rules, references between documents and policy documents.",
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "additionalProperties": false,
        "properties": {
            "apiVersion": {
                "description": "The manifest format version; this release reads only this one.",
                "const": API_VERSION
            },
            "kind": {
                "description": "What the document describes; `spec` holds that kind's fields.",
                "enum": kinds
            },
            "metadata": metadata,
            "spec": {
                "description": "The kind's fields. Unknown fields are errors in every kind.",
                "type": "object"
            }
        },
        "allOf": per_kind,
        "definitions": definitions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_branch_whose_spec_resolves() {
        let s = manifest_schema();
        let branches = s["allOf"].as_array().unwrap();
        assert_eq!(branches.len(), Kind::ALL.len());
        for b in branches {
            let r = b["then"]["properties"]["spec"]["$ref"].as_str().unwrap();
            let name = r.strip_prefix("#/definitions/").unwrap();
            assert!(s["definitions"][name].is_object(), "{r} is not defined");
        }
    }

    #[test]
    fn output_is_deterministic() {
        assert_eq!(manifest_schema(), manifest_schema());
    }
}
