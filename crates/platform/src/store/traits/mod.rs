//! The storage traits, one per aggregate; [`super::Store`] is all of them together.
//!
//! Each file owns one aggregate's storage and nothing else, and [`super::sql`] implements
//! each in the file of the same name.

mod accounts;
mod attendance;
mod devices;
mod rosters;
mod tasks;
mod uplink;
mod vendors;
mod webhooks;
mod workers;

pub use accounts::AccountStore;
pub use attendance::AttendanceStore;
pub use devices::DeviceStore;
pub use rosters::RosterStore;
pub use tasks::{TaskStore, claim_mark};
pub use uplink::UplinkStore;
pub use vendors::VendorStore;
pub use webhooks::WebhookStore;
pub use workers::WorkerStore;
