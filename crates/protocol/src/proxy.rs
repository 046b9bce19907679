//! The PROXY protocol, version 2 (HAProxy's binary header), which a load
//! balancer passing TCP through writes at the start of each connection to
//! say whose connection it is. The header is parsed by the `ppp` crate;
//! this module frames it (how many bytes to read, at most
//! [`MAX_HEADER_LEN`]) and says which address the connection counts as.
//!
//! Only connections from the load balancers an operator lists may carry
//! one: anyone else could claim any address. Version 1 (text) is not
//! accepted: every balancer that writes it writes version 2 too.

use ppp::v2::{Addresses, Command, Header, ParseError, PROTOCOL_PREFIX};
use std::net::SocketAddr;

/// Bytes of the fixed part: the 12-byte signature, version and command,
/// family and protocol, and the length of the rest.
pub const PREFIX_LEN: usize = 16;

/// Largest header accepted: the fixed part, the addresses (36 bytes for
/// IPv6) and room for TLVs (a cloud balancer's endpoint identifiers). The
/// format allows 64 KiB; nothing we read needs that, and a balancer that
/// sends more is misconfigured.
pub const MAX_HEADER_LEN: usize = 1024;

/// Why a header was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProxyHeaderError {
    /// The connection does not start with the version 2 signature.
    #[error("the connection does not start with a PROXY protocol v2 header")]
    NotProxy,
    /// The header says it is longer than [`MAX_HEADER_LEN`].
    #[error("PROXY header of {0} bytes is longer than {MAX_HEADER_LEN}")]
    TooLong(usize),
    /// The header is malformed.
    #[error("malformed PROXY header: {0}")]
    Malformed(String),
}

/// The whole header's length from its first [`PREFIX_LEN`] bytes.
pub fn header_len(prefix: &[u8; PREFIX_LEN]) -> Result<usize, ProxyHeaderError> {
    if !prefix.starts_with(PROTOCOL_PREFIX) {
        return Err(ProxyHeaderError::NotProxy);
    }
    if prefix[12] & 0xF0 != 0x20 {
        return Err(ProxyHeaderError::Malformed(format!(
            "version {}",
            prefix[12] >> 4
        )));
    }
    let len = PREFIX_LEN + usize::from(u16::from_be_bytes([prefix[14], prefix[15]]));
    if len > MAX_HEADER_LEN {
        return Err(ProxyHeaderError::TooLong(len));
    }
    Ok(len)
}

/// The client's address from a whole header (as [`header_len`] measured
/// it): `Some` for a proxied TCP connection over IPv4 or IPv6, `None` when
/// the connection is the balancer's own (`LOCAL`, e.g. a health check) or
/// names no IP address; then the connection counts as the balancer's.
pub fn client_address(header: &[u8]) -> Result<Option<SocketAddr>, ProxyHeaderError> {
    let parsed = Header::try_from(header).map_err(|e| match e {
        ParseError::Prefix => ProxyHeaderError::NotProxy,
        other => ProxyHeaderError::Malformed(other.to_string()),
    })?;
    if parsed.header.len() != header.len() {
        return Err(ProxyHeaderError::Malformed(format!(
            "{} bytes framed, {} parsed",
            header.len(),
            parsed.header.len()
        )));
    }
    if parsed.command == Command::Local {
        return Ok(None);
    }
    Ok(match parsed.addresses {
        Addresses::IPv4(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
        Addresses::IPv6(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
        Addresses::Unspecified | Addresses::Unix(_) => None,
    })
}

/// Both steps on a buffer that starts with a header (the fuzz target and
/// tests): the client's address and the header's length.
pub fn parse(bytes: &[u8]) -> Result<(Option<SocketAddr>, usize), ProxyHeaderError> {
    let prefix: &[u8; PREFIX_LEN] = bytes
        .get(..PREFIX_LEN)
        .and_then(|p| p.try_into().ok())
        .ok_or(ProxyHeaderError::NotProxy)?;
    let len = header_len(prefix)?;
    let header = bytes
        .get(..len)
        .ok_or_else(|| ProxyHeaderError::Malformed("cut short".into()))?;
    Ok((client_address(header)?, len))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use ppp::v2::{Builder, Protocol, Version};

    fn header(command: Command, addresses: Addresses, tlv_bytes: usize) -> Vec<u8> {
        let mut b = Builder::with_addresses(Version::Two | command, Protocol::Stream, addresses);
        if tlv_bytes > 0 {
            b = b.write_tlv(0xE0, vec![7u8; tlv_bytes].as_slice()).unwrap();
        }
        b.build().unwrap()
    }

    #[test]
    fn a_proxied_connection_counts_as_its_client() {
        let v4: SocketAddr = "203.0.113.7:50123".parse().unwrap();
        let dst: SocketAddr = "10.0.0.5:8443".parse().unwrap();
        let mut bytes = header(Command::Proxy, (v4, dst).into(), 0);
        let len = bytes.len();
        // What follows the header (the TLS ClientHello) is not consumed.
        bytes.extend_from_slice(&[0x16, 0x03, 0x01]);
        assert_eq!(parse(&bytes).unwrap(), (Some(v4), len));

        let v6: SocketAddr = "[2001:db8::1]:443".parse().unwrap();
        let dst6: SocketAddr = "[2001:db8::2]:8443".parse().unwrap();
        let bytes = header(Command::Proxy, (v6, dst6).into(), 40);
        assert_eq!(parse(&bytes).unwrap().0, Some(v6));
    }

    #[test]
    fn a_health_check_counts_as_the_balancer() {
        let bytes = header(Command::Local, Addresses::Unspecified, 0);
        assert_eq!(parse(&bytes).unwrap(), (None, PREFIX_LEN));
    }

    #[test]
    fn anything_else_is_refused() {
        // TLS straight away, an HTTP request, the text version 1.
        for bytes in [
            &b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\x00\x00\x00\x00\x00"[..],
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
            b"PROXY TCP4 203.0.113.7 10.0.0.5 50123 8443\r\n",
        ] {
            assert_eq!(parse(bytes), Err(ProxyHeaderError::NotProxy), "{bytes:?}");
        }
        // Longer than we accept, though the format allows it.
        let v4: SocketAddr = "203.0.113.7:1".parse().unwrap();
        let big = header(Command::Proxy, (v4, v4).into(), 2000);
        assert!(matches!(parse(&big), Err(ProxyHeaderError::TooLong(_))));
        // Version 1 in the binary framing, an unknown command, addresses
        // longer than the header says.
        let mut bad = header(Command::Proxy, (v4, v4).into(), 0);
        bad[12] = 0x11;
        assert!(matches!(parse(&bad), Err(ProxyHeaderError::Malformed(_))));
        bad[12] = 0x2F;
        assert!(matches!(parse(&bad), Err(ProxyHeaderError::Malformed(_))));
        let mut short = header(Command::Proxy, (v4, v4).into(), 0);
        short[15] = 4;
        short.truncate(PREFIX_LEN + 4);
        assert!(matches!(parse(&short), Err(ProxyHeaderError::Malformed(_))));
        // Cut short.
        let whole = header(Command::Proxy, (v4, v4).into(), 0);
        assert!(parse(&whole[..whole.len() - 1]).is_err());
    }
}
