//! Mamori's HTTP layer: the device listener (SCEP, check-in, connect) and the
//! admin listener (REST API), each served over TLS. Handlers are thin; the
//! service layer decides.

pub mod admin;
pub mod auth;
pub mod budget;
pub mod conn;
pub mod console;
pub mod device;
pub mod error;
mod extract;
pub mod tls;
pub mod upload;
