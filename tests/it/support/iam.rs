//! The role tags the daemon tests write behind the daemon's back (drift) and read back (its
//! repair), in one place.

use aws_sdk_iam::types::Tag;

/// Tag `role` with `key=value`, as a person would in the console.
pub async fn tag_role(iam: &aws_sdk_iam::Client, role: &str, key: &str, value: &str) {
    iam.tag_role()
        .role_name(role)
        .tags(Tag::builder().key(key).value(value).build().unwrap())
        .send()
        .await
        .unwrap_or_else(|e| panic!("tagging {role}: {e:?}"));
}

/// The value of `role`'s tag `key`; `None` when the role or the tag is missing.
pub async fn role_tag(iam: &aws_sdk_iam::Client, role: &str, key: &str) -> Option<String> {
    let r = iam.get_role().role_name(role).send().await.ok()?;
    r.role()?
        .tags()
        .iter()
        .find(|t| t.key() == key)
        .map(|t| t.value().to_string())
}

/// Every tag of `role`, as (key, value), in IAM's order.
pub async fn role_tags(iam: &aws_sdk_iam::Client, role: &str) -> Vec<(String, String)> {
    iam.list_role_tags()
        .role_name(role)
        .send()
        .await
        .unwrap_or_else(|e| panic!("listing the tags of {role}: {e:?}"))
        .tags
        .into_iter()
        .map(|t| (t.key, t.value))
        .collect()
}
