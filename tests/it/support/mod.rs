//! Test support: a real MongoDB-wire server, a Discord simulator, a TCP fault proxy.
#![allow(dead_code)]

pub mod bot;
pub mod db;
pub mod discord_sim;
pub mod fault_proxy;
