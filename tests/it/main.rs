//! The one integration test crate: every test starts the real server in-process on
//! 127.0.0.1:0 (or as a child process, for crash tests) with its data in a temp dir.

mod crash;
mod events;
mod media_crypto;
mod media_files;
mod parse;
mod support;
mod webhook;
