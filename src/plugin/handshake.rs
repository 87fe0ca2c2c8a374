//! What the plugin host tells us through the environment, and the one line we answer on stdout.
//!
//! Everything here is pure: the environment arrives through a lookup function so tests can feed
//! any combination of variables. This module never touches sockets, certificates or stdout.

use std::ops::RangeInclusive;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;

use super::PluginError;

/// The value go-plugin hosts put in [`MAGIC_COOKIE_KEY`] so a plugin knows it was not started by
/// hand; Terraform has used this value for every provider since 0.12.
pub const MAGIC_COOKIE_VALUE: &str =
    "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";

/// The environment variable carrying the magic cookie.
pub const MAGIC_COOKIE_KEY: &str = "TF_PLUGIN_MAGIC_COOKIE";

/// The only plugin protocol version this provider speaks (tfplugin6).
pub const PROTOCOL_VERSION: u32 = 6;

/// The handshake protocol version of go-plugin itself, the first field of the handshake line.
const CORE_PROTOCOL_VERSION: u32 = 1;

/// The settings the host passed to this process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSettings {
    /// The negotiated protocol version; always [`PROTOCOL_VERSION`] once validated.
    pub protocol_version: u32,
    /// PEM of the host's client certificate; `None` means serve plaintext.
    pub client_cert_pem: Option<String>,
    /// Where to create the unix socket; `None` means the system temp dir.
    pub unix_socket_dir: Option<String>,
    /// TCP ports we may listen on when unix sockets are unavailable; `None` lets the OS choose.
    pub tcp_ports: Option<RangeInclusive<u16>>,
}

impl HostSettings {
    /// Reads and validates the host's variables through `lookup` (normally `std::env::var`).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, PluginError> {
        if lookup(MAGIC_COOKIE_KEY).as_deref() != Some(MAGIC_COOKIE_VALUE) {
            return Err(PluginError::NotLaunchedByHost);
        }

        let protocol_version = negotiate(lookup("PLUGIN_PROTOCOL_VERSIONS").as_deref())?;
        let client_cert_pem = lookup("PLUGIN_CLIENT_CERT").filter(|pem| !pem.trim().is_empty());
        let unix_socket_dir = lookup("PLUGIN_UNIX_SOCKET_DIR").filter(|dir| !dir.is_empty());
        let tcp_ports =
            port_range(lookup("PLUGIN_MIN_PORT").as_deref(), lookup("PLUGIN_MAX_PORT").as_deref())?;

        Ok(Self { protocol_version, client_cert_pem, unix_socket_dir, tcp_ports })
    }
}

/// Picks our protocol version from the host's comma-separated offer.
///
/// A host that offers nothing (a developer starting the binary by hand with the cookie) gets
/// version 6; entries that are not numbers are ignored, as go-plugin does.
fn negotiate(offered: Option<&str>) -> Result<u32, PluginError> {
    let Some(offered) = offered.map(str::trim).filter(|offer| !offer.is_empty()) else {
        return Ok(PROTOCOL_VERSION);
    };
    let speaks_ours = offered
        .split(',')
        .filter_map(|version| version.trim().parse::<u32>().ok())
        .any(|version| version == PROTOCOL_VERSION);
    if speaks_ours {
        Ok(PROTOCOL_VERSION)
    } else {
        Err(PluginError::UnsupportedProtocol { offered: offered.to_owned() })
    }
}

/// Reads `PLUGIN_MIN_PORT`/`PLUGIN_MAX_PORT`; both unset or both zero lets the OS pick a port.
fn port_range(
    min: Option<&str>,
    max: Option<&str>,
) -> Result<Option<RangeInclusive<u16>>, PluginError> {
    let parse = |name: &'static str, value: Option<&str>| -> Result<u16, PluginError> {
        match value.map(str::trim).filter(|value| !value.is_empty()) {
            None => Ok(0),
            Some(value) => value
                .parse()
                .map_err(|_| PluginError::InvalidPort { name, value: value.to_owned() }),
        }
    };
    let min = parse("PLUGIN_MIN_PORT", min)?;
    let max = parse("PLUGIN_MAX_PORT", max)?;

    match (min, max) {
        (0, 0) => Ok(None),
        (min, 0) => Ok(Some(min..=u16::MAX)),
        (min, max) if min <= max => Ok(Some(min..=max)),
        (min, max) => Err(PluginError::EmptyPortRange { min, max }),
    }
}

/// The transport the host must dial, as named in the handshake line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// A unix socket path.
    Unix(String),
    /// A TCP `host:port`.
    Tcp(String),
}

/// Formats the handshake line (without the newline): core version, protocol version, network,
/// address, `grpc`, and the server certificate in unpadded standard base64 (empty for plaintext).
///
/// The seventh, multiplexing field is never written: this server does not multiplex.
pub fn handshake_line(protocol_version: u32, address: &Address, server_cert_der: &[u8]) -> String {
    let (network, address) = match address {
        Address::Unix(path) => ("unix", path.as_str()),
        Address::Tcp(addr) => ("tcp", addr.as_str()),
    };
    // go-plugin's client loads a certificate only from a long field, so empty means plaintext.
    let cert = STANDARD_NO_PAD.encode(server_cert_der);
    format!("{CORE_PROTOCOL_VERSION}|{protocol_version}|{network}|{address}|grpc|{cert}")
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn lookup_in(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: HashMap<String, String> =
            vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |key| vars.get(key).cloned()
    }

    #[test]
    fn host_settings_are_validated() {
        let cookie = (MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE);
        /// Variables set, and the settings or an error message fragment.
        type Case =
            (&'static str, Vec<(&'static str, &'static str)>, Result<HostSettings, &'static str>);
        let cases: &[Case] = &[
            (
                "terraform's usual environment",
                vec![
                    cookie,
                    ("PLUGIN_PROTOCOL_VERSIONS", "5,6"),
                    ("PLUGIN_MIN_PORT", "10000"),
                    ("PLUGIN_MAX_PORT", "25000"),
                    ("PLUGIN_CLIENT_CERT", "-----BEGIN CERTIFICATE-----"),
                ],
                Ok(HostSettings {
                    protocol_version: 6,
                    client_cert_pem: Some("-----BEGIN CERTIFICATE-----".into()),
                    unix_socket_dir: None,
                    tcp_ports: Some(10000..=25000),
                }),
            ),
            (
                "bare cookie serves protocol 6 in plaintext on any port",
                vec![cookie],
                Ok(HostSettings {
                    protocol_version: 6,
                    client_cert_pem: None,
                    unix_socket_dir: None,
                    tcp_ports: None,
                }),
            ),
            (
                "socket dir and blank certificate",
                vec![
                    cookie,
                    ("PLUGIN_PROTOCOL_VERSIONS", " 6 "),
                    ("PLUGIN_UNIX_SOCKET_DIR", "/run/tf"),
                    ("PLUGIN_CLIENT_CERT", "  "),
                ],
                Ok(HostSettings {
                    protocol_version: 6,
                    client_cert_pem: None,
                    unix_socket_dir: Some("/run/tf".into()),
                    tcp_ports: None,
                }),
            ),
            (
                "garbage versions are skipped",
                vec![cookie, ("PLUGIN_PROTOCOL_VERSIONS", "x,6")],
                Ok(HostSettings {
                    protocol_version: 6,
                    client_cert_pem: None,
                    unix_socket_dir: None,
                    tcp_ports: None,
                }),
            ),
            ("no cookie", vec![], Err("not launched by a plugin host")),
            ("wrong cookie", vec![(MAGIC_COOKIE_KEY, "abc")], Err("not launched by a plugin host")),
            (
                "only protocol 5 offered",
                vec![cookie, ("PLUGIN_PROTOCOL_VERSIONS", "5")],
                Err("protocol 6 is required"),
            ),
            ("port not a number", vec![cookie, ("PLUGIN_MIN_PORT", "ten")], Err("PLUGIN_MIN_PORT")),
            (
                "inverted port range",
                vec![cookie, ("PLUGIN_MIN_PORT", "200"), ("PLUGIN_MAX_PORT", "100")],
                Err("200..=100"),
            ),
        ];

        for (name, vars, expected) in cases {
            let actual = HostSettings::from_lookup(lookup_in(vars));
            match (actual, expected) {
                (Ok(actual), Ok(expected)) => assert_eq!(&actual, expected, "{name}"),
                (Err(err), Err(fragment)) => {
                    let message = err.to_string();
                    assert!(message.contains(fragment), "{name}: {message:?} lacks {fragment:?}");
                }
                (actual, expected) => panic!("{name}: got {actual:?}, expected {expected:?}"),
            }
        }
    }

    #[test]
    fn handshake_line_shapes() {
        let cases = [
            (
                "unix with certificate",
                Address::Unix("/tmp/plugin123".into()),
                vec![0xde, 0xad, 0xbe, 0xef],
                "1|6|unix|/tmp/plugin123|grpc|3q2+7w",
            ),
            (
                "tcp plaintext",
                Address::Tcp("127.0.0.1:10000".into()),
                vec![],
                "1|6|tcp|127.0.0.1:10000|grpc|",
            ),
        ];
        for (name, address, cert, expected) in cases {
            assert_eq!(handshake_line(6, &address, &cert), expected, "{name}");
        }
    }
}
