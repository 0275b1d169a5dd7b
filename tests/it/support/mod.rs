//! Test support: the bot in process (`app::spawn_app`) and as the real binary
//! (`bot::spawn_bot`), a real MongoDB-wire server, a Discord simulator, a TCP
//! fault proxy, a minimal HTTP client, and the one polling helper.

pub mod app;
pub mod bot;
pub mod db;
pub mod discord_sim;
pub mod fault_proxy;
pub mod http;
pub mod poll;
