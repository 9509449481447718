//! Building blocks of the Linphone remote-provisioning answer: the linphonerc
//! (INI) file an operator configures, the lpconfig XML document clients
//! download, the hook output merged into it, and the QR code pointing at it.
//!
//! This module is deliberately free of references to the rest of the crate,
//! so it can be compiled and tested on its own: the HTTP layer decides *what*
//! goes in the document, this module only knows how to read and write it.

pub mod qr;
pub mod rc;
pub mod xml;

pub use qr::qr_png;
pub use rc::{RcError, RcFile, RcSection};
pub use xml::{parse_hook_entries, parse_hook_fragment, Config, Entry, Section};
