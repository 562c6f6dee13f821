//! The web app's files, served by the server itself: plain HTML, CSS and ES modules with
//! no build step. Release builds embed `web/`; debug builds read it from disk.
//!
//! Two files are special. `/favicon.ico` is `web/icons/favicon.ico`. `/sw.js`, the service
//! worker that keeps the app's files on a phone, is served with its `BUILD` line filled
//! in: the list of the app's files and a hash of their contents, which names its cache.
use axum::extract::Request;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

#[derive(rust_embed::Embed)]
#[folder = "../../web/"]
#[exclude = "test/*"]
#[exclude = "tools/*"]
struct WebApp;

/// The service worker's file.
const SERVICE_WORKER: &str = "sw.js";
/// The line of `web/sw.js` that the server replaces with the app's files and their hash.
const SERVICE_WORKER_BUILD_LINE: &str = "const BUILD = { version: 'unbuilt', files: [] };";
/// How many hex digits of the files' hash name the service worker's cache.
const CACHE_VERSION_HEX_DIGITS: usize = 16;
/// Where the favicon lives among the app's files.
const FAVICON: &str = "icons/favicon.ico";

/// Serves a file of the web app, or `index.html` for an app route such as `/join`.
pub async fn serve(request: Request) -> Response {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return crate::error::ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "use GET",
        )
        .into_response();
    }
    let path = request.uri().path().trim_start_matches('/');
    let path = if path == "favicon.ico" { FAVICON } else { path };
    let is_app_route = path.is_empty() || !path.rsplit('/').next().unwrap_or("").contains('.');
    let (name, file) = match WebApp::get(path) {
        Some(file) => (path, file),
        None if is_app_route && !path.starts_with("api/") => match WebApp::get("index.html") {
            Some(file) => ("index.html", file),
            None => return crate::error::ApiError::not_found("page").into_response(),
        },
        None => return crate::error::ApiError::not_found("page").into_response(),
    };
    let mime = file.metadata.mimetype();
    let body = if name == SERVICE_WORKER {
        with_build(&file.data).into_bytes()
    } else {
        file.data.into_owned()
    };
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(mime) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    // HTML always revalidates so that a new release's app is picked up at once; so does
    // the service worker, whose every change (a new hash) must reach the phones.
    let cache = if name.ends_with(".html") || name == SERVICE_WORKER {
        "no-cache"
    } else {
        "public, max-age=300"
    };
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    response
}

/// The service worker with its `BUILD` line naming the app's files (as the paths the
/// browser asks for) and the hash of them all, the service worker included.
fn with_build(service_worker: &[u8]) -> String {
    let source = String::from_utf8_lossy(service_worker);
    let mut names: Vec<String> = WebApp::iter().map(|name| name.into_owned()).collect();
    names.sort();
    let mut hash = Sha256::new();
    let mut files = Vec::with_capacity(names.len());
    for name in names {
        let Some(file) = WebApp::get(&name) else {
            continue;
        };
        hash.update(name.as_bytes());
        hash.update([0]);
        hash.update(file.metadata.sha256_hash());
        if name != SERVICE_WORKER {
            files.push(format!("/{name}"));
        }
    }
    let version: String = hex::encode(hash.finalize())
        .chars()
        .take(CACHE_VERSION_HEX_DIGITS)
        .collect();
    let build = serde_json::json!({ "version": version, "files": files });
    if !source.contains(SERVICE_WORKER_BUILD_LINE) {
        tracing::error!(
            "web/sw.js has no line `{SERVICE_WORKER_BUILD_LINE}`: the app is served without \
             keeping its files on phones; put the line back"
        );
    }
    source.replacen(
        SERVICE_WORKER_BUILD_LINE,
        &format!("const BUILD = {build};"),
        1,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_service_worker_is_served_with_the_apps_files_and_their_hash() {
        let file = WebApp::get(SERVICE_WORKER).expect("web/sw.js");
        let served = with_build(&file.data);
        assert!(!served.contains(SERVICE_WORKER_BUILD_LINE), "{served}");
        let line = served
            .lines()
            .find_map(|line| line.strip_prefix("const BUILD = "))
            .and_then(|rest| rest.strip_suffix(';'))
            .expect("the BUILD line");
        let build: serde_json::Value = serde_json::from_str(line).expect("BUILD is JSON");
        let version = build["version"].as_str().unwrap();
        assert_eq!(version.len(), CACHE_VERSION_HEX_DIGITS);
        assert!(version.chars().all(|c| c.is_ascii_hexdigit()), "{version}");
        let files: Vec<&str> = build["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap())
            .collect();
        for expected in [
            "/index.html",
            "/js/app.js",
            "/css/app.css",
            "/manifest.webmanifest",
            "/icons/icon-192.png",
        ] {
            assert!(
                files.contains(&expected),
                "{expected} missing from {files:?}"
            );
        }
        assert!(!files.contains(&"/sw.js"));
        assert!(
            files
                .iter()
                .all(|f| !f.starts_with("/api/") && !f.starts_with("/test/")),
            "{files:?}"
        );
    }
}
