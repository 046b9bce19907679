//! Ports of the fleet: policies, groups, installed profiles, compliance.

use crate::StoreResult;
use async_trait::async_trait;

/// Policies and their sealed secrets.
#[async_trait]
pub trait PolicyStore: Send + Sync {
    /// Adds a policy; false when the name is taken.
    async fn insert_policy(
        &self,
        p: &mamori_domain::Policy,
        sealed_secrets: Option<&[u8]>,
    ) -> StoreResult<bool>;
    /// One policy with its sealed secrets.
    async fn policy(
        &self,
        id: &str,
    ) -> StoreResult<Option<(mamori_domain::Policy, Option<Vec<u8>>)>>;
    /// Every policy, by name.
    async fn list_policies(&self) -> StoreResult<Vec<mamori_domain::Policy>>;
    /// Replaces a policy if its stored version is `expected_version`
    /// (false otherwise, or when the new name is taken).
    async fn update_policy(
        &self,
        p: &mamori_domain::Policy,
        sealed_secrets: Option<&[u8]>,
        expected_version: i64,
    ) -> StoreResult<bool>;
    /// Deletes a policy; false when there was none.
    async fn delete_policy(&self, id: &str) -> StoreResult<bool>;
}

/// Device groups, their policies, and the profiles on each device.
#[async_trait]
pub trait GroupStore: Send + Sync {
    /// Adds a group; false when the name is taken.
    async fn insert_group(&self, g: &mamori_domain::DeviceGroup) -> StoreResult<bool>;
    /// Every group with its members and policies, by name.
    async fn list_groups(&self) -> StoreResult<Vec<mamori_domain::DeviceGroup>>;
    /// Deletes a group (members and assignments too); false when none.
    async fn delete_group(&self, id: &str) -> StoreResult<bool>;
    /// Adds and removes static members.
    async fn change_group_members(
        &self,
        id: &str,
        add: &[String],
        remove: &[String],
    ) -> StoreResult<()>;
    /// Replaces the policies assigned to a group.
    async fn set_group_policies(&self, id: &str, policies: &[String]) -> StoreResult<()>;
    /// Every device-profile row.
    async fn device_profiles(&self) -> StoreResult<Vec<mamori_domain::DeviceProfile>>;
    /// One device's profile rows.
    async fn profiles_of_device(
        &self,
        udid: &str,
    ) -> StoreResult<Vec<mamori_domain::DeviceProfile>>;
    /// Inserts or replaces rows (in one transaction).
    async fn put_device_profiles(&self, rows: &[mamori_domain::DeviceProfile]) -> StoreResult<()>;
    /// The row whose command is `command_uuid`.
    async fn device_profile_by_command(
        &self,
        command_uuid: &str,
    ) -> StoreResult<Option<mamori_domain::DeviceProfile>>;
    /// Removes a row.
    async fn delete_device_profile(&self, udid: &str, profile_identifier: &str) -> StoreResult<()>;
}

/// Compliance rules per group (JSON, read by `crate::compliance`).
#[async_trait]
pub trait ComplianceStore: Send + Sync {
    /// Sets or (None) clears a group's rules.
    async fn set_group_compliance(
        &self,
        group: &str,
        rules: Option<&serde_json::Value>,
    ) -> StoreResult<()>;
    /// Every group's rules.
    async fn group_compliance(&self) -> StoreResult<Vec<(String, serde_json::Value)>>;
}
