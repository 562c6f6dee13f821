//! The web app's files, served by the server itself: plain HTML, CSS and ES modules with
//! no build step. Release builds embed `web/`; debug builds read it from disk.
use axum::extract::Request;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};

#[derive(rust_embed::Embed)]
#[folder = "../../web/"]
#[exclude = "test/*"]
#[exclude = "tools/*"]
struct WebApp;

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
    let mut response = (StatusCode::OK, file.data.into_owned()).into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(mime) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    // HTML always revalidates so that a new release's app is picked up at once.
    let cache = if name.ends_with(".html") {
        "no-cache"
    } else {
        "public, max-age=300"
    };
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    response
}
