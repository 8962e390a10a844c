//! The connection driver and dialing, against in-memory and loopback peers; timers on paused
//! time.

mod dial;
mod driver;
mod support;
