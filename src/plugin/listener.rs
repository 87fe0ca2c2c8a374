//! The socket the host dials, and the stream of (optionally TLS-wrapped) connections fed to tonic.
//!
//! Unix sockets are used wherever the platform has them, as go-plugin does; TCP on 127.0.0.1 is
//! the fallback elsewhere. This module owns the socket file and removes it when dropped; it never
//! decides what the connections carry.

use std::io;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
#[cfg(unix)]
use tokio::net::UnixListener;
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::Connected;

use super::handshake::Address;

/// How long a client may take to complete the TLS handshake before it is dropped.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Pause after a failed `accept` (for example when out of file descriptors) so the loop does not
/// spin while the condition lasts.
const ACCEPT_RETRY_DELAY: Duration = Duration::from_millis(50);

/// Attempts at finding an unused random socket name before giving up.
const SOCKET_NAME_ATTEMPTS: usize = 16;

/// A bound listening socket.
#[derive(Debug)]
pub enum Listener {
    /// A unix socket; the path is removed when the `SocketFile` returned alongside is dropped.
    #[cfg(unix)]
    Unix(UnixListener),
    /// A loopback TCP socket.
    Tcp(TcpListener),
}

/// Removes the unix socket file when dropped, so no stale socket outlives the process's normal
/// exit.
#[derive(Debug)]
pub struct SocketFile(PathBuf);

impl Drop for SocketFile {
    fn drop(&mut self) {
        // Nothing useful can be done about a failure at exit; a leftover file in a temp dir is
        // harmless.
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Binds a unix socket with a fresh random name in `dir` (the temp dir when `None`).
#[cfg(unix)]
pub fn bind_unix(dir: Option<&Path>) -> io::Result<(Listener, Address, SocketFile)> {
    let dir = dir.map_or_else(std::env::temp_dir, Path::to_path_buf);
    let mut last_error = None;
    for _ in 0..SOCKET_NAME_ATTEMPTS {
        let path = dir.join(format!("plugin{}", rand::random::<u32>()));
        match UnixListener::bind(&path) {
            Ok(listener) => {
                let address = Address::Unix(path.to_string_lossy().into_owned());
                return Ok((Listener::Unix(listener), address, SocketFile(path)));
            }
            Err(err) if err.kind() == io::ErrorKind::AddrInUse => last_error = Some(err),
            Err(err) => return Err(err),
        }
    }
    Err(last_error.unwrap_or_else(|| io::Error::other("no free socket name")))
}

/// Binds TCP on 127.0.0.1 at the first free port of `ports`, or an OS-chosen port when `None`.
pub async fn bind_tcp(ports: Option<RangeInclusive<u16>>) -> io::Result<(Listener, Address)> {
    let ports = ports.unwrap_or(0..=0);
    let mut last_error = None;
    for port in ports {
        match TcpListener::bind(("127.0.0.1", port)).await {
            Ok(listener) => {
                let address = Address::Tcp(listener.local_addr()?.to_string());
                return Ok((Listener::Tcp(listener), address));
            }
            Err(err) => last_error = Some(err),
        }
    }
    Err(last_error.unwrap_or_else(|| io::Error::other("the port range is empty")))
}

/// Accepts connections in a background task, completing the TLS handshake first when `tls` is
/// set, and hands them over as a stream for tonic. The task ends once tonic drops the stream.
pub fn incoming(listener: Listener, tls: Option<TlsAcceptor>) -> ReceiverStream<io::Result<Conn>> {
    let (sender, receiver) = mpsc::channel(16);
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                () = sender.closed() => break,
                accepted = listener.accept() => accepted,
            };
            let stream = match accepted {
                Ok(stream) => stream,
                Err(err) => {
                    tracing::warn!(error = %err, "cannot accept a plugin host connection");
                    tokio::time::sleep(ACCEPT_RETRY_DELAY).await;
                    continue;
                }
            };
            match &tls {
                None => {
                    if sender.send(Ok(stream)).await.is_err() {
                        break;
                    }
                }
                // The handshake runs on its own task so a slow client cannot stall accepting.
                Some(acceptor) => {
                    tokio::spawn(secure(acceptor.clone(), stream, sender.clone()));
                }
            }
        }
    });
    ReceiverStream::new(receiver)
}

/// Completes the server side of the TLS handshake and passes the connection on; a client that
/// fails the handshake (for example with a certificate other than the pinned one) is dropped.
async fn secure(acceptor: TlsAcceptor, stream: Conn, sender: mpsc::Sender<io::Result<Conn>>) {
    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(tls_stream)) => {
            let _ = sender.send(Ok(Conn::new(tls_stream))).await;
        }
        Ok(Err(err)) => tracing::warn!(error = %err, "refused a connection at the TLS handshake"),
        Err(_) => tracing::warn!("refused a connection that did not finish the TLS handshake"),
    }
}

impl Listener {
    async fn accept(&self) -> io::Result<Conn> {
        match self {
            #[cfg(unix)]
            Self::Unix(listener) => Ok(Conn::new(listener.accept().await?.0)),
            Self::Tcp(listener) => {
                let (stream, _) = listener.accept().await?;
                // Without this, small gRPC frames wait out Nagle's delay, about 40 ms per call.
                stream.set_nodelay(true)?;
                Ok(Conn::new(stream))
            }
        }
    }
}

/// Any byte stream the server can speak gRPC over.
trait Io: AsyncRead + AsyncWrite + Send + 'static {}

impl<T: AsyncRead + AsyncWrite + Send + 'static> Io for T {}

/// One accepted connection, whatever its socket type and whether or not it is wrapped in TLS.
pub struct Conn(Pin<Box<dyn Io>>);

impl Conn {
    fn new(stream: impl AsyncRead + AsyncWrite + Send + 'static) -> Self {
        Self(Box::pin(stream))
    }
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Conn")
    }
}

impl Connected for Conn {
    type ConnectInfo = ();

    fn connect_info(&self) -> Self::ConnectInfo {}
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.get_mut().0.as_mut().poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().0.as_mut().poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().0.as_mut().poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().0.as_mut().poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().0.as_mut().poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_stream::StreamExt;

    use super::*;

    #[cfg(unix)]
    #[tokio::test]
    async fn unix_socket_is_created_in_dir_and_removed_on_drop() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (listener, address, file) = bind_unix(Some(dir.path())).expect("bind");
        let Address::Unix(path) = address else { panic!("expected a unix address") };
        assert!(path.starts_with(dir.path().to_str().expect("utf-8")), "{path}");
        assert!(Path::new(&path).exists());

        let mut connections = incoming(listener, None);
        let mut client = tokio::net::UnixStream::connect(&path).await.expect("connect");
        let mut server = connections.next().await.expect("a connection").expect("accepted");
        client.write_all(b"ping").await.expect("write");
        let mut buf = [0; 4];
        server.read_exact(&mut buf).await.expect("read");
        assert_eq!(&buf, b"ping");

        drop(file);
        assert!(!Path::new(&path).exists());
    }

    #[tokio::test]
    async fn tcp_binds_within_range_or_fails() {
        let (_held, first) = bind_tcp(None).await.expect("any port");
        let Address::Tcp(first) = first else { panic!("expected a tcp address") };
        let taken: u16 = first.rsplit(':').next().and_then(|p| p.parse().ok()).expect("port");

        let cases = [
            ("range holding only a taken port", Some(taken..=taken), None),
            ("os-chosen port", None, Some("127.0.0.1:")),
        ];
        for (name, ports, expected_prefix) in cases {
            let bound = bind_tcp(ports).await;
            match (bound, expected_prefix) {
                (Ok((_, Address::Tcp(addr))), Some(prefix)) => {
                    assert!(addr.starts_with(prefix), "{name}: {addr}")
                }
                (Err(_), None) => {}
                (other, _) => panic!("{name}: unexpected {other:?}"),
            }
        }
    }
}
