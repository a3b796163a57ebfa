//! Measures what N idle MQTT 3.1.1 connections cost the broker: connect time, resident memory
//! and shutdown time. Client and broker share the process, so the memory figure includes the
//! client-side sockets too (an upper bound for the broker alone).
//!
//! `cargo run -p wme-broker --release --example connection_cost -- 9000`
//! (each connection uses two file descriptors; raise `ulimit -n` for large N).

use std::time::Instant;

use anyhow::{Context, ensure};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wme_broker::{Broker, BrokerConfig};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let count: usize = match std::env::args().nth(1) {
        Some(arg) => arg
            .parse()
            .with_context(|| format!("connection count {arg:?}"))?,
        None => 1000,
    };
    let broker = Broker::start(([127, 0, 0, 1], 0).into(), BrokerConfig::default()).await?;
    let before = resident_kib()?;

    let started = Instant::now();
    let mut streams = Vec::with_capacity(count);
    for i in 0..count {
        let mut stream = TcpStream::connect(broker.local_addr()).await?;
        stream
            .write_all(&connect_packet(&format!("agent-{i:05}")))
            .await?;
        streams.push(stream);
    }
    for stream in &mut streams {
        let mut connack = [0u8; 4];
        stream.read_exact(&mut connack).await?;
        ensure!(
            connack[3] == 0,
            "connection refused with code {}",
            connack[3]
        );
    }
    let connect_time = started.elapsed();
    let after = resident_kib()?;

    let started = Instant::now();
    let online = broker.connected_clients().len();
    broker.shutdown().await;
    println!(
        "{count} connections ({online} online) in {connect_time:?}; resident memory \
         {before} KiB -> {after} KiB, {:.1} KiB per connection; shutdown in {:?}",
        (after.saturating_sub(before)) as f64 / count as f64,
        started.elapsed()
    );
    Ok(())
}

/// A clean-session MQTT 3.1.1 CONNECT with keep-alive 0.
fn connect_packet(client_id: &str) -> Vec<u8> {
    let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', 4, 0b0000_0010, 0, 0];
    body.extend_from_slice(&(client_id.len() as u16).to_be_bytes());
    body.extend_from_slice(client_id.as_bytes());
    let mut packet = vec![0x10, body.len() as u8];
    packet.extend(body);
    packet
}

fn resident_kib() -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find(|line| line.starts_with("VmRSS:"))
        .context("no VmRSS line in /proc/self/status")?;
    let kib = line.split_whitespace().nth(1).context("empty VmRSS line")?;
    Ok(kib.parse()?)
}
