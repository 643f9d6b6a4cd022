//! Pod IPs on the loopback interface: with its pod's IP on `lo`, a sidecar's inbound listener
//! (which istiod binds to the pod IP, as on a real node) is reachable at `podIP:port`, and
//! several pods can use the same port, each on its own address.
use std::net::Ipv4Addr;
use std::process::Command;

use crate::Error;

/// kwok's pod CIDR (`10.244.0.0/16`): only addresses in it are ever added or removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: u32,
    prefix: u8,
}

impl std::str::FromStr for Cidr {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (ip, prefix) = text
            .split_once('/')
            .ok_or_else(|| "expected an IPv4 CIDR like 10.244.0.0/16".to_string())?;
        let ip: Ipv4Addr = ip.parse().map_err(|err| format!("{ip}: {err}"))?;
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| (8..=32).contains(p))
            .ok_or_else(|| format!("prefix length {prefix}: expected 8 to 32"))?;
        Ok(Cidr {
            network: u32::from(ip) & mask(prefix),
            prefix,
        })
    }
}

fn mask(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

impl Cidr {
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & mask(self.prefix) == self.network
    }

    /// The highest address of the range that `free` accepts (kwok allocates from the bottom,
    /// so the top stays clear of the pods it numbers).
    pub fn spare(&self, free: impl Fn(Ipv4Addr) -> bool) -> Option<Ipv4Addr> {
        let size = 1u64 << (32 - u32::from(self.prefix));
        (1..size.saturating_sub(1))
            .rev()
            .filter_map(|offset| u32::try_from(u64::from(self.network) + offset).ok())
            .map(Ipv4Addr::from)
            .find(|ip| free(*ip))
    }
}

fn ip_command(args: &[&str]) -> Result<std::process::Output, Error> {
    Command::new("ip")
        .args(args)
        .output()
        .map_err(|source| Error::Io {
            what: "cannot run `ip` (iproute2: scripts/setup istio installs it)",
            path: "ip".into(),
            source,
        })
}

/// Who holds which pod IP. kwok hands a deleted pod's IP to the next pod at once, so a new
/// pod's sidecar may be due while the old one with the same IP still drains. Two Envoys on
/// one `IP:port` would share its connections (SO_REUSEPORT), and requests meant for the new
/// pod would reach the old one: so a sidecar waits until the IP is free, then holds it alone.
#[derive(Debug, Default)]
pub struct Leases {
    holders: std::sync::Mutex<std::collections::HashMap<Ipv4Addr, usize>>,
}

/// How long a new sidecar waits for the previous holder of its pod IP to stop.
const HANDOVER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

impl Leases {
    /// Waits until no sidecar holds `ip`, then adds it to `lo` and holds it.
    pub async fn acquire(&self, ip: Ipv4Addr) -> Result<(), Error> {
        let deadline = tokio::time::Instant::now() + HANDOVER_TIMEOUT;
        loop {
            {
                let mut holders = self.holders.lock().unwrap_or_else(|e| e.into_inner());
                let count = holders.entry(ip).or_default();
                if *count == 0 {
                    add(ip)?;
                    *count = 1;
                    return Ok(());
                }
            }
            if tokio::time::Instant::now() > deadline {
                return Err(Error::Loopback {
                    ip,
                    message: format!(
                        "still held by the sidecar of a deleted pod after {}s",
                        HANDOVER_TIMEOUT.as_secs()
                    ),
                });
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    pub fn held(&self, ip: Ipv4Addr) -> bool {
        let holders = self.holders.lock().unwrap_or_else(|e| e.into_inner());
        holders.get(&ip).is_some_and(|count| *count > 0)
    }

    pub fn release(&self, ip: Ipv4Addr) {
        let mut holders = self.holders.lock().unwrap_or_else(|e| e.into_inner());
        let Some(count) = holders.get_mut(&ip) else {
            return;
        };
        *count -= 1;
        if *count == 0 {
            holders.remove(&ip);
            remove(ip);
        }
    }
}

/// Adds `ip/32` to `lo` (already there is fine: an earlier run's, released at start).
fn add(ip: Ipv4Addr) -> Result<(), Error> {
    let address = format!("{ip}/32");
    let output = ip_command(&["-4", "addr", "add", &address, "dev", "lo"])?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    // iproute2 says "File exists" or "Address already assigned", by version.
    if output.status.success()
        || stderr.contains("File exists")
        || stderr.contains("already assigned")
    {
        return Ok(());
    }
    Err(Error::Loopback {
        ip,
        message: stderr.trim().to_string(),
    })
}

fn remove(ip: Ipv4Addr) {
    let address = format!("{ip}/32");
    if let Err(err) = ip_command(&["-4", "addr", "del", &address, "dev", "lo"]) {
        eprintln!("local-mesh: cannot remove {address} from lo: {err}");
    }
}

/// Removes what an earlier run that did not stop cleanly left on `lo` in the pod CIDR.
pub fn release_stale(cidr: &Cidr) -> Result<(), Error> {
    let output = ip_command(&["-4", "-o", "addr", "show", "dev", "lo"])?;
    for ip in addresses(&String::from_utf8_lossy(&output.stdout)) {
        if cidr.contains(ip) {
            remove(ip);
        }
    }
    Ok(())
}

/// The addresses of `ip -4 -o addr show` lines (`1: lo    inet 10.244.0.1/32 scope ...`).
fn addresses(text: &str) -> Vec<Ipv4Addr> {
    text.lines()
        .filter_map(|line| line.split_whitespace().skip_while(|w| *w != "inet").nth(1))
        .filter_map(|cidr| cidr.split('/').next()?.parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_membership() {
        let cidr: Cidr = "10.244.0.0/16".parse().unwrap();
        assert!(cidr.contains("10.244.3.7".parse().unwrap()));
        assert!(!cidr.contains("10.245.0.1".parse().unwrap()));
        assert!(!cidr.contains("127.0.0.1".parse().unwrap()));
        assert!("10.244.0.0".parse::<Cidr>().is_err());
        assert!("10.244.0.0/40".parse::<Cidr>().is_err());
    }

    #[test]
    fn spares_come_from_the_top_of_the_range() {
        let cidr: Cidr = "10.244.0.0/16".parse().unwrap();
        assert_eq!(cidr.spare(|_| true), Some(Ipv4Addr::new(10, 244, 255, 254)));
        let taken = Ipv4Addr::new(10, 244, 255, 254);
        assert_eq!(
            cidr.spare(|ip| ip != taken),
            Some(Ipv4Addr::new(10, 244, 255, 253))
        );
        let tiny: Cidr = "10.0.0.0/30".parse().unwrap();
        assert_eq!(tiny.spare(|_| false), None);
    }

    #[test]
    fn addresses_of_ip_o_output() {
        let text = "1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever\n1: lo    inet 10.244.0.5/32 scope global lo\\       valid_lft forever\n";
        assert_eq!(
            addresses(text),
            vec![Ipv4Addr::new(127, 0, 0, 1), Ipv4Addr::new(10, 244, 0, 5)]
        );
    }
}
