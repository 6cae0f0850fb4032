//! The port for outgoing HTTP calls (workflow webhooks, webhook deliveries). Domain crates stay
//! free of an HTTP client; the server plugs one in, tests plug in [`RecordingHttp`].

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use std::sync::Mutex;

/// One outgoing request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundRequest {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub timeout_secs: u64,
}

/// What came back; transport failures (DNS, refused, timeout) are `Err(reason)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundResponse {
    pub status: u16,
    /// The first bytes of the body, for delivery logs.
    pub body_excerpt: String,
}

#[async_trait]
pub trait HttpCaller: Send + Sync + Debug {
    async fn call(&self, req: OutboundRequest) -> Result<OutboundResponse, String>;
}

/// Records every request and answers with a fixed status; for tests and dry runs.
#[derive(Debug, Clone)]
pub struct RecordingHttp {
    calls: Arc<Mutex<Vec<OutboundRequest>>>,
    status: Arc<Mutex<u16>>,
}

impl Default for RecordingHttp {
    fn default() -> Self {
        Self {
            calls: Arc::default(),
            status: Arc::new(Mutex::new(200)),
        }
    }
}

impl RecordingHttp {
    pub fn calls(&self) -> Vec<OutboundRequest> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }
    /// The status later calls answer with (e.g. 500 to exercise retries).
    pub fn answer_with(&self, status: u16) {
        if let Ok(mut s) = self.status.lock() {
            *s = status;
        }
    }
}

#[async_trait]
impl HttpCaller for RecordingHttp {
    async fn call(&self, req: OutboundRequest) -> Result<OutboundResponse, String> {
        if let Ok(mut c) = self.calls.lock() {
            c.push(req);
        }
        Ok(OutboundResponse {
            status: self.status.lock().map(|s| *s).unwrap_or(200),
            body_excerpt: String::new(),
        })
    }
}
