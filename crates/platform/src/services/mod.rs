//! Business rules shared by the device API and the admin API. One module per resource.
//!
//! Services take the [`crate::state::App`] explicitly and speak in store rows; the HTTP and
//! TCP layers validate input and map errors.

pub mod attendance;
pub mod devices;
pub mod import;
pub mod reconcile;
pub mod reports;
pub(crate) mod scope;
pub mod tasks;
pub mod vendors;
pub mod workers;
