//! Name resolution that fails at once when no name server can be reached. The system resolver is
//! used as usual, but first, for a name that `/etc/hosts` does not hold, each name server of
//! `/etc/resolv.conf` is checked: a UDP `connect` asks the kernel for a route (no packet is sent),
//! and a server on this machine gets a small query whose "port unreachable" answer the kernel
//! reports as soon as it is sent. When no server passes, the lookup fails in microseconds instead of
//! musl's resolver polling an unreachable server until the call's deadline.

use std::fs;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};

use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

/// The system resolver behind a no-route check.
#[derive(Debug, Default)]
pub struct RoutedResolver {
    system: DefaultResolver,
}

impl Resolver for RoutedResolver {
    fn resolve(&self, uri: &Uri, config: &Config, timeout: NextTimeout) -> Result<ResolvedSocketAddrs, ureq::Error> {
        if let Some(host) = uri.host().filter(|h| !is_ip(h))
            && needs_dns(host, &read("/etc/hosts"))
        {
            let servers = name_servers(&read("/etc/resolv.conf"));
            if !servers.iter().any(|ip| reachable((*ip, 53).into())) {
                return Err(ureq::Error::Io(io::Error::new(
                    io::ErrorKind::NetworkUnreachable,
                    "no reachable name server",
                )));
            }
        }
        self.system.resolve(uri, config, timeout)
    }
}

fn read(path: &str) -> String {
    fs::read_to_string(path).unwrap_or_default()
}

/// An IP address, bracketed or not: nothing to resolve.
fn is_ip(host: &str) -> bool {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .is_ok()
}

/// True when `host` (a name, not an address) is one the name servers must answer: not in `hosts`.
fn needs_dns(host: &str, hosts: &str) -> bool {
    let name = host.trim_end_matches('.');
    !hosts.lines().any(|line| {
        let line = line.split('#').next().unwrap_or_default();
        line.split_whitespace()
            .skip(1)
            .any(|alias| alias.trim_end_matches('.').eq_ignore_ascii_case(name))
    })
}

/// The `nameserver` addresses of a resolv.conf; the resolvers' default, 127.0.0.1, when none.
fn name_servers(resolv_conf: &str) -> Vec<IpAddr> {
    let servers: Vec<IpAddr> = resolv_conf
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            (words.next() == Some("nameserver")).then(|| words.next()).flatten()
        })
        // A scoped IPv6 address (fe80::1%eth0) keeps its route check on the bare address.
        .filter_map(|addr| addr.split('%').next()?.parse().ok())
        .collect();
    if servers.is_empty() {
        vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]
    } else {
        servers
    }
}

/// A query for the root zone's name servers: any DNS server answers it, in a few hundred bytes.
const ROOT_NS_QUERY: [u8; 17] = [0x62, 0x65, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 1];

/// Whether a name server at `server` may answer: the kernel has a route to it (connecting a UDP
/// socket picks one and sends nothing), and, on this machine, something listens on its port. A local
/// "port unreachable" is reported before `send` returns, so that check waits for nothing; a server
/// elsewhere is not probed (its answer would take a round trip).
fn reachable(server: SocketAddr) -> bool {
    let ip = server.ip();
    let local: SocketAddr = match ip {
        IpAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        IpAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = match UdpSocket::bind(local).and_then(|socket| socket.connect(server).map(|()| socket)) {
        Ok(socket) => socket,
        Err(e) => return !no_route(&e),
    };
    if !ip.is_loopback() || socket.set_nonblocking(true).is_err() {
        return true;
    }
    let refused = |e: io::Error| e.kind() == io::ErrorKind::ConnectionRefused;
    match socket.send(&ROOT_NS_QUERY) {
        Err(e) => !refused(e),
        Ok(_) => !socket.recv(&mut [0; 512]).is_err_and(refused),
    }
}

fn no_route(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NetworkUnreachable
            | io::ErrorKind::HostUnreachable
            | io::ErrorKind::NetworkDown
            | io::ErrorKind::AddrNotAvailable
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_in_hosts_and_ip_literals_need_no_dns() {
        let hosts = "127.0.0.1 localhost\n# 10.0.0.1 commented.example\n10.0.0.2 mirror.corp Mirror.Local # x\n";
        assert!(is_ip("127.0.0.1") && is_ip("[::1]") && !is_ip("localhost"));
        for host in ["localhost", "mirror.corp", "mirror.local", "MIRROR.CORP."] {
            assert!(!needs_dns(host, hosts), "{host}");
        }
        for host in ["api.segment.io", "commented.example", "10.0.0.2.example"] {
            assert!(needs_dns(host, hosts), "{host}");
        }
    }

    #[test]
    fn name_servers_of_resolv_conf() {
        let conf =
            "# x\nsearch corp\nnameserver 10.0.0.53\nnameserver fe80::1%eth0\nnameserver bogus\noptions ndots:2\n";
        assert_eq!(
            name_servers(conf),
            ["10.0.0.53".parse::<IpAddr>().unwrap(), "fe80::1".parse().unwrap()]
        );
        assert_eq!(name_servers(""), [IpAddr::V4(Ipv4Addr::LOCALHOST)]);
    }

    #[test]
    fn a_local_server_must_listen_and_a_remote_one_needs_a_route() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let listening = server.local_addr().unwrap();
        assert!(reachable(listening));
        drop(server);
        assert!(!reachable(listening), "nothing listens there any more");
        // Documentation range (TEST-NET-3): routed by a default route, never probed.
        let remote: SocketAddr = "203.0.113.53:53".parse().unwrap();
        let has_default_route = UdpSocket::bind("0.0.0.0:0").and_then(|s| s.connect(remote)).is_ok();
        assert_eq!(reachable(remote), has_default_route);
    }
}
