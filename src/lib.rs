//! scim-edge core: a host-free SCIM 2.0 service provider for password-vault
//! organizations. Hosts (Spin, Envoy) supply a [`store::Store`], a [`ids::Clock`] and
//! [`ids::Ids`], and pass requests through [`router::Router`].
#![deny(missing_docs)]

pub mod access_log;
pub mod auth;
pub mod cache;
pub mod caseless;
pub mod collection;
pub mod config;
pub mod delivery;
pub mod error;
pub mod filter;
pub mod gate;
pub mod health;
pub mod http;
pub mod ids;
pub mod member_status;
pub mod okta;
pub mod patch;
pub mod resource;
pub mod router;
pub mod schema;
pub mod service;
#[cfg(feature = "spin")]
mod spin;
#[cfg(feature = "spin-http")]
pub mod spin_http;
pub mod store;
pub mod time;
pub mod vault;
