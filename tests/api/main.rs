//! One integration-test binary: black-box tests that start the real application on a random
//! port with a fresh database and talk HTTP to it.
#![allow(dead_code)]

mod helpers;

mod accounts;
mod authz;
mod browser;
mod cli;
mod contract;
mod csrf;
mod embedding;
mod example_notes;
mod faults;
mod files_and_inputs;
mod forward_auth;
mod hardening;
mod headers;
mod import;
mod input;
mod lifecycle;
mod lifecycle_pages;
mod memory;
mod metrics_labels;
mod mfa;
mod mounting;
mod nodes;
mod ops;
mod pages;
mod passkeys;
mod proxies;
mod redirects;
mod sessions;
mod slow_clients;
mod smoke;
mod smtp;
mod throttle;
mod tokens;
