//! Money as people read it: the one implementation in `pms_cli::money` (major units with the
//! currency's ISO 4217 exponent, parsed without floating point), shared with the CLI.

pub use pms_cli::money::{decimal, exponent, format, parse};
