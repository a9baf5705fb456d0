//! `/v1/openapi.json`: the OpenAPI 3.1 document, kept in `openapi.json` beside this file.
//!
//! It is written by hand rather than derived (utoipa) so that `fixd-proto` stays free of
//! API-framework derives; a test checks that it documents exactly the routes the router serves
//! and that it parses.

use axum::http::header;
use axum::response::IntoResponse;

/// The document, as served.
pub const DOCUMENT: &str = include_str!("openapi.json");

pub async fn document() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every route and its methods, as `api::router` serves them.
    const ROUTES: &[(&str, &[&str])] = &[
        ("/v1/health", &["get"]),
        ("/v1/status", &["get"]),
        ("/v1/settlements", &["get", "post"]),
        ("/v1/settlements/{id}", &["get"]),
        ("/v1/settlements/{id}/proof", &["get"]),
        ("/v1/settlements/{id}/disputes", &["get", "post"]),
        ("/v1/settlements/{id}/rulings", &["post"]),
        ("/v1/events", &["get"]),
        ("/v1/openapi.json", &["get"]),
        ("/metrics", &["get"]),
    ];

    #[test]
    fn the_document_lists_exactly_the_served_routes() {
        let doc: serde_json::Value = serde_json::from_str(DOCUMENT).expect("openapi.json parses");
        assert_eq!(doc["openapi"], "3.1.0");
        let paths = doc["paths"].as_object().unwrap();
        assert_eq!(paths.len(), ROUTES.len(), "documented: {:?}", paths.keys().collect::<Vec<_>>());
        for (path, methods) in ROUTES {
            let item = paths.get(*path).unwrap_or_else(|| panic!("{path} is not documented"));
            let documented: Vec<&String> =
                item.as_object().unwrap().keys().filter(|k| *k != "parameters").collect();
            assert_eq!(documented.len(), methods.len(), "{path}: {documented:?}");
            for m in *methods {
                assert!(item.get(*m).is_some(), "{m} {path} is not documented");
                assert!(item[*m]["responses"].is_object(), "{m} {path} documents its responses");
            }
        }
        // Every $ref points at a schema that exists.
        let text = DOCUMENT;
        for part in text.split("\"$ref\": \"#/components/schemas/").skip(1) {
            let name = part.split('"').next().unwrap();
            assert!(doc["components"]["schemas"].get(name).is_some(), "missing schema {name}");
        }
    }
}
