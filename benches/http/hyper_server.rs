//! The comparison server for `benches/http.sh`: what a Rust user would pick instead of this
//! crate for an HTTP/1.1 server. hyper 1.x, HTTP/1 only, on tokio's current-thread runtime
//! (one thread, as the reactor), answering every request with TechEmpower's plaintext
//! response: the same status, the same headers (`Server`, `Date`, `Content-Type`,
//! `Content-Length`, title case as the reactor writes them; a `Server` value of the same
//! length) and the same 13-byte body: 136 bytes each.
//!
//! ```text
//! cargo bench --bench http_hyper -- --addr 127.0.0.1:8081
//! ```
//! Without `--addr` it only says what it is, so that a plain `cargo bench` does not start a
//! server that never returns. It prints `hyper listening on ADDR` once bound.

use std::convert::Infallible;
use std::net::SocketAddr;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CONTENT_TYPE, SERVER};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

/// The same plaintext response as the http_server example's `/plaintext`. hyper adds
/// `Date` (cached per second, as the example does) and `Content-Length` itself.
async fn plaintext(_: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut response = Response::new(Full::new(Bytes::from_static(b"Hello, World!")));
    let headers = response.headers_mut();
    headers.insert(SERVER, HeaderValue::from_static("hyper-tokio"));
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    Ok(response)
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut addr: Option<SocketAddr> = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--addr" => {
                let value = args.next().unwrap_or_default();
                addr = Some(value.parse().map_err(std::io::Error::other)?);
            }
            // `cargo bench` passes `--bench` to every bench binary.
            "--bench" => {}
            other => {
                eprintln!("http_hyper: unknown option {other:?}");
                std::process::exit(2);
            }
        }
    }
    let Some(addr) = addr else {
        println!("http_hyper: the hyper server for benches/http.sh; give it --addr to serve");
        return Ok(());
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        println!("hyper listening on {}", listener.local_addr()?);
        loop {
            let (stream, _) = listener.accept().await?;
            // As the reactor does by default: replies leave at once.
            stream.set_nodelay(true)?;
            tokio::spawn(async move {
                let served = http1::Builder::new()
                    .title_case_headers(true)
                    // Gathers the responses to pipelined requests into one write, as the
                    // reactor's handler does; what hyper's TechEmpower entry uses.
                    .pipeline_flush(true)
                    .serve_connection(TokioIo::new(stream), service_fn(plaintext))
                    .await;
                if let Err(err) = served {
                    eprintln!("http_hyper: connection: {err}");
                }
            });
        }
    })
}
