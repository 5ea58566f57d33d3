//! `.http` request files (DESIGN §9): the parser, `{{…}}` variables and captures, the JSONPath
//! subset, `??` assertions, the runner, the redaction of secrets and the JUnit report behind
//! `pms request`.

pub mod assert;
pub mod jsonpath;
pub mod junit;
pub mod parse;
pub mod redact;
pub mod run;
pub mod vars;

pub use parse::{HttpFile, ParseError, RequestSpec, parse};
pub use run::{RequestResult, Runner};
pub use vars::Scope;
