//! Policies: typed settings (passcode, restrictions, Wi-Fi, VPN) checked
//! against Apple's schema for their payload, stored with their secrets
//! sealed, and turned into configuration profiles with stable identifiers.
//!
//! A secret — any value under a key named in [`SECRET_KEYS`], at any depth
//! — is taken out of the settings before they are stored, sealed with the
//! master key (bound to the policy's ID) and put back only when the
//! profile for a device is built. The API shows which secrets are set
//! (their JSON pointers), never their values. An update that leaves a
//! secret out keeps it; `null` clears it.

use crate::access::permit::{CommandsWrite, DevicesRead};
use crate::access::Authorized;
use crate::access::ClientContext;
use crate::access::Operator;
use crate::{CoreError, CoreResult, Services};
use mamori_domain::{AuditAction, Outcome};
use mamori_domain::{Policy, PolicyKind};
use serde::Deserialize;
use serde_json::Value as Json;
use std::collections::BTreeMap;
use zeroize::Zeroizing;

/// Keys whose values are secrets, wherever they appear in a payload.
/// (`tests::every_secret_of_apples_schema_is_sealed` checks the list
/// against Apple's schema of every policy kind.)
pub const SECRET_KEYS: &[&str] = &[
    "Password",
    "UserPassword",
    "SharedSecret",
    "AuthPassword",
    "PayloadCertificatePassword",
    "XAuthPassword",
    "ProxyPassword",
    "HTTPProxyPassword",
    "PPK",
];

/// A new policy, as the API takes it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyInput {
    /// Unique name.
    pub name: String,
    /// `passcode`, `restrictions`, `wifi` or `vpn`.
    pub kind: String,
    /// The payload's keys (Apple's names), e.g. `{"minLength": 8}`.
    pub settings: Json,
    /// Platforms it is for (`iOS`, `macOS`, `tvOS`, `visionOS`,
    /// `watchOS`); keys that do not exist there are refused. Default: any.
    #[serde(default)]
    pub platforms: Vec<String>,
}

/// Changes to a policy.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyChange {
    /// New name.
    pub name: Option<String>,
    /// New settings (replace the old; secrets left out are kept).
    pub settings: Option<Json>,
    /// New platforms.
    pub platforms: Option<Vec<String>>,
    /// The version the change was made from: refused if the policy has
    /// changed since (someone else saved it meanwhile).
    pub expected_version: Option<i64>,
}

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// Takes the secrets out of `v`: pointer → value; `null` secrets are
/// removed and listed in `cleared`.
fn extract_secrets(
    v: &mut Json,
    at: &str,
    out: &mut BTreeMap<String, Json>,
    cleared: &mut Vec<String>,
) {
    match v {
        Json::Object(map) => {
            let keys: Vec<String> = map.keys().cloned().collect();
            for k in keys {
                let here = format!("{at}/{}", escape(&k));
                if SECRET_KEYS.contains(&k.as_str()) && !map.get(&k).is_some_and(Json::is_object) {
                    if let Some(val) = map.remove(&k) {
                        if val.is_null() {
                            cleared.push(here);
                        } else {
                            out.insert(here, val);
                        }
                    }
                } else if let Some(child) = map.get_mut(&k) {
                    extract_secrets(child, &here, out, cleared);
                }
            }
        }
        Json::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                extract_secrets(item, &format!("{at}/{i}"), out, cleared);
            }
        }
        _ => {}
    }
}

/// Puts secrets back where their pointers say (skipping any whose parent
/// is gone from the settings).
fn insert_secrets(v: &mut Json, secrets: &BTreeMap<String, Json>) {
    for (pointer, value) in secrets {
        let Some((parent, key)) = pointer.rsplit_once('/') else {
            continue;
        };
        let key = key.replace("~1", "/").replace("~0", "~");
        let target = if parent.is_empty() {
            Some(&mut *v)
        } else {
            v.pointer_mut(parent)
        };
        if let Some(Json::Object(map)) = target {
            map.insert(key, value.clone());
        }
    }
}

/// A policy as it may be shown: a secret an older build stored in the
/// clear (its key named in [`SECRET_KEYS`] since) is taken out and listed
/// among the secrets set, like a sealed one.
fn without_clear_secrets(p: &mut Policy) {
    let mut found = BTreeMap::new();
    extract_secrets(&mut p.settings, "", &mut found, &mut Vec::new());
    for pointer in found.into_keys() {
        if !p.secrets.contains(&pointer) {
            p.secrets.push(pointer);
        }
    }
}

/// The platforms a policy can be limited to.
pub const PLATFORMS: &[&str] = &["iOS", "macOS", "tvOS", "visionOS", "watchOS"];

fn check_platforms(
    kind: PolicyKind,
    platforms: &[String],
    settings: &Json,
) -> CoreResult<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for p in platforms {
        if !PLATFORMS.contains(&p.as_str()) {
            return Err(CoreError::BadRequest(format!(
                "platforms: unknown platform {p:?}; platforms: {}",
                PLATFORMS.join(", ")
            )));
        }
        mamori_protocol::schema::check_payload_platform(kind.payload_type(), settings, p)
            .map_err(|e| CoreError::BadRequest(format!("invalid settings: {e}")))?;
        if !out.contains(p) {
            out.push(p.clone());
        }
    }
    Ok(out)
}

fn uuid_upper(u: uuid::Uuid) -> String {
    u.hyphenated().to_string().to_ascii_uppercase()
}

impl Services {
    fn seal_secrets(&self, id: &str, s: &BTreeMap<String, Json>) -> CoreResult<Option<Vec<u8>>> {
        if s.is_empty() {
            return Ok(None);
        }
        let plain =
            Zeroizing::new(serde_json::to_vec(s).map_err(|e| CoreError::Internal(e.into()))?);
        Ok(Some(
            self.pki
                .secret_box
                .seal(&plain, Some(format!("policy/{id}").as_bytes()))
                .map_err(|e| CoreError::Internal(e.into()))?,
        ))
    }

    fn open_secrets(&self, id: &str, sealed: Option<&[u8]>) -> CoreResult<BTreeMap<String, Json>> {
        let Some(sealed) = sealed else {
            return Ok(BTreeMap::new());
        };
        let plain = self
            .pki
            .secret_box
            .open(sealed, Some(format!("policy/{id}").as_bytes()))
            .map_err(|e| CoreError::internal("policy secrets do not open", e))?;
        serde_json::from_slice(&plain).map_err(|e| CoreError::Internal(e.into()))
    }

    /// Splits settings into what is stored in the clear and the secrets,
    /// and checks the whole against Apple's schema for the payload.
    fn checked_settings(
        kind: PolicyKind,
        settings: &Json,
        kept: BTreeMap<String, Json>,
    ) -> CoreResult<(Json, BTreeMap<String, Json>)> {
        if !settings.is_object() {
            return Err(CoreError::BadRequest("settings must be an object".into()));
        }
        let mut clear = settings.clone();
        let mut secrets = BTreeMap::new();
        let mut cleared = Vec::new();
        extract_secrets(&mut clear, "", &mut secrets, &mut cleared);
        let mut all = kept;
        all.retain(|k, _| !cleared.contains(k));
        all.extend(secrets);
        let mut full = clear.clone();
        insert_secrets(&mut full, &all);
        // Secrets whose place is gone from the new settings are dropped.
        all.retain(|pointer, _| full.pointer(pointer).is_some());
        mamori_protocol::schema::validate_payload(kind.payload_type(), &full)
            .map_err(|e| CoreError::BadRequest(format!("invalid settings: {e}")))?;
        Ok((clear, all))
    }

    /// Adds a policy.
    pub async fn create_policy(
        &self,
        by: &Authorized<CommandsWrite>,
        ctx: &ClientContext,
        input: &PolicyInput,
    ) -> CoreResult<Policy> {
        let name = crate::check_display_name(&input.name)?;
        let kind = PolicyKind::parse(&input.kind).ok_or_else(|| {
            CoreError::BadRequest("kind must be passcode, restrictions, wifi or vpn".into())
        })?;
        let (settings, secrets) = Self::checked_settings(kind, &input.settings, BTreeMap::new())?;
        let platforms = check_platforms(kind, &input.platforms, &input.settings)?;
        let id = crate::random_id()?;
        let now = self.clock.now();
        let policy = Policy {
            profile_identifier: format!("com.mamori.policy.{id}"),
            payload_uuid: uuid_upper(uuid::Uuid::new_v4()),
            profile_uuid: uuid_upper(uuid::Uuid::new_v4()),
            id,
            name,
            kind,
            settings,
            secrets: secrets.keys().cloned().collect(),
            platforms,
            version: 1,
            created_at: now,
            updated_at: now,
        };
        let sealed = self.seal_secrets(&policy.id, &secrets)?;
        self.audit(
            self.audit_record(
                &by.label(),
                ctx,
                AuditAction::PolicyCreate,
                Outcome::Success,
            )
            .target(&policy.id)
            .detail(format!("kind={} name={}", kind.as_str(), policy.name)),
        )
        .await?;
        if !self
            .ports
            .fleet
            .insert_policy(&policy, sealed.as_deref())
            .await?
        {
            return Err(CoreError::Conflict("a policy with that name exists".into()));
        }
        Ok(policy)
    }

    /// Every policy (secrets left out).
    pub async fn policies(&self, _by: &Authorized<DevicesRead>) -> CoreResult<Vec<Policy>> {
        let mut all = self.ports.fleet.list_policies().await?;
        all.iter_mut().for_each(without_clear_secrets);
        Ok(all)
    }

    /// One policy (secrets left out).
    pub async fn policy(&self, _by: &Authorized<DevicesRead>, id: &str) -> CoreResult<Policy> {
        let mut p = self.policy_record(id).await?;
        without_clear_secrets(&mut p);
        Ok(p)
    }

    /// One policy, for the use-cases of this crate.
    pub(crate) async fn policy_record(&self, id: &str) -> CoreResult<Policy> {
        Ok(self
            .ports
            .fleet
            .policy(id)
            .await?
            .ok_or_else(|| CoreError::NotFound("no such policy".into()))?
            .0)
    }

    /// Changes a policy: a new version, with a new profile UUID (the
    /// profile identifier and payload UUID stay, so devices replace it).
    pub async fn update_policy(
        &self,
        by: &Authorized<CommandsWrite>,
        ctx: &ClientContext,
        id: &str,
        change: &PolicyChange,
    ) -> CoreResult<Policy> {
        let (old, sealed) = self
            .ports
            .fleet
            .policy(id)
            .await?
            .ok_or_else(|| CoreError::NotFound("no such policy".into()))?;
        if change.expected_version.is_some_and(|v| v != old.version) {
            return Err(CoreError::Conflict(format!(
                "the policy changed meanwhile (now version {}); reload it and make the change again",
                old.version
            )));
        }
        let mut p = old.clone();
        if let Some(n) = &change.name {
            p.name = crate::check_display_name(n)?;
        }
        let mut new_sealed = sealed.clone();
        if let Some(settings) = &change.settings {
            // Secrets an older build stored in the clear (a key added to
            // SECRET_KEYS since) are kept, and sealed from now on.
            let mut kept = BTreeMap::new();
            extract_secrets(&mut old.settings.clone(), "", &mut kept, &mut Vec::new());
            kept.extend(self.open_secrets(&old.id, sealed.as_deref())?);
            let (clear, secrets) = Self::checked_settings(p.kind, settings, kept)?;
            p.settings = clear;
            p.secrets = secrets.keys().cloned().collect();
            new_sealed = self.seal_secrets(&p.id, &secrets)?;
        }
        if let Some(platforms) = &change.platforms {
            p.platforms = platforms.clone();
        }
        // The (new) settings must exist on every (new) platform.
        p.platforms = check_platforms(p.kind, &p.platforms, &p.settings)?;
        p.version += 1;
        p.profile_uuid = uuid_upper(uuid::Uuid::new_v4());
        p.updated_at = self.clock.now();
        self.audit(
            self.audit_record(
                &by.label(),
                ctx,
                AuditAction::PolicyUpdate,
                Outcome::Success,
            )
            .target(&p.id)
            .detail(format!("version={}", p.version)),
        )
        .await?;
        if !self
            .ports
            .fleet
            .update_policy(&p, new_sealed.as_deref(), old.version)
            .await?
        {
            return Err(CoreError::Conflict(
                "the policy changed meanwhile, or the name is taken".into(),
            ));
        }
        Ok(p)
    }

    /// Deletes a policy.
    pub async fn delete_policy(
        &self,
        by: &Authorized<CommandsWrite>,
        ctx: &ClientContext,
        id: &str,
    ) -> CoreResult<()> {
        let p = self.policy_record(id).await?;
        self.audit(
            self.audit_record(
                &by.label(),
                ctx,
                AuditAction::PolicyDelete,
                Outcome::Success,
            )
            .target(&p.id)
            .detail(format!("name={}", p.name)),
        )
        .await?;
        self.ports.fleet.delete_policy(&p.id).await?;
        Ok(())
    }

    /// The configuration profile of a policy, secrets included: for
    /// installing on devices only, never for the API.
    pub async fn policy_profile(&self, _by: &Operator, id: &str) -> CoreResult<Zeroizing<Vec<u8>>> {
        self.profile_of(id).await
    }

    /// A policy's profile, secrets included (see [`Self::policy_profile`]).
    pub(crate) async fn profile_of(&self, id: &str) -> CoreResult<Zeroizing<Vec<u8>>> {
        let (p, sealed) = self
            .ports
            .fleet
            .policy(id)
            .await?
            .ok_or_else(|| CoreError::NotFound("no such policy".into()))?;
        let secrets = self.open_secrets(&p.id, sealed.as_deref())?;
        let mut full = p.settings.clone();
        insert_secrets(&mut full, &secrets);
        let content = mamori_protocol::schema::validate_payload(p.kind.payload_type(), &full)
            .map_err(|e| CoreError::internal("stored policy no longer valid", e))?;
        let parse = |u: &str| uuid::Uuid::parse_str(u).map_err(|e| CoreError::Internal(e.into()));
        let profile = mamori_protocol::mobileconfig::ConfigurationProfile {
            identifier: p.profile_identifier.clone(),
            uuid: parse(&p.profile_uuid)?,
            display_name: p.name.clone(),
            description: format!(
                "Managed by {} (policy version {}).",
                self.config.organization, p.version
            ),
            organization: self.config.organization.clone(),
            payloads: vec![mamori_protocol::mobileconfig::PayloadSpec {
                payload_type: p.kind.payload_type().to_owned(),
                identifier: format!("{}.{}", p.profile_identifier, p.kind.as_str()),
                uuid: parse(&p.payload_uuid)?,
                display_name: p.name.clone(),
                content,
            }],
        };
        Ok(Zeroizing::new(
            mamori_protocol::mobileconfig::build_configuration_profile(&profile)
                .map_err(|e| CoreError::Internal(e.into()))?,
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_come_out_at_any_depth_and_go_back_in() {
        let mut v = json!({
            "SSID_STR": "Corp",
            "Password": "wifi-pass",
            "EAPClientConfiguration": {"UserName": "u", "UserPassword": "p/w"},
            "List": [{"SharedSecret": "s"}],
            "AuthPassword": null
        });
        let original = v.clone();
        let mut out = BTreeMap::new();
        let mut cleared = Vec::new();
        extract_secrets(&mut v, "", &mut out, &mut cleared);
        assert_eq!(
            out.keys().cloned().collect::<Vec<_>>(),
            vec![
                "/EAPClientConfiguration/UserPassword",
                "/List/0/SharedSecret",
                "/Password"
            ]
        );
        assert_eq!(cleared, vec!["/AuthPassword"]);
        assert!(!v.to_string().contains("wifi-pass"));
        insert_secrets(&mut v, &out);
        let mut expected = original;
        expected.as_object_mut().unwrap().remove("AuthPassword");
        assert_eq!(v, expected);
    }

    #[test]
    fn updates_keep_left_out_secrets_and_null_clears_them() {
        let kept = BTreeMap::from([("/Password".to_owned(), json!("old-pass"))]);
        let (clear, s) = Services::checked_settings(
            PolicyKind::Wifi,
            &json!({"SSID_STR": "Corp", "EncryptionType": "WPA2", "AutoJoin": false}),
            kept.clone(),
        )
        .unwrap();
        assert_eq!(s["/Password"], json!("old-pass"));
        assert!(clear.get("Password").is_none());
        let (_, s) = Services::checked_settings(
            PolicyKind::Wifi,
            &json!({"SSID_STR": "Corp", "EncryptionType": "WPA2", "Password": null}),
            kept,
        )
        .unwrap();
        assert!(s.is_empty());
        let e = Services::checked_settings(
            PolicyKind::Passcode,
            &json!({"maxFailedAttempts": 50}),
            BTreeMap::new(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("maxFailedAttempts"), "{e}");
    }

    /// Every key of the policy kinds' payloads that holds a password, a
    /// shared secret or a key (by Apple's name and type) is sealed.
    #[test]
    fn every_secret_of_apples_schema_is_sealed() {
        use mamori_protocol::schema::{profile_schema, KeySchema, ValueType};
        fn walk(keys: &[KeySchema], missing: &mut Vec<String>) {
            for k in keys {
                let secret_name =
                    k.name.contains("Password") || k.name.contains("Secret") || k.name == "PPK";
                let holds_value = matches!(k.value_type, ValueType::String | ValueType::Data)
                    && k.rangelist.is_empty();
                if secret_name && holds_value && !SECRET_KEYS.contains(&k.name.as_str()) {
                    missing.push(k.name.clone());
                }
                walk(&k.subkeys, missing);
            }
        }
        let mut missing = Vec::new();
        for kind in PolicyKind::ALL {
            walk(
                &profile_schema(kind.payload_type()).unwrap().keys,
                &mut missing,
            );
        }
        assert!(missing.is_empty(), "not sealed: {missing:?}");
    }

    #[test]
    fn a_secret_stored_in_the_clear_by_an_older_build_is_never_shown() {
        let now = time::OffsetDateTime::UNIX_EPOCH;
        let mut p = Policy {
            id: "p".into(),
            name: "VPN".into(),
            kind: PolicyKind::Vpn,
            settings: json!({"IPSec": {"XAuthPassword": "old-clear", "RemoteAddress": "vpn"}}),
            secrets: vec!["/IPSec/SharedSecret".into()],
            platforms: Vec::new(),
            version: 1,
            profile_identifier: "x".into(),
            payload_uuid: "x".into(),
            profile_uuid: "x".into(),
            created_at: now,
            updated_at: now,
        };
        without_clear_secrets(&mut p);
        assert_eq!(p.settings, json!({"IPSec": {"RemoteAddress": "vpn"}}));
        assert_eq!(p.secrets, ["/IPSec/SharedSecret", "/IPSec/XAuthPassword"]);
    }
}
