"""The app team's merged API document (expensura_ops.openapi): only what the gateway routes,
each path from the service it goes to, components shared when equal and renamed when not."""

from __future__ import annotations

from typing import Any

from expensura_ops.openapi import merge_documents

ROUTES = {"/v1/a": "alpha", "/v1/a/{a_id}": "alpha", "/v1/b": "beta", "/v1/me/data": "alpha"}


def owner_of(path: str) -> str | None:
    return ROUTES.get(path)


def op(ref: str, operation_id: str, **extra: Any) -> dict[str, Any]:
    schema = {"$ref": f"#/components/schemas/{ref}"}
    return {
        "operationId": operation_id,
        "responses": {"200": {"content": {"application/json": {"schema": schema}}}},
        **extra,
    }


def document(paths: dict[str, Any], schemas: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "x", "version": "1"},
        "paths": paths,
        "components": {"schemas": schemas},
        **extra,
    }


ERROR = {"type": "object", "properties": {"detail": {"type": "string"}}}

ALPHA = document(
    {
        "/v1/a": {"get": op("Thing", "list_a")},
        "/v1/a/{a_id}": {"get": op("Thing", "get_a")},
        "/v1/me/data": {"get": op("Error", "my_data")},
        "/internal/log": {"get": op("LogPage", "log")},
        "/healthz": {"get": op("Health", "healthz")},
    },
    {
        "Thing": {"type": "object", "properties": {"kind": {"$ref": "#/components/schemas/Kind"}}},
        "Kind": {"enum": ["x", "y"]},
        "Error": ERROR,
        "LogPage": {"type": "object"},
        "Health": {"type": "object"},
    },
    tags=[{"name": "things"}],
)
BETA = document(
    {
        "/v1/b": {"post": op("Other", "post_b", security=[{"Bearer": []}])},
        "/v1/me/data": {"get": op("Error", "my_data")},  # every service has it; alpha owns it
        "/internal/log": {"get": op("LogPage", "log")},
    },
    {
        "Other": {
            "type": "object",
            "properties": {
                "kind": {"$ref": "#/components/schemas/Kind"},
                "error": {"$ref": "#/components/schemas/Error"},
            },
        },
        "Kind": {"enum": ["p", "q"]},  # same name, another meaning
        "Error": ERROR,
        "LogPage": {"type": "object"},
    },
    tags=[{"name": "things"}, {"name": "others"}],
)
BETA["components"]["securitySchemes"] = {"Bearer": {"type": "http", "scheme": "bearer"}}


def merged() -> dict[str, Any]:
    return merge_documents(
        {"beta": BETA, "alpha": ALPHA}, owner_of, title="App API", version="2", description="d"
    )


def test_only_the_routed_paths_each_from_its_owner() -> None:
    result = merged()
    assert list(result["paths"]) == ["/v1/a", "/v1/a/{a_id}", "/v1/b", "/v1/me/data"]
    assert result["paths"]["/v1/me/data"] == ALPHA["paths"]["/v1/me/data"]
    assert result["info"] == {"title": "App API", "version": "2", "description": "d"}
    assert result["openapi"] == "3.1.0"


def test_components_only_those_the_routed_paths_reach() -> None:
    schemas = merged()["components"]["schemas"]
    assert "LogPage" not in schemas and "Health" not in schemas  # internal and probe only
    assert {"Thing", "Kind", "Error", "Other"} <= schemas.keys()


def test_an_equal_component_is_shared_and_a_different_one_renamed_with_its_references() -> None:
    result = merged()
    schemas = result["components"]["schemas"]
    assert schemas["Error"] == ERROR and "Beta_Error" not in schemas
    assert schemas["Kind"] == {"enum": ["x", "y"]}  # alpha's, merged first
    assert schemas["Beta_Kind"] == {"enum": ["p", "q"]}
    other = schemas["Other"]["properties"]
    assert other["kind"] == {"$ref": "#/components/schemas/Beta_Kind"}
    assert other["error"] == {"$ref": "#/components/schemas/Error"}
    assert schemas["Thing"]["properties"]["kind"] == {"$ref": "#/components/schemas/Kind"}


def test_a_component_referring_to_a_renamed_one_is_renamed_too() -> None:
    wrapper = {"type": "object", "properties": {"k": {"$ref": "#/components/schemas/Kind"}}}
    alpha = document({"/v1/a": {"get": op("Wrap", "a")}}, {"Wrap": wrapper, "Kind": {"enum": [1]}})
    beta = document({"/v1/b": {"get": op("Wrap", "b")}}, {"Wrap": wrapper, "Kind": {"enum": [2]}})
    result = merge_documents({"alpha": alpha, "beta": beta}, owner_of, title="t", version="1")
    schemas = result["components"]["schemas"]
    # the same text, but beta's Kind is another type: beta's Wrap must not point at alpha's
    assert schemas["Beta_Wrap"]["properties"]["k"] == {"$ref": "#/components/schemas/Beta_Kind"}
    assert result["paths"]["/v1/b"]["get"]["responses"]["200"]["content"]["application/json"][
        "schema"
    ] == {"$ref": "#/components/schemas/Beta_Wrap"}


def test_security_schemes_operation_ids_and_tags_merged() -> None:
    clash = document({"/v1/b": {"get": op("Error", "list_a")}}, {"Error": ERROR})
    result = merge_documents({"alpha": ALPHA, "beta": clash}, owner_of, title="t", version="1")
    assert result["paths"]["/v1/b"]["get"]["operationId"] == "beta_list_a"  # unique
    full = merged()
    assert full["components"]["securitySchemes"] == {"Bearer": {"type": "http", "scheme": "bearer"}}
    assert full["paths"]["/v1/b"]["post"]["security"] == [{"Bearer": []}]
    assert [t["name"] for t in full["tags"]] == ["things", "others"]


def test_the_inputs_are_left_as_they_were() -> None:
    before = repr(ALPHA), repr(BETA)
    merged()
    assert (repr(ALPHA), repr(BETA)) == before


def test_nothing_routed_gives_an_empty_document() -> None:
    result = merge_documents({"alpha": ALPHA}, lambda path: None, title="t", version="1")
    assert result["paths"] == {} and "components" not in result
