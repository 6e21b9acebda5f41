//! The integration suite: drives the real router over TCP. Runs on the
//! embedded defaults; with `CHIRP_TEST_DATABASE_URL` (PostgreSQL) and
//! `CHIRP_TEST_REDIS_URL` set, every test runs on those instead.

mod accounts;
mod auth;
mod broker_outage;
mod crash;
mod faults;
mod graph;
mod helpers;
mod hostile;
mod media;
mod nodes;
mod notifications;
mod operations;
mod process;
mod profile;
mod search;
mod seed;
mod smtp;
mod timeline;
mod tweets;
mod web;
