//! What people use over HTTP: the admin REST API with its OpenAPI document ([`admin`]) and
//! the Chinese web console ([`console`]). Thin: requests are mapped to services, results to
//! JSON or pages; what a caller may see and change is decided in `services`.

pub(crate) mod admin;
pub(crate) mod console;
