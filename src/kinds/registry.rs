//! The registry macro: from one list of kinds it generates everything that enumerates them,
//! so a new kind is a folder plus one line in `src/kinds/mod.rs`.
//!
//! A macro rather than trait objects: the enums it writes ([`super::Kind`],
//! [`super::ResourceSpec`], [`super::Step`], [`super::Observed`]) keep their static types,
//! derive serde and JSON Schema, and can be matched on; trait objects would need
//! `Any`-downcasts wherever a stage hands a kind's own types back to it.
//!
//! Each line is `Var => resource module::Type,` or `Var => document module::Type,` (a
//! document only feeds others, like `EcrAccess`); the order of the lines is the order of
//! [`super::Kind`]. For each line it declares `pub mod module;`, a `Var` variant of `Kind`
//! and `ResourceSpec`, and the [`super::core::Registered`] glue. A resource line adds a
//! variant of `Step` and a field of `Observed`, the [`super::core::ResourceKind`] glue, and
//! an arm in each dispatcher (`visit_resource_kinds`, `with_kind`, and with the `runtime`
//! feature `visit_aws_kinds` and `Step::run`).

/// See the module documentation.
macro_rules! registry {
    // Sort the lines into all kinds, resources and documents, keeping their order.
    (@split [$($all:tt)*] [$($res:tt)*] [$($doc:tt)*]
        $(#[$m:meta])* $var:ident => resource $module:ident :: $ty:ident, $($rest:tt)*) => {
        $crate::kinds::registry::registry!(@split
            [$($all)* ($(#[$m])* $var $module $ty)]
            [$($res)* ($(#[$m])* $var $module $ty)]
            [$($doc)*]
            $($rest)*);
    };
    (@split [$($all:tt)*] [$($res:tt)*] [$($doc:tt)*]
        $(#[$m:meta])* $var:ident => document $module:ident :: $ty:ident, $($rest:tt)*) => {
        $crate::kinds::registry::registry!(@split
            [$($all)* ($(#[$m])* $var $module $ty)]
            [$($res)*]
            [$($doc)* ($(#[$m])* $var $module $ty)]
            $($rest)*);
    };
    (@split
        [$( ($(#[$adoc:meta])* $avar:ident $amod:ident $aty:ident) )*]
        [$( ($(#[$rdoc:meta])* $rvar:ident $rmod:ident $rty:ident) )*]
        [$( ($(#[$ddoc:meta])* $dvar:ident $dmod:ident $dty:ident) )*]
    ) => {
        $( pub mod $amod; )*

        /// Every kind a manifest document may have, in the order resources are listed and
        /// created (deletes run in the reverse order).
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash,
            serde::Serialize, serde::Deserialize, schemars::JsonSchema,
        )]
        pub enum Kind {
            /// The account, region, placeholders and default tags: exactly one per
            /// manifests directory.
            Environment,
            $( $(#[$adoc])* $avar, )*
        }

        impl Kind {
            /// Every kind, the Environment first.
            pub const ALL: &'static [Kind] = &[Kind::Environment $(, Kind::$avar)*];

            /// The kinds that are AWS resources of their own: observed, planned, applied,
            /// imported.
            pub const RESOURCES: &'static [Kind] = &[$(Kind::$rvar),*];

            /// The name used in manifests.
            pub fn as_str(self) -> &'static str {
                match self {
                    Kind::Environment => "Environment",
                    $( Kind::$avar => stringify!($avar), )*
                }
            }

            /// What the registry knows of this kind as plain values.
            pub fn info(self) -> $crate::kinds::core::KindInfo {
                use $crate::kinds::core::KindInfo;
                match self {
                    Kind::Environment => KindInfo::ENVIRONMENT,
                    $( Kind::$rvar => KindInfo::of_resource::<$rmod::$rty>(), )*
                    $( Kind::$dvar => KindInfo::of_document::<$dmod::$dty>(), )*
                }
            }
        }

        /// The typed spec of a document other than the Environment.
        #[derive(Debug, Clone, PartialEq, serde::Serialize)]
        #[serde(untagged)]
        pub enum ResourceSpec {
            $( $(#[$adoc])* $avar(<$amod::$aty as $crate::kinds::core::DocKind>::Spec), )*
        }

        impl ResourceSpec {
            /// The kind of this spec.
            pub fn kind(&self) -> Kind {
                match self {
                    $( ResourceSpec::$avar(_) => Kind::$avar, )*
                }
            }

            /// The ARN the resource has in `at` (none for documents and ARN-less kinds).
            pub fn arn(&self, name: &str, at: $crate::kinds::core::Place) -> Option<String> {
                use $crate::kinds::core::KindPlan;
                match self {
                    $( ResourceSpec::$rvar(s) => <$rmod::$rty as KindPlan>::arn(name, s, at), )*
                    $( ResourceSpec::$dvar(_) => None, )*
                }
            }

            /// How CloudTrail events name the resource besides its ARN
            /// ([`core::KindPlan::event_objects`]; none for documents).
            pub fn event_objects(&self, name: &str) -> Vec<$crate::kinds::core::AwsObject> {
                use $crate::kinds::core::KindPlan;
                match self {
                    $( ResourceSpec::$rvar(s) => <$rmod::$rty as KindPlan>::event_objects(name, s), )*
                    $( ResourceSpec::$dvar(_) => Vec::new(), )*
                }
            }

            /// The resources that must exist before this one is created or changed
            /// ([`core::KindPlan::depends_on`]; none for documents).
            pub fn depends_on(
                &self,
                name: &str,
                cx: &$crate::kinds::core::PlanCx,
            ) -> Vec<$crate::kinds::core::ResourceId> {
                use $crate::kinds::core::KindPlan;
                match self {
                    $( ResourceSpec::$rvar(s) => <$rmod::$rty as KindPlan>::depends_on(name, s, cx), )*
                    $( ResourceSpec::$dvar(_) => Vec::new(), )*
                }
            }

            /// Whether the manifest allows deleting the resource with its contents.
            pub fn force_destroy(&self) -> bool {
                use $crate::kinds::core::KindPlan;
                match self {
                    $( ResourceSpec::$rvar(s) => <$rmod::$rty as KindPlan>::force_destroy(s), )*
                    $( ResourceSpec::$dvar(_) => false, )*
                }
            }
        }

        /// One executable step of a change. Each kind defines its own steps as plain data;
        /// the executor hands them back to the kind without making any decision of its own.
        #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
        #[serde(tag = "kind", content = "op")]
        pub enum Step {
            $( $(#[$rdoc])* $rvar(<$rmod::$rty as $crate::kinds::core::KindPlan>::Op), )*
        }

        impl Step {
            /// The kind the step belongs to.
            pub fn kind(&self) -> Kind {
                match self {
                    $( Step::$rvar(_) => Kind::$rvar, )*
                }
            }
        }

        /// What AWS holds, per kind and name (absent resources are not in the maps). The
        /// fields are named as the kinds; use [`core::ResourceKind::observed`] to reach one.
        #[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(non_snake_case)]
        pub struct Observed {
            $(
                #[doc = concat!("Observed ", stringify!($rvar), " resources by name.")]
                #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
                pub $rvar: std::collections::BTreeMap<
                    String,
                    <$rmod::$rty as $crate::kinds::core::KindPlan>::Observed,
                >,
            )*
        }

        impl Observed {
            /// The value of `attribute` of the observed `kind` resource `name`, when AWS has
            /// it (a reference's value).
            pub fn attribute(&self, kind: Kind, name: &str, attribute: &str) -> Option<String> {
                use $crate::kinds::core::KindPlan;
                match kind {
                    $( Kind::$rvar => self.$rvar.get(name).and_then(|o| {
                        <$rmod::$rty as KindPlan>::observed_attribute(name, o, attribute)
                    }), )*
                    _ => None,
                }
            }
        }

        /// A value shaped like `attribute` of `kind` resource `name`
        /// ([`core::KindPlan::stand_in`]); `None` for documents and unknown attributes.
        pub fn stand_in(
            kind: Kind,
            name: &str,
            attribute: &str,
            at: $crate::kinds::core::Place,
        ) -> Option<String> {
            use $crate::kinds::core::KindPlan;
            match kind {
                $( Kind::$rvar => <$rmod::$rty as KindPlan>::stand_in(name, attribute, at), )*
                _ => None,
            }
        }

        /// Read the attributes of `kind` resource `name` from AWS (an executor resolving a
        /// reference to a resource it just created); empty when it does not exist.
        #[cfg(feature = "runtime")]
        pub fn observe_attributes<'a>(
            kind: Kind,
            aws: &'a $crate::aws::AwsContext,
            name: &'a str,
            cx: &'a $crate::kinds::core::PlanCx,
        ) -> futures::future::BoxFuture<
            'a,
            Result<std::collections::BTreeMap<String, String>, $crate::aws::AwsError>,
        > {
            Box::pin(async move {
                use $crate::kinds::core::KindPlan;
                use $crate::kinds::runtime::KindAws;
                match kind {
                    $( Kind::$rvar => {
                        let found = <$rmod::$rty as KindAws>::observe_names(aws, &[name.to_string()], cx).await?;
                        Ok(found
                            .get(name)
                            .map(|o| {
                                <$rmod::$rty as KindPlan>::ATTRIBUTES
                                    .iter()
                                    .filter_map(|a| Some((a.to_string(), <$rmod::$rty as KindPlan>::observed_attribute(name, o, a)?)))
                                    .collect()
                            })
                            .unwrap_or_default())
                    } )*
                    _ => Ok(std::collections::BTreeMap::new()),
                }
            })
        }

        $(
            impl $crate::kinds::core::Registered for $rmod::$rty {
                fn wrap(spec: Self::Spec) -> ResourceSpec {
                    ResourceSpec::$rvar(spec)
                }
                fn spec(s: &ResourceSpec) -> Option<&Self::Spec> {
                    match s {
                        ResourceSpec::$rvar(x) => Some(x),
                        _ => None,
                    }
                }
                fn spec_mut(s: &mut ResourceSpec) -> Option<&mut Self::Spec> {
                    match s {
                        ResourceSpec::$rvar(x) => Some(x),
                        _ => None,
                    }
                }
            }

            impl $crate::kinds::core::ResourceKind for $rmod::$rty {
                fn step(op: Self::Op) -> Step {
                    Step::$rvar(op)
                }
                fn observed(o: &Observed) -> &std::collections::BTreeMap<String, Self::Observed> {
                    &o.$rvar
                }
                fn observed_mut(
                    o: &mut Observed,
                ) -> &mut std::collections::BTreeMap<String, Self::Observed> {
                    &mut o.$rvar
                }
            }
        )*

        $(
            impl $crate::kinds::core::Registered for $dmod::$dty {
                fn wrap(spec: Self::Spec) -> ResourceSpec {
                    ResourceSpec::$dvar(spec)
                }
                #[allow(unreachable_patterns)]
                fn spec(s: &ResourceSpec) -> Option<&Self::Spec> {
                    match s {
                        ResourceSpec::$dvar(x) => Some(x),
                        _ => None,
                    }
                }
                #[allow(unreachable_patterns)]
                fn spec_mut(s: &mut ResourceSpec) -> Option<&mut Self::Spec> {
                    match s {
                        ResourceSpec::$dvar(x) => Some(x),
                        _ => None,
                    }
                }
            }
        )*

        /// Call `v` once per resource kind, in registry order.
        pub fn visit_resource_kinds(v: &mut impl $crate::kinds::core::ResourceVisitor) {
            $( v.visit::<$rmod::$rty>(); )*
        }

        /// Call `f` with the types of `kind`; `None` for the Environment, which is no
        /// registered kind.
        pub fn with_kind<R>(kind: Kind, f: impl $crate::kinds::core::KindFn<R>) -> Option<R> {
            match kind {
                Kind::Environment => None,
                $( Kind::$rvar => Some(f.resource::<$rmod::$rty>()), )*
                $( Kind::$dvar => Some(f.document::<$dmod::$dty>()), )*
            }
        }

        /// Call `v` once per resource kind with its AWS half, in registry order.
        #[cfg(feature = "runtime")]
        pub fn visit_aws_kinds(v: &mut impl $crate::kinds::runtime::AwsVisitor) {
            $( v.visit::<$rmod::$rty>(); )*
        }

        #[cfg(feature = "runtime")]
        impl Step {
            /// Run the step through its kind. Steps are idempotent.
            pub async fn run(
                &self,
                aws: &$crate::aws::AwsContext,
                name: &str,
                cx: &$crate::kinds::core::PlanCx,
            ) -> Result<(), $crate::aws::AwsError> {
                use $crate::kinds::runtime::KindAws;
                match self {
                    $( Step::$rvar(op) => <$rmod::$rty as KindAws>::apply(aws, name, op, cx).await, )*
                }
            }
        }
    };
    // The registration lines.
    ($($lines:tt)*) => {
        $crate::kinds::registry::registry!(@split [] [] [] $($lines)*);
    };
}

pub(crate) use registry;
