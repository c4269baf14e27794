#!/usr/bin/env python3
"""Checks that the public HTTP contract only grew since the last release.

    deploy/check_openapi.py docs/openapi.released.json docs/openapi.json

`docs/openapi.released.json` is the document of the last release (made again and committed at
each release, as `proto/released.binpb` is for the protos); `docs/openapi.json` is the one the
gateway serves (a test keeps it so). What docs/compatibility.md calls breaking is refused:
- an endpoint, a method, a response status or a documented header gone;
- a response field gone, or one that was always there made optional;
- a request field, parameter or body that was optional made required, or a new required one;
- a field's type changed, or a value of a closed set (`enum`) accepted before now refused.
Schemas are compared where the two documents use them (a `$ref` followed on both sides), so a
renamed schema with the same shape passes and a changed shape under the same name does not.
Exits 1 with one line per break.
"""

import json
import sys

breaks = []


def resolve(doc, schema):
    seen = set()
    while isinstance(schema, dict) and "$ref" in schema:
        ref = schema["$ref"]
        if ref in seen:
            break
        seen.add(ref)
        node = doc
        for part in ref.lstrip("#/").split("/"):
            node = node.get(part, {})
        schema = node
    return schema if isinstance(schema, dict) else {}


def types(schema):
    t = schema.get("type")
    if t is None:
        # oneOf/anyOf of simple types (utoipa writes nullable ones as ["x", "null"])
        alts = schema.get("oneOf") or schema.get("anyOf") or []
        out = set()
        for alt in alts:
            out |= types(alt) if "$ref" not in alt else {"object"}
        return out
    return set(t) if isinstance(t, list) else {t}


def compare(old_doc, new_doc, old, new, where, direction, depth=0):
    """`direction` is "response" (the server writes it: it may only gain) or "request" (the
    client writes it: the server may only accept more)."""
    if depth > 12:
        return
    old, new = resolve(old_doc, old), resolve(new_doc, new)
    if not old:
        return
    if not new:
        breaks.append(f"{where}: its schema is gone")
        return
    old_t, new_t = types(old), types(new)
    if old_t and new_t:
        if direction == "response":
            if new_t - old_t - {"null"}:
                breaks.append(f"{where}: type {sorted(old_t)} became {sorted(new_t)}")
            if "null" in new_t and "null" not in old_t:
                breaks.append(f"{where}: may now be null")
        elif old_t - new_t:
            breaks.append(f"{where}: type {sorted(old_t)} became {sorted(new_t)}")
    if "enum" in old and "enum" in new and direction == "request":
        gone = set(old["enum"]) - set(new["enum"])
        if gone:
            breaks.append(f"{where}: no longer accepts {sorted(gone)}")
    old_props, new_props = old.get("properties", {}), new.get("properties", {})
    old_req, new_req = set(old.get("required", [])), set(new.get("required", []))
    if direction == "response":
        for name in old_props:
            if name not in new_props:
                breaks.append(f"{where}.{name}: gone from the answer")
        for name in old_req - new_req:
            if name in new_props:
                breaks.append(f"{where}.{name}: no longer always in the answer")
    else:
        for name in new_req - old_req:
            breaks.append(f"{where}.{name}: now required of the client")
        # Unknown fields are ignored unless the schema closes itself.
        for name in old_props:
            if name not in new_props and new.get("additionalProperties") is False:
                breaks.append(f"{where}.{name}: no longer accepted")
    for name, schema in old_props.items():
        if name in new_props:
            compare(old_doc, new_doc, schema, new_props[name], f"{where}.{name}", direction, depth + 1)
    if "items" in old and "items" in new:
        compare(old_doc, new_doc, old["items"], new["items"], f"{where}[]", direction, depth + 1)


def body_schema(node):
    content = (node or {}).get("content", {})
    media = content.get("application/json") or next(iter(content.values()), {})
    return media.get("schema")


def main(old_path, new_path):
    old_doc, new_doc = json.load(open(old_path)), json.load(open(new_path))
    for path, old_item in old_doc.get("paths", {}).items():
        new_item = new_doc.get("paths", {}).get(path)
        if new_item is None:
            breaks.append(f"{path}: gone")
            continue
        for method, old_op in old_item.items():
            if method not in ("get", "put", "post", "delete", "patch"):
                continue
            new_op = new_item.get(method)
            where = f"{method.upper()} {path}"
            if new_op is None:
                breaks.append(f"{where}: gone")
                continue
            old_params = {(p["in"], p["name"]): p for p in old_op.get("parameters", [])}
            for p in new_op.get("parameters", []):
                key = (p["in"], p["name"])
                if p.get("required") and not old_params.get(key, {}).get("required"):
                    breaks.append(f"{where}: parameter {p['name']} now required")
            old_body, new_body = old_op.get("requestBody"), new_op.get("requestBody")
            if new_body and new_body.get("required") and not (old_body or {}).get("required"):
                breaks.append(f"{where}: a body is now required")
            if old_body and new_body:
                compare(old_doc, new_doc, body_schema(old_body), body_schema(new_body),
                        f"{where} body", "request")
            elif old_body and not new_body:
                breaks.append(f"{where}: no longer takes a body")
            for status, old_resp in old_op.get("responses", {}).items():
                new_resp = new_op.get("responses", {}).get(status)
                if new_resp is None:
                    breaks.append(f"{where} {status}: answer gone")
                    continue
                for header in old_resp.get("headers", {}):
                    if header not in new_resp.get("headers", {}):
                        breaks.append(f"{where} {status}: header {header} gone")
                compare(old_doc, new_doc, body_schema(old_resp), body_schema(new_resp),
                        f"{where} {status}", "response")
    for line in breaks:
        print(f"breaking: {line}")
    if breaks:
        print(f"{len(breaks)} breaking change(s) against {old_path}; see docs/compatibility.md")
        return 1
    print(f"the HTTP contract only grew since {old_path}")
    return 0


def self_test(path):
    """Each kind of break, made on a copy of `path`, is found; the copy itself passes."""
    import copy
    import os
    import tempfile

    doc = json.load(open(path))

    def found(mutate):
        global breaks
        new = copy.deepcopy(doc)
        mutate(new)
        breaks = []
        with tempfile.NamedTemporaryFile("w", suffix=".json") as mutated, open(os.devnull, "w") as quiet:
            json.dump(new, mutated)
            mutated.flush()
            stdout, sys.stdout = sys.stdout, quiet
            try:
                code = main(path, mutated.name)
            finally:
                sys.stdout = stdout
        return code == 1

    schemas = lambda d: d["components"]["schemas"]
    cases = {
        "nothing changed": (lambda d: None, False),
        "an endpoint gone": (lambda d: d["paths"].pop("/v1/me/onboarding"), True),
        "a response field gone": (lambda d: schemas(d)["Progress"]["properties"].pop("next_step"), True),
        "a response field optional": (lambda d: schemas(d)["Progress"]["required"].remove("next_step"), True),
        "a new required request field": (lambda d: schemas(d)["LoginBody"]["required"].append("otp"), True),
        "a field's type changed": (lambda d: schemas(d)["Progress"]["properties"]["document_type"].update(type="integer"), True),
        "a shared schema changed": (lambda d: schemas(d)["NextStep"].update(type="integer"), True),
        "a status gone": (lambda d: d["paths"]["/v1/me/onboarding"]["get"]["responses"].pop("200"), True),
        "a new response field": (lambda d: schemas(d)["Progress"]["properties"].update(extra={"type": "string"}), False),
        "a new optional request field": (lambda d: schemas(d)["LoginBody"]["properties"].update(extra={"type": "string"}), False),
    }
    failed = [name for name, (mutate, breaking) in cases.items() if found(mutate) != breaking]
    for name in failed:
        print(f"self-test: {name} was judged wrongly")
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--self-test":
        sys.exit(self_test(sys.argv[2]))
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2]))
