//! `isolation: process`: a sink's plugin instance in a child process of the router's own
//! executable, so that a crash, an `abort()` or a hang in plugin code ends or stalls that
//! process only. The router's side ([`ProcessInstance`]) stands behind the same
//! [`Instance`](super::Instance) as an in-process one; the child's side ([`serve`]) is
//! `alert-router plugin-host`; `frames` is what they say to each other.

mod child;
mod frames;
mod parent;

pub use child::{HostArgs, serve};
pub use parent::{ProcessInstance, ProcessOptions};
