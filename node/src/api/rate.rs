//! Rate limits on the bond checks that `POST /v1/settlements/{id}/disputes` starts. A dispute's
//! EIP-712 signature costs its sender nothing, but reading its bond back costs this node up to
//! six RPC calls (two for a bond transaction that does not exist). So once a dispute has passed
//! the free checks, its bond check must find a token in two buckets:
//!
//! - **its client's**, keyed by the caller's IP address (an IPv6 caller by its /64):
//!   `api.bond_checks_per_client_per_minute`, with bursts of up to [`CLIENT_BURST`];
//! - **the node's**: `api.bond_checks_per_second` in all, with bursts of up to one second's worth.
//!
//! Past either, the answer is 429 with `Retry-After`, and no RPC call is made. A node's RPC load
//! from the API is therefore at most `6 × api.bond_checks_per_second` calls a second, whoever
//! sends. At most [`MAX_CLIENTS`] client buckets are kept; past it, buckets that have refilled
//! are forgotten (a full bucket and no bucket are the same), and a client that still finds no
//! room is counted against the node's bucket only.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// The caller's address, as the API's accept loop saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

/// Bond checks one client may start at once, before its rate applies.
pub const CLIENT_BURST: u32 = 5;
/// Clients with a bucket, at most.
pub const MAX_CLIENTS: usize = 10_000;

/// The configured rates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BondCheckRates {
    /// `api.bond_checks_per_client_per_minute`.
    pub per_client_per_minute: u32,
    /// `api.bond_checks_per_second`: for the whole node.
    pub per_second: u32,
}

/// Why a bond check may not start now, and when to retry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limited {
    /// This client used its share.
    Client { retry_after: Duration },
    /// The node's bond checks are all taken.
    Node { retry_after: Duration },
}

/// A token bucket kept as the time at which it is next full (the generic cell rate algorithm):
/// one token every `every`, at most `burst` at once. Integer time only.
#[derive(Clone, Copy, Debug)]
struct Rate {
    every: Duration,
    burst: u32,
}

impl Rate {
    /// Takes a token from the bucket that is full at `*full_at`, or says how long until one.
    fn take(&self, full_at: &mut Instant, now: Instant) -> Result<(), Duration> {
        let from = (*full_at).max(now);
        let room = self.every.saturating_mul(self.burst.saturating_sub(1));
        let ahead = from - now;
        if ahead > room {
            return Err(ahead - room);
        }
        *full_at = from + self.every;
        Ok(())
    }

    /// Whether taking a token now would fail.
    fn empty(&self, full_at: Instant, now: Instant) -> Option<Duration> {
        let mut probe = full_at;
        self.take(&mut probe, now).err()
    }
}

/// Both buckets, shared by every dispute request.
#[derive(Debug)]
pub struct BondCheckLimiter {
    client: Rate,
    node: Rate,
    node_full_at: Instant,
    /// When each client's bucket is full again; a full bucket is forgotten when room is needed.
    clients: HashMap<IpAddr, Instant>,
}

impl BondCheckLimiter {
    pub fn new(rates: BondCheckRates, now: Instant) -> BondCheckLimiter {
        let (per_minute, per_second) = (rates.per_client_per_minute.max(1), rates.per_second.max(1));
        BondCheckLimiter {
            client: Rate { every: Duration::from_secs(60) / per_minute, burst: CLIENT_BURST.min(per_minute) },
            node: Rate { every: Duration::from_secs(1) / per_second, burst: per_second },
            node_full_at: now,
            clients: HashMap::new(),
        }
    }

    /// Takes a token from `client`'s bucket and the node's, or says which is empty and for how
    /// long. A request with no known address (in-process tests) counts against the node only.
    pub fn admit(&mut self, client: Option<IpAddr>, now: Instant) -> Result<(), Limited> {
        let key = client.map(bucket_key);
        if let Some(key) = key
            && !self.clients.contains_key(&key)
            && self.clients.len() >= MAX_CLIENTS
        {
            self.clients.retain(|_, full_at| *full_at > now);
        }
        let tracked = key.filter(|k| self.clients.contains_key(k) || self.clients.len() < MAX_CLIENTS);
        let client_full_at = tracked.map(|k| self.clients.get(&k).copied().unwrap_or(now));
        if let Some(wait) = client_full_at.and_then(|at| self.client.empty(at, now)) {
            return Err(Limited::Client { retry_after: wait });
        }
        if let Err(wait) = self.node.take(&mut self.node_full_at, now) {
            return Err(Limited::Node { retry_after: wait });
        }
        if let (Some(key), Some(mut full_at)) = (tracked, client_full_at) {
            self.client.take(&mut full_at, now).expect("checked above");
            self.clients.insert(key, full_at);
        }
        Ok(())
    }
}

/// An IPv4 caller by its address; an IPv6 caller by its /64 (one host can hold a whole /64).
fn bucket_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATES: BondCheckRates = BondCheckRates { per_client_per_minute: 30, per_second: 10 };

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn a_client_gets_its_burst_then_its_rate_and_others_are_not_held_back() {
        let t = Instant::now();
        let mut limiter = BondCheckLimiter::new(RATES, t);
        for _ in 0..5 {
            assert_eq!(limiter.admit(ip("10.0.0.1"), t), Ok(()));
        }
        let Err(Limited::Client { retry_after }) = limiter.admit(ip("10.0.0.1"), t) else { panic!() };
        assert_eq!(retry_after, Duration::from_secs(2), "30 a minute: one every 2 s");
        assert_eq!(limiter.admit(ip("10.0.0.2"), t), Ok(()), "another client has its own bucket");
        assert_eq!(limiter.admit(ip("10.0.0.1"), t + Duration::from_secs(2)), Ok(()));
        assert!(limiter.admit(ip("10.0.0.1"), t + Duration::from_secs(2)).is_err());
    }

    #[test]
    fn the_node_bucket_bounds_every_client_together() {
        let t = Instant::now();
        let mut limiter = BondCheckLimiter::new(RATES, t);
        let admitted = (0..100u8).filter(|k| limiter.admit(ip(&format!("10.0.1.{k}")), t).is_ok()).count();
        assert_eq!(admitted, 10, "one second's worth at once");
        let Err(Limited::Node { retry_after }) = limiter.admit(ip("10.0.2.1"), t) else { panic!() };
        assert_eq!(retry_after, Duration::from_millis(100));
        // Over 10 s of many clients, 10 a second (plus the first second's burst).
        let admitted = (1..=1000u32)
            .filter(|k| {
                let at = t + Duration::from_millis(u64::from(*k) * 10);
                limiter.admit(ip(&format!("10.1.{}.{}", k / 256, k % 256)), at).is_ok()
            })
            .count();
        assert!((99..=101).contains(&admitted), "{admitted}");
        assert_eq!(
            limiter.admit(None, t + Duration::from_secs(20)),
            Ok(()),
            "no address: the node's bucket only"
        );
    }

    #[test]
    fn ipv6_callers_share_their_64_and_the_client_table_stays_bounded() {
        let t = Instant::now();
        let mut limiter =
            BondCheckLimiter::new(BondCheckRates { per_client_per_minute: 30, per_second: 100_000 }, t);
        for k in 0..5 {
            assert_eq!(limiter.admit(ip(&format!("2001:db8::{k}")), t), Ok(()));
        }
        assert!(limiter.admit(ip("2001:db8::ffff:1"), t).is_err(), "the same /64");
        assert_eq!(limiter.admit(ip("2001:db8:0:1::1"), t), Ok(()), "another /64");
        for k in 0..(MAX_CLIENTS as u32 + 50) {
            let addr = std::net::Ipv4Addr::from(0x0b00_0000 + k);
            let _ = limiter.admit(Some(addr.into()), t);
        }
        assert!(limiter.clients.len() <= MAX_CLIENTS);
        let later = t + Duration::from_secs(60);
        assert_eq!(limiter.admit(ip("12.0.0.1"), later), Ok(()));
        assert!(limiter.clients.len() <= 10, "refilled buckets are forgotten: {}", limiter.clients.len());
    }
}
