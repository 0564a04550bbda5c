//! fleetguard's shared crate: what more than one function needs.
//!
//! - [`events`]: `parse_event`, raw payload → typed [`Event`];
//! - [`serve`]: the one invocation envelope every function goes through;
//! - [`ports`]: traits for what the functions do to AWS, over plain domain types;
//! - [`adapters`]: the AWS SDK implementations of the ports, one Cargo feature per service;
//! - [`out_of_service`]: taking an instance out of service, and the managed-group check;
//! - [`notify`]: notifications, routing, rendering per destination, delivery, dedupe;
//! - [`testing`] (feature `testing`): in-memory fakes of every port.

pub mod accounts;
pub mod adapters;
pub mod aws;
pub mod config;
pub mod events;
pub mod hub;
pub mod ids;
pub mod kept_marks;
pub mod notify;
pub mod observe;
pub mod out_of_service;
pub mod ports;
pub mod reasons;
pub mod serve;
#[cfg(feature = "testing")]
pub mod testing;
pub mod text;
pub mod time;
pub mod tls;

pub use events::{Detail, Event, EventKind, ParseError, parse_event, parse_value};
