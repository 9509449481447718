//! Types and pure rules: SIP addresses, password hashes, random secrets,
//! time formats, username and phone rules. No I/O in here.

pub mod digest;
pub mod hash;
pub mod random;
pub mod rules;
pub mod sip;
pub mod time;
