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
        // Every $ref points at a schema or response that exists.
        for part in DOCUMENT.split("\"$ref\": \"#/components/responses/").skip(1) {
            let name = part.split('"').next().unwrap();
            assert!(doc["components"]["responses"].get(name).is_some(), "missing response {name}");
        }
        // Every $ref points at a schema that exists.
        let text = DOCUMENT;
        for part in text.split("\"$ref\": \"#/components/schemas/").skip(1) {
            let name = part.split('"').next().unwrap();
            assert!(doc["components"]["schemas"].get(name).is_some(), "missing schema {name}");
        }
    }

    /// The document states the server's own limits: every operation answers 408 and 503, every
    /// POST 413 and 415, the lists take `limit` up to [`MAX_LIMIT`](super::super::page::MAX_LIMIT)
    /// and a cursor, evidence is bounded in characters as the server counts it, no `params`
    /// field claims a default the server would not apply to a partial object, and every
    /// integer has bounds.
    #[test]
    fn the_document_states_the_servers_limits() {
        let doc: serde_json::Value = serde_json::from_str(DOCUMENT).unwrap();
        for (path, methods) in ROUTES {
            for m in *methods {
                let responses = &doc["paths"][path][m]["responses"];
                for code in ["408", "503"] {
                    assert!(responses.get(code).is_some(), "{m} {path} does not document {code}");
                }
                if *m == "post" {
                    for code in ["400", "413", "415", "422"] {
                        assert!(responses.get(code).is_some(), "{m} {path} does not document {code}");
                    }
                }
            }
        }
        for (path, rate_limited) in [("/v1/settlements", "post"), ("/v1/settlements/{id}/disputes", "post")] {
            assert!(doc["paths"][path][rate_limited]["responses"].get("429").is_some(), "{path}");
        }
        for path in ["/v1/settlements", "/v1/settlements/{id}/disputes"] {
            let params = doc["paths"][path]["get"]["parameters"].as_array().unwrap();
            let limit = params.iter().find(|p| p["name"] == "limit").expect("a limit");
            assert_eq!(limit["schema"]["maximum"], super::super::page::MAX_LIMIT, "{path}");
            assert_eq!(limit["schema"]["default"], super::super::page::DEFAULT_LIMIT, "{path}");
            assert!(params.iter().any(|p| p["name"] == "cursor"), "{path}");
        }
        let schemas = &doc["components"]["schemas"];
        assert_eq!(
            schemas["Dispute"]["properties"]["evidence"]["maxLength"],
            super::super::disputes::MAX_EVIDENCE_CHARS
        );
        let params = &schemas["MethodologyParams"];
        assert_eq!(params["required"].as_array().unwrap().len(), 6, "a partial params is refused");
        // Only the two-venue rule's fields may be left out, and their defaults are the code's.
        let defaults = fixd_proto::types::settlement::MethodologyParams::default();
        for (name, field) in params["properties"].as_object().unwrap() {
            match name.as_str() {
                "two_venue_agreement_bp" => assert_eq!(field["default"], defaults.two_venue_agreement_bp),
                "max_two_venue_partitions" => assert_eq!(field["default"], defaults.max_two_venue_partitions),
                _ => assert!(field.get("default").is_none(), "params.{name} claims a default"),
            }
        }
        fn integers_are_bounded(at: &str, v: &serde_json::Value) {
            match v {
                serde_json::Value::Object(map) => {
                    let integer = map.get("type").is_some_and(|t| {
                        t == "integer" || t.as_array().is_some_and(|a| a.iter().any(|t| t == "integer"))
                    });
                    if integer {
                        assert!(map.contains_key("minimum") && map.contains_key("maximum"), "{at}");
                    }
                    for (k, v) in map {
                        integers_are_bounded(&format!("{at}/{k}"), v);
                    }
                }
                serde_json::Value::Array(items) => items.iter().for_each(|v| integers_are_bounded(at, v)),
                _ => {}
            }
        }
        integers_are_bounded("", &doc);
    }
}
