//! The one integration test crate: every test starts the real server in-process on
//! 127.0.0.1:0 (or as a child process, for crash tests) with its data in a temp dir.
//! The files next to this one hold tests only; the fakes, harnesses and helpers
//! they share are in `support/`, the one module they import from.

mod support;

mod acme;
mod acme_pebble;
mod apply_health;
mod browser;
mod calls;
mod cli;
mod coexistence;
mod contacts;
mod crash;
mod dashboard;
mod dashboard_forward;
mod dashboard_login;
mod dashboard_pages;
mod data_dir;
mod dedup_filter;
mod disk_full;
mod events;
mod forward;
mod forward_crash;
mod forward_poison;
mod forward_pywa;
mod forward_retry;
mod forward_whatsapp_api_js;
mod forward_window;
mod fuzz_regressions;
mod max_items;
mod media;
mod media_crypto;
mod media_files;
mod media_garage;
mod media_ids;
mod media_kill;
mod media_scan;
mod metrics;
mod nats;
mod params;
mod parse;
mod privacy_erase;
mod privacy_erase_crash;
mod privacy_erase_more;
mod privacy_export;
mod privacy_logs;
mod retention;
mod send;
mod send_crash;
mod send_graph;
mod send_more;
mod server_limits;
mod statuses;
mod store_snapshot;
mod timestamps;
mod tls;
mod webhook;
