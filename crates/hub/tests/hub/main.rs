//! Integration tests of the buffer hub, one module per behaviour.

mod buffer;
mod intake;
mod normalise;
mod ops;
mod support;
mod wake;
