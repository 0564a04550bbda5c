//! fleetguard's domain crate: typed AWS events, the decisions made on them, the ports they act
//! through and the adapters behind those ports, shared by all four Lambda functions.

pub mod adapters;
pub mod alarm_fanout;
pub mod aws;
pub mod config;
pub mod deployment;
pub mod events;
pub mod function;
pub mod ids;
pub mod lifecycle;
pub mod notify;
pub mod observe;
pub mod spot;
pub mod text;
pub mod time;

pub use events::{Detail, Event, EventKind, ParseError, parse_event, parse_value};
pub use function::{Context, Function, Summary};
