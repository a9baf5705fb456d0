//! The pure part of a network lab: its subnet and addresses, the names of its namespaces and
//! interfaces, the nftables ruleset every host starts with, and the text of each fault. No
//! command runs here, so all of it is unit-tested without root.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::time::Duration;

use super::NetLabError;

/// The nftables table each host's namespace gets (family `inet`).
pub const TABLE: &str = "fixd_lab";
/// A host's end of its veth pair, inside the host's namespace.
pub const HOST_IFACE: &str = "eth0";
/// The bridge, inside the lab's bridge namespace.
pub const BRIDGE: &str = "br0";
/// The most hosts a lab holds: addresses .1 to .250 of its /24.
pub const MAX_HOSTS: usize = 250;
/// What every lab namespace name starts with: `fxl<octet>-<pid>-<host>`.
const PREFIX: &str = "fxl";
/// The longest host name: namespace names are file names under /run/netns, kept readable.
const MAX_HOST_NAME: usize = 32;

/// A lab's addresses: `10.77.<octet>.0/24`, host `i` at `.i+1`. The bridge itself has none:
/// it only switches frames between the hosts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Subnet {
    octet: u8,
}

impl Subnet {
    pub fn new(octet: u8) -> Subnet {
        Subnet { octet }
    }

    /// The third octet, which names the lab.
    pub fn octet(self) -> u8 {
        self.octet
    }

    /// Host `index`'s address.
    pub fn host_ip(self, index: usize) -> Result<Ipv4Addr, NetLabError> {
        if index >= MAX_HOSTS {
            return Err(NetLabError::TooManyHosts { max: MAX_HOSTS });
        }
        let last = u8::try_from(index + 1).expect("MAX_HOSTS fits an octet");
        Ok(Ipv4Addr::new(10, 77, self.octet, last))
    }

    /// Host `index`'s address with the prefix length, as `ip addr add` takes it.
    pub fn host_cidr(self, index: usize) -> Result<String, NetLabError> {
        Ok(format!("{}/24", self.host_ip(index)?))
    }
}

/// The first subnet octet from `start` on (wrapping) that no lab in `taken` uses. Labs are
/// isolated from each other anyway (each has its own bridge); distinct subnets keep their
/// addresses apart in logs and in `ip netns` listings.
pub fn free_octet(start: u8, taken: &BTreeSet<u8>) -> Option<u8> {
    (0..=255u8).map(|k| start.wrapping_add(k)).find(|o| !taken.contains(o))
}

/// The namespace and interface names of one lab: its subnet octet and the owning process's id
/// are in every namespace name, so concurrent labs never share a name and a lab left behind by
/// a killed test can be found and removed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Names {
    octet: u8,
    pid: u32,
}

impl Names {
    pub fn new(octet: u8, pid: u32) -> Names {
        Names { octet, pid }
    }

    /// The namespace that holds the bridge.
    pub fn bridge_ns(&self) -> String {
        format!("{PREFIX}{}-{}-br", self.octet, self.pid)
    }

    /// The namespace of the host called `host`.
    pub fn host_ns(&self, host: &str) -> Result<String, NetLabError> {
        let valid = !host.is_empty()
            && host.len() <= MAX_HOST_NAME
            && host.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && host != "br";
        if !valid {
            return Err(NetLabError::BadHostName { name: host.to_owned(), max: MAX_HOST_NAME });
        }
        Ok(format!("{PREFIX}{}-{}-{host}", self.octet, self.pid))
    }
}

/// The bridge's end of host `index`'s veth pair, inside the bridge namespace.
pub fn bridge_port(index: usize) -> String {
    format!("h{index}")
}

/// The (subnet octet, owner pid) of a lab namespace name, or `None` for any other namespace.
pub fn parse_ns(name: &str) -> Option<(u8, u32)> {
    let rest = name.strip_prefix(PREFIX)?;
    let mut parts = rest.splitn(3, '-');
    let octet = parts.next()?.parse().ok()?;
    let pid = parts.next()?.parse().ok()?;
    parts.next()?;
    Some((octet, pid))
}

/// The ruleset a host starts with: a set of cut peers whose packets are dropped both ways,
/// and two empty chains that random packet loss fills. Loopback traffic is never touched.
pub fn host_ruleset() -> String {
    format!(
        "table inet {TABLE} {{\n\
         \tset cut {{\n\t\ttype ipv4_addr\n\t}}\n\
         \tchain input {{\n\t\ttype filter hook input priority filter; policy accept;\n\t\tip saddr @cut drop\n\t}}\n\
         \tchain output {{\n\t\ttype filter hook output priority filter; policy accept;\n\t\tip daddr @cut drop\n\t}}\n\
         \tchain loss_in {{\n\t\ttype filter hook input priority 10; policy accept;\n\t}}\n\
         \tchain loss_out {{\n\t\ttype filter hook output priority 10; policy accept;\n\t}}\n\
         }}\n"
    )
}

/// Whether a peer is being cut off or let back in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    Cut,
    Heal,
}

/// The nft command that cuts `peer` off from (or heals it to) the host it runs in.
pub fn link_rule(link: Link, peer: Ipv4Addr) -> String {
    let verb = match link {
        Link::Cut => "add",
        Link::Heal => "delete",
    };
    format!("{verb} element inet {TABLE} cut {{ {peer} }}\n")
}

/// The nft commands that heal every cut of the host they run in.
pub fn heal_all_rule() -> String {
    format!("flush set inet {TABLE} cut\n")
}

/// The nft commands that make the host drop `percent` of the packets it sends and of those it
/// receives on its lab link, at random (0 clears it).
pub fn loss_rules(percent: u8) -> Result<String, NetLabError> {
    if percent > 100 {
        return Err(NetLabError::BadFault(format!("packet loss of {percent}%: give 0 to 100")));
    }
    let mut text = format!("flush chain inet {TABLE} loss_in\nflush chain inet {TABLE} loss_out\n");
    // numgen's values are 0..=99, so 100% is a plain drop.
    let matching = match percent {
        0 => return Ok(text),
        100 => String::new(),
        _ => format!(" numgen random mod 100 < {percent}"),
    };
    for (chain, dir) in [("loss_in", "iifname"), ("loss_out", "oifname")] {
        let _ = writeln!(text, "add rule inet {TABLE} {chain} {dir} \"{HOST_IFACE}\"{matching} drop");
    }
    Ok(text)
}

/// The links between hosts that a partition into `groups` cuts: every pair of hosts in
/// different groups, as (lower, higher) host indices. Hosts in no group keep all their links.
pub fn partition_cuts(groups: &[&[usize]]) -> Result<BTreeSet<(usize, usize)>, NetLabError> {
    let mut seen = BTreeSet::new();
    for host in groups.iter().flat_map(|g| g.iter()) {
        if !seen.insert(*host) {
            return Err(NetLabError::BadFault(format!(
                "host {host} is in two groups of a partition: each host belongs to one side"
            )));
        }
    }
    let mut cuts = BTreeSet::new();
    for (i, a) in groups.iter().enumerate() {
        for b in &groups[i + 1..] {
            for &x in a.iter() {
                for &y in b.iter() {
                    cuts.insert((x.min(y), x.max(y)));
                }
            }
        }
    }
    Ok(cuts)
}

/// What `tc netem` does to every packet a host sends and receives on its lab link.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Netem {
    /// Added to each packet, each way.
    pub delay: Duration,
    /// Random variation of the delay, up to this much either way.
    pub jitter: Duration,
    /// Packets dropped at random, each way, in percent.
    pub loss_percent: f64,
    /// Packets sent at once, ahead of the delayed ones, in percent (needs a delay).
    pub reorder_percent: f64,
}

/// The `tc` arguments that put `netem` on `iface` (replacing what was there).
pub fn netem_args(iface: &str, netem: &Netem) -> Result<Vec<String>, NetLabError> {
    let percent_ok = |p: f64| (0.0..=100.0).contains(&p);
    if !percent_ok(netem.loss_percent) || !percent_ok(netem.reorder_percent) {
        return Err(NetLabError::BadFault(format!("netem {netem:?}: percentages are 0 to 100")));
    }
    if netem.delay.is_zero() && (!netem.jitter.is_zero() || netem.reorder_percent > 0.0) {
        return Err(NetLabError::BadFault(format!(
            "netem {netem:?}: jitter and reordering need a delay; give one (e.g. 50 ms)"
        )));
    }
    let mut args: Vec<String> =
        ["qdisc", "replace", "dev", iface, "root", "netem"].iter().map(|s| (*s).to_owned()).collect();
    if !netem.delay.is_zero() {
        args.push("delay".into());
        args.push(format!("{}us", netem.delay.as_micros()));
        if !netem.jitter.is_zero() {
            args.push(format!("{}us", netem.jitter.as_micros()));
        }
    }
    if netem.loss_percent > 0.0 {
        args.extend(["loss".into(), format!("{}%", netem.loss_percent)]);
    }
    if netem.reorder_percent > 0.0 {
        args.extend(["reorder".into(), format!("{}%", netem.reorder_percent)]);
    }
    Ok(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_get_consecutive_addresses_in_the_labs_subnet() {
        let subnet = Subnet::new(42);
        assert_eq!(subnet.host_ip(0).unwrap(), Ipv4Addr::new(10, 77, 42, 1));
        assert_eq!(subnet.host_ip(6).unwrap(), Ipv4Addr::new(10, 77, 42, 7));
        assert_eq!(subnet.host_cidr(249).unwrap(), "10.77.42.250/24");
        assert!(matches!(subnet.host_ip(MAX_HOSTS), Err(NetLabError::TooManyHosts { .. })));
    }

    #[test]
    fn a_lab_takes_the_first_free_subnet_from_its_start() {
        let taken: BTreeSet<u8> = [7, 8, 10].into();
        assert_eq!(free_octet(7, &taken), Some(9));
        assert_eq!(free_octet(3, &taken), Some(3));
        assert_eq!(free_octet(255, &[255].into()), Some(0), "wraps around");
        assert_eq!(free_octet(0, &(0..=255).collect()), None);
    }

    #[test]
    fn namespace_names_carry_the_subnet_and_owner_and_parse_back() {
        let names = Names::new(12, 4321);
        assert_eq!(names.bridge_ns(), "fxl12-4321-br");
        let ns = names.host_ns("node-3").unwrap();
        assert_eq!(ns, "fxl12-4321-node-3");
        assert_eq!(parse_ns(&ns), Some((12, 4321)));
        assert_eq!(parse_ns(&names.bridge_ns()), Some((12, 4321)));
        for other in ["fxl", "fxl12", "fxl12-4321", "fxlx-1-br", "netns-1", "fxl300-1-br"] {
            assert_eq!(parse_ns(other), None, "{other}");
        }
        for bad in ["", "Node", "a b", "br", "node_1", "x".repeat(33).as_str()] {
            assert!(names.host_ns(bad).is_err(), "{bad:?}");
        }
        assert_eq!(bridge_port(3), "h3");
    }

    #[test]
    fn a_host_starts_with_an_empty_cut_set_that_drops_both_ways() {
        let rules = host_ruleset();
        assert!(rules.starts_with("table inet fixd_lab {"));
        assert!(rules.contains("set cut {\n\t\ttype ipv4_addr\n\t}"));
        assert!(rules.contains("hook input priority filter; policy accept;\n\t\tip saddr @cut drop"));
        assert!(rules.contains("hook output priority filter; policy accept;\n\t\tip daddr @cut drop"));
        assert_eq!(rules.matches("policy accept").count(), 4, "nothing is dropped until a fault");
    }

    #[test]
    fn cuts_and_heals_are_set_elements() {
        let peer = Ipv4Addr::new(10, 77, 1, 4);
        assert_eq!(link_rule(Link::Cut, peer), "add element inet fixd_lab cut { 10.77.1.4 }\n");
        assert_eq!(link_rule(Link::Heal, peer), "delete element inet fixd_lab cut { 10.77.1.4 }\n");
        assert_eq!(heal_all_rule(), "flush set inet fixd_lab cut\n");
    }

    #[test]
    fn packet_loss_is_a_random_drop_on_the_lab_link_each_way() {
        let rules = loss_rules(15).unwrap();
        assert_eq!(
            rules,
            "flush chain inet fixd_lab loss_in\nflush chain inet fixd_lab loss_out\n\
             add rule inet fixd_lab loss_in iifname \"eth0\" numgen random mod 100 < 15 drop\n\
             add rule inet fixd_lab loss_out oifname \"eth0\" numgen random mod 100 < 15 drop\n"
        );
        assert_eq!(loss_rules(0).unwrap().lines().count(), 2, "0 only clears");
        assert!(loss_rules(100).unwrap().ends_with("loss_out oifname \"eth0\" drop\n"), "100: every packet");
        assert!(loss_rules(101).is_err());
    }

    #[test]
    fn a_partition_cuts_every_link_between_its_sides_and_no_other() {
        let cuts = partition_cuts(&[&[0, 1], &[2, 3, 4]]).unwrap();
        let expected: BTreeSet<_> = [(0, 2), (0, 3), (0, 4), (1, 2), (1, 3), (1, 4)].into();
        assert_eq!(cuts, expected);
        let three = partition_cuts(&[&[3], &[1], &[0]]).unwrap();
        assert_eq!(three, [(0, 1), (0, 3), (1, 3)].into());
        assert!(partition_cuts(&[&[0, 1], &[1, 2]]).is_err(), "a host on two sides");
        assert!(partition_cuts(&[&[0, 1]]).unwrap().is_empty());
    }

    #[test]
    fn netem_takes_delay_jitter_loss_and_reordering() {
        let netem = Netem {
            delay: Duration::from_millis(120),
            jitter: Duration::from_millis(30),
            loss_percent: 2.5,
            reorder_percent: 10.0,
        };
        assert_eq!(
            netem_args("eth0", &netem).unwrap().join(" "),
            "qdisc replace dev eth0 root netem delay 120000us 30000us loss 2.5% reorder 10%"
        );
        let loss_only = Netem { loss_percent: 5.0, ..Netem::default() };
        assert_eq!(
            netem_args("h2", &loss_only).unwrap().join(" "),
            "qdisc replace dev h2 root netem loss 5%"
        );
        let reorder_without_delay = Netem { reorder_percent: 5.0, ..Netem::default() };
        assert!(netem_args("eth0", &reorder_without_delay).is_err());
        assert!(netem_args("eth0", &Netem { loss_percent: 120.0, ..Netem::default() }).is_err());
    }
}
