//! `mamori-sim`: an Apple device simulator that enrolls in and talks to an
//! MDM server by Apple's published protocol, over real TLS.
//!
//! The simulator is an honest client: it knows only what a device knows —
//! the enrollment profile bytes, the TLS CA (from the profile's
//! `com.apple.security.root` payload or given explicitly) and the identity
//! it obtains via SCEP. It never looks at server internals.
//!
//! ```no_run
//! # async fn demo(profile: &[u8], ca_pem: &[u8]) -> Result<(), mamori_sim::SimError> {
//! use mamori_sim::{DeviceKind, SimDevice, SimOptions};
//! let mut dev = SimDevice::new(DeviceKind::IPhone, SimOptions::default());
//! dev.enroll(profile, Some(ca_pem)).await?; // SCEP + Authenticate + TokenUpdate
//! for entry in dev.run_queue().await? {
//!     println!("{} {} -> {}", entry.request_type, entry.command_uuid, entry.status);
//! }
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

mod behaviour;
mod checkin;
mod command;
mod device;
mod error;
mod hardware;
mod profile;
mod scep;
mod tls;

pub use behaviour::{
    builtin_response, query_value, DeviceState, InstalledApp, InstalledProfile, PayloadSummary,
    ERR_MALFORMED_PROFILE, ERR_PROFILE_NOT_INSTALLED,
};
pub use command::{Command, CommandStatus, ErrorChainItem, Response};
pub use device::{
    Identity, QueueEntry, RawResponse, SimDevice, SimOptions, CHECKIN_CONTENT_TYPE,
    CONNECT_CONTENT_TYPE,
};
pub use error::{Result, SimError};
pub use hardware::{DeviceInfo, DeviceKind};
pub use mamori_crypto::{DigestAlg, RsaPrivateKey};
pub use mamori_protocol::cms::ContentEncryptionAlg;
pub use profile::{parse_profile_dict, DeviceProfile};
pub use scep::ScepMethod;
pub use tls::{parse_ca_certs, Credentials};
