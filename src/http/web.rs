//! The web client: static files embedded in the binary, served at `/` and at
//! the client's own paths (`/@alice`, `/search`, ...), so a reload or a shared
//! link opens the right page. The script is one bundle of the client's modules,
//! `web/dist/app.js`, built by `web/build/build.mjs` and committed (see
//! web/README.md): building chirp needs no Node.js.
//!
//! Each file is gzipped once, on first use, and served with an ETag; the
//! page itself carries a strict Content-Security-Policy (no inline script or
//! style; connections only to this origin; images also from the media origin).
//! The page preloads the session check and, at `/` only, the first page of
//! the home timeline: the other paths get a copy without that preload.

use std::borrow::Cow;
use std::io::Write;
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

use crate::error::Error;

struct Asset {
    path: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

macro_rules! asset {
    ($path:literal, $content_type:expr) => {
        asset!($path, $path, $content_type)
    };
    // Served at `/app/$path`, read from `web/$file`.
    ($path:literal, $file:literal, $content_type:expr) => {
        Asset {
            path: $path,
            content_type: $content_type,
            bytes: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/web/", $file)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

const ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("style.css", "text/css; charset=utf-8"),
    // web/*.js and vendor/htm-preact.js in one file (web/build/build.mjs).
    asset!("app.js", "dist/app.js", JS),
    asset!("app.js.map", "dist/app.js.map", "application/json"),
    asset!("icon.svg", "image/svg+xml"),
];

/// index.html's line that has the browser fetch the first timeline page
/// while it loads the modules (app.js then takes that answer): only `/`
/// shows the timeline, so the page at any other path is served without it.
const TIMELINE_PRELOAD: &str = "<link rel=\"preload\" as=\"fetch\" crossorigin href=\"/api/v1/timeline\">\n";
/// The name of that copy of index.html (not a file: never served under `/app/`).
const OTHER_PAGE: &str = "index.html at other paths";

/// An asset ready to serve: its bytes gzipped and its ETag.
struct Prepared {
    path: &'static str,
    content_type: &'static str,
    bytes: Cow<'static, [u8]>,
    gzipped: Vec<u8>,
    etag: HeaderValue,
}

impl Prepared {
    fn new(path: &'static str, content_type: &'static str, bytes: Cow<'static, [u8]>) -> Self {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&bytes).expect("gzip into memory");
        let gzipped = gz.finish().expect("gzip into memory");
        let digest = Sha256::digest(&bytes);
        let etag = format!("\"{}\"", digest.iter().take(12).map(|b| format!("{b:02x}")).collect::<String>());
        Prepared { path, content_type, bytes, gzipped, etag: HeaderValue::try_from(etag).expect("hex is a valid header") }
    }
}

fn prepared() -> &'static [Prepared] {
    static PREPARED: OnceLock<Vec<Prepared>> = OnceLock::new();
    PREPARED.get_or_init(|| {
        let index = ASSETS.iter().find(|a| a.path == "index.html").expect("index.html is embedded");
        let other_page = std::str::from_utf8(index.bytes).expect("index.html is UTF-8").replace(TIMELINE_PRELOAD, "");
        ASSETS
            .iter()
            .map(|a| Prepared::new(a.path, a.content_type, Cow::Borrowed(a.bytes)))
            .chain([Prepared::new(OTHER_PAGE, index.content_type, Cow::Owned(other_page.into_bytes()))])
            .collect()
    })
}

fn find(path: &str) -> Option<&'static Prepared> {
    prepared().iter().find(|p| p.path == path)
}

/// Headers of the page: the policy the whole client runs under.
struct Page {
    csp: HeaderValue,
}

/// `default-src 'self'`, nothing inline, and media possibly on another
/// origin (`CHIRP_PUBLIC_URL`, or an S3 endpoint behind it).
fn content_security_policy(media_base: &str) -> String {
    let media_origin = url::Url::parse(media_base).ok().map(|u| u.origin().ascii_serialization()).filter(|o| o != "null");
    let media = media_origin.map(|o| format!(" {o}")).unwrap_or_default();
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:{media}; \
         media-src 'self' blob:{media}; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; \
         form-action 'self'; frame-ancestors 'none'"
    )
}

fn serve(prepared: &Prepared, request: &HeaderMap) -> Response {
    let mut response = if request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == prepared.etag || t.trim() == "*"))
    {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let gzip = request
            .get(header::ACCEPT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|e| e.split(';').next().is_some_and(|e| e.trim() == "gzip")));
        let mut response = if gzip {
            let mut r = prepared.gzipped.clone().into_response();
            r.headers_mut().insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            r
        } else {
            match &prepared.bytes {
                Cow::Borrowed(bytes) => bytes.into_response(),
                Cow::Owned(bytes) => bytes.clone().into_response(),
            }
        };
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(prepared.content_type));
        response
    };
    let headers = response.headers_mut();
    headers.insert(header::ETAG, prepared.etag.clone());
    headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    // File names carry no version: always revalidate (a 304 when unchanged).
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

/// The page at `/`.
async fn index(state: State<Arc<Page>>, headers: HeaderMap) -> Response {
    page_at("index.html", state, headers)
}

/// The page, as `index.html` (at `/`) or as `OTHER_PAGE`.
fn page_at(name: &str, State(page): State<Arc<Page>>, headers: HeaderMap) -> Response {
    let mut response = serve(find(name).expect("the page is prepared"), &headers);
    let h = response.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, page.csp.clone());
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

async fn file(Path(path): Path<String>, headers: HeaderMap) -> Response {
    match find(&path).filter(|p| p.path != "index.html" && p.path != OTHER_PAGE) {
        Some(p) => serve(p, &headers),
        None => Error::NotFound.into_response(),
    }
}

/// The client's own top-level pages; anything else at one segment is 404.
fn is_page(segment: &str) -> bool {
    matches!(segment, "login" | "signup" | "search" | "notifications" | "settings") || is_profile(segment)
}

fn is_profile(segment: &str) -> bool {
    segment.strip_prefix('@').is_some_and(|name| !name.is_empty() && name.len() <= 30)
}

async fn page(state: State<Arc<Page>>, Path(segment): Path<String>, headers: HeaderMap) -> Response {
    if is_page(&segment) { page_at(OTHER_PAGE, state, headers) } else { Error::NotFound.into_response() }
}

async fn subpage(state: State<Arc<Page>>, Path((segment, sub)): Path<(String, String)>, headers: HeaderMap) -> Response {
    if is_profile(&segment) && matches!(sub.as_str(), "followers" | "followings") {
        page_at(OTHER_PAGE, state, headers)
    } else {
        Error::NotFound.into_response()
    }
}

/// `/`, `/app/*` (the files), and the client's paths.
pub fn router(media_base: &str) -> Router {
    let page_state =
        Arc::new(Page { csp: HeaderValue::try_from(content_security_policy(media_base)).expect("a policy of ASCII origins") });
    Router::new()
        .route("/", get(index))
        .route("/app/{*path}", get(file))
        .route("/{page}", get(page))
        .route("/{page}/{sub}", get(subpage))
        .with_state(page_state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_allows_media_from_the_public_origin_only() {
        assert!(content_security_policy("").contains("img-src 'self' data: blob:;"));
        let csp = content_security_policy("https://media.example.com/chirp");
        assert!(csp.contains("img-src 'self' data: blob: https://media.example.com;"));
        assert!(csp.contains("script-src 'self';"));
    }

    #[test]
    fn every_embedded_file_is_prepared() {
        assert_eq!(prepared().len(), ASSETS.len() + 1);
        assert!(prepared().iter().all(|p| !p.gzipped.is_empty()));
    }

    #[test]
    fn only_the_home_page_preloads_the_timeline() {
        let text = |name| String::from_utf8(find(name).unwrap().bytes.to_vec()).unwrap();
        let (home, other) = (text("index.html"), text(OTHER_PAGE));
        assert!(home.contains(TIMELINE_PRELOAD), "index.html has the line OTHER_PAGE drops");
        assert!(!other.contains("/api/v1/timeline"));
        assert!(home.contains("href=\"/api/v1/session\"") && other.contains("href=\"/api/v1/session\""));
        assert_ne!(find("index.html").unwrap().etag, find(OTHER_PAGE).unwrap().etag);
    }

    #[test]
    fn only_client_paths_are_pages() {
        assert!(is_page("@alice") && is_page("search"));
        assert!(!is_page("@") && !is_page("favicon.ico") && !is_page("alice"));
    }
}
