//! A recording HTTP server on 127.0.0.1 with a queue of planned replies, optionally serving files.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use serde_json::Value;

/// One request as the server received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Status the server answered with; `None` if it never answered.
    pub status: Option<u16>,
}

impl Received {
    /// Header value by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.body_text()))
    }

    /// The body as text.
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Events carried, whatever the protocol: Segment/PostHog `batch` items or the plain object.
    pub fn events(&self) -> Vec<Value> {
        let body = self.json();
        match body.get("batch") {
            Some(Value::Array(items)) => items.clone(),
            _ => vec![body],
        }
    }
}

fn bind(addr: &str) -> tiny_http::Server {
    tiny_http::Server::http(addr).unwrap_or_else(|e| panic!("bind {addr}: {e}"))
}

/// How the server answers one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// This status with a `{}` body.
    Status(u16),
    /// This status and body.
    Body(u16, String),
    /// This status and binary body (a file to download).
    Bytes(u16, Vec<u8>),
    /// This status with `Retry-After: N`.
    RetryAfter(u16, u64),
    /// Wait, then answer with the status.
    Delay(Duration, u16),
    /// Never answer; the connection stays open until the server is dropped.
    Hang,
}

/// A recording HTTP server with a queue of planned replies (200 once the plan is used up).
pub struct Server {
    pub url: String,
    received: Arc<Mutex<Vec<Received>>>,
    downloads: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// A server that answers 200 to everything.
    pub fn start() -> Server {
        Server::with_plan(Vec::new())
    }

    /// A server that answers with `plan`, in order, then 200.
    pub fn with_plan(plan: Vec<Reply>) -> Server {
        Server::new(bind("127.0.0.1:0"), plan, None)
    }

    /// A server on `addr` (`[::1]:0`) that answers with `plan`, then 200.
    pub fn at(addr: &str, plan: Vec<Reply>) -> Server {
        Server::new(bind(addr), plan, None)
    }

    /// A server that answers 200 on a socket a test already listens on (a black hole coming back
    /// on its own port: a freed port could be taken by a parallel test before it is bound again).
    pub fn on(listener: std::net::TcpListener) -> Server {
        let http =
            tiny_http::Server::from_listener(listener, None).unwrap_or_else(|e| panic!("serve on a listener: {e}"));
        Server::new(http, Vec::new(), None)
    }

    /// A release host and a receiver in one: GET requests are answered with the files under `dir`
    /// (404 for others) and listed in `downloads`; every other request is recorded as `start` does.
    pub fn serving(dir: &Path) -> Server {
        Server::new(bind("127.0.0.1:0"), Vec::new(), Some(dir.to_owned()))
    }

    fn new(http: tiny_http::Server, plan: Vec<Reply>, files: Option<PathBuf>) -> Server {
        let url = format!("http://{}", http.server_addr().to_ip().expect("ip address"));
        let received = Arc::new(Mutex::new(Vec::new()));
        let plan = Arc::new(Mutex::new(plan.into_iter().collect::<VecDeque<_>>()));
        let downloads = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (received, plan, stop) = (received.clone(), plan.clone(), stop.clone());
            let files = files.map(|dir| (dir, downloads.clone()));
            thread::spawn(move || serve(http, received, plan, files, stop))
        };
        Server {
            url,
            received,
            downloads,
            stop,
            thread: Some(thread),
        }
    }

    /// Paths of the GET requests a `serving` server answered from its directory or with 404.
    pub fn downloads(&self) -> Vec<String> {
        self.downloads.lock().unwrap().clone()
    }

    /// Everything received so far.
    pub fn requests(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// All events received so far, across requests.
    pub fn events(&self) -> Vec<Value> {
        self.requests().iter().flat_map(Received::events).collect()
    }

    /// Events of the requests the server answered with 2xx, in order of arrival.
    pub fn accepted(&self) -> Vec<Value> {
        self.requests()
            .iter()
            .filter(|r| r.status.is_some_and(|s| (200..300).contains(&s)))
            .flat_map(Received::events)
            .collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(
    http: tiny_http::Server,
    received: Arc<Mutex<Vec<Received>>>,
    plan: Arc<Mutex<VecDeque<Reply>>>,
    files: Option<(PathBuf, Arc<Mutex<Vec<String>>>)>,
    stop: Arc<AtomicBool>,
) {
    let mut held = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        let Ok(Some(mut request)) = http.recv_timeout(Duration::from_millis(20)) else {
            continue;
        };
        if let Some((dir, downloads)) = files.as_ref().filter(|_| request.method() == &tiny_http::Method::Get) {
            let url = request.url().to_owned();
            let name = url.trim_start_matches('/');
            let file = (!name.split('/').any(|part| part == "..")).then(|| dir.join(name));
            let _ = match file.and_then(|f| std::fs::read(f).ok()) {
                Some(bytes) => request.respond(tiny_http::Response::from_data(bytes)),
                None => request.respond(tiny_http::Response::from_string("not found").with_status_code(404)),
            };
            downloads.lock().unwrap().push(url);
            continue;
        }
        let mut body = Vec::new();
        let _ = request.as_reader().read_to_end(&mut body);
        let reply = plan.lock().unwrap().pop_front().unwrap_or(Reply::Status(200));
        let status = match &reply {
            Reply::Status(s)
            | Reply::Body(s, _)
            | Reply::Bytes(s, _)
            | Reply::RetryAfter(s, _)
            | Reply::Delay(_, s) => Some(*s),
            Reply::Hang => None,
        };
        received.lock().unwrap().push(Received {
            method: request.method().to_string(),
            url: request.url().to_owned(),
            headers: request
                .headers()
                .iter()
                .map(|h| (h.field.to_string(), h.value.to_string()))
                .collect(),
            body,
            status,
        });
        let respond = |request: tiny_http::Request, status: u16, body: Vec<u8>, extra: Option<(&str, String)>| {
            let mut response = tiny_http::Response::from_data(body).with_status_code(status);
            if let Some((name, value)) = extra {
                response.add_header(tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()).unwrap());
            }
            let _ = request.respond(response);
        };
        match reply {
            Reply::Status(s) => respond(request, s, b"{}".to_vec(), None),
            Reply::Body(s, body) => respond(request, s, body.into_bytes(), None),
            Reply::Bytes(s, body) => respond(request, s, body, None),
            Reply::RetryAfter(s, secs) => respond(request, s, b"{}".to_vec(), Some(("Retry-After", secs.to_string()))),
            Reply::Delay(d, s) => {
                thread::sleep(d);
                respond(request, s, b"{}".to_vec(), None)
            }
            Reply::Hang => held.push(request),
        }
    }
}
