"""Route records and the matcher that dispatches on them: the REST API as one table.

A `Route` is one operation (a method on a path template such as ``/v2/models/{name}/ready``): its
handler, whether it needs the admin token, its path and header parameters, its request body and
the responses it can give. The REST transport dispatches on a `Router` built from its routes,
and `fraudgate.serving.openapi` writes ``/openapi.json`` from the same routes, so a route cannot
be served without being documented, nor documented without being served.

Matching: a trailing ``/`` is ignored; a template's ``{parameter}`` matches one non-empty path
segment; the first route (in table order) whose template and method match wins. A path that
matches templates but none with the request's method is a 405 that lists the allowed methods;
a path that matches no template is a 404.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from fraudgate.protocol.errors import InferenceError
from fraudgate.protocol.limits import preview

H = TypeVar("H")
JsonSchema = Mapping[str, Any]  # a JSON Schema (OpenAPI 3.0 dialect) or a {"$ref": ...}

METHODS = ("GET", "PUT", "POST", "DELETE", "PATCH", "HEAD", "OPTIONS")


class RouteNotFound(InferenceError):
    """No route's template matches the path (HTTP 404)."""


class MethodNotAllowed(InferenceError):
    """Templates match the path, none with this method (HTTP 405 with ``Allow``)."""

    def __init__(self, message: str, allow: str) -> None:
        super().__init__(message)
        self.allow = allow


@dataclass(frozen=True, slots=True)
class Param:
    """A documented path or header parameter."""

    name: str
    where: str  # "path" or "header"
    description: str
    schema: JsonSchema
    required: bool = True


@dataclass(frozen=True, slots=True)
class Body:
    """A documented request body: its schema per content type."""

    content: Mapping[str, JsonSchema]
    required: bool


@dataclass(frozen=True, slots=True)
class Response:
    """A documented response: its description, schema per content type and headers."""

    description: str
    content: Mapping[str, JsonSchema] = field(default_factory=dict)
    headers: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Route(Generic[H]):
    """One operation of the API: what dispatches it and what documents it."""

    method: str
    path: str  # template: literal segments and {parameter} segments
    handler: H
    operation_id: str
    summary: str
    tags: tuple[str, ...]
    responses: Mapping[int, Response]
    parameters: tuple[Param, ...] = ()  # path parameters in template order, then headers
    body: Body | None = None
    admin: bool = False  # needs the admin bearer token (documented as bearerAuth security)
    segments: tuple[str | None, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(
                f"route {self.path}: method expected one of {list(METHODS)}, "
                f"received {self.method!r}"
            )
        if not self.path.startswith("/") or (len(self.path) > 1 and self.path.endswith("/")):
            raise ValueError(
                f"route path: expected '/' then segments without a trailing '/', "
                f"received {self.path!r}"
            )
        parts = self.path.split("/")
        is_parameter = [part.startswith("{") and part.endswith("}") for part in parts]
        names = [part[1:-1] for part, param in zip(parts, is_parameter, strict=True) if param]
        declared = [p.name for p in self.parameters if p.where == "path"]
        if names != declared:
            raise ValueError(
                f"route {self.method} {self.path}: path parameters expected {names} "
                f"(the template's, in order), received {declared}"
            )
        # None marks a parameter segment, a string a literal one
        segments = tuple(
            None if param else part for part, param in zip(parts, is_parameter, strict=True)
        )
        object.__setattr__(self, "segments", segments)

    @property
    def path_parameters(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.parameters if p.where == "path")

    def match(self, parts: Sequence[str]) -> dict[str, str] | None:
        """The path parameters if the split path fits this template, else None."""
        segments = self.segments
        if len(parts) != len(segments):
            return None
        values: list[str] = []
        for part, segment in zip(parts, segments, strict=True):
            if segment is None:
                if not part:
                    return None
                values.append(part)
            elif part != segment:
                return None
        return dict(zip(self.path_parameters, values, strict=True))


@dataclass(frozen=True, slots=True)
class Match(Generic[H]):
    route: Route[H]
    params: dict[str, str]


class Router(Generic[H]):
    """Dispatch over a table of routes: exact paths by dictionary, templates by segment count."""

    def __init__(self, routes: Sequence[Route[H]]) -> None:
        self.routes: tuple[Route[H], ...] = tuple(routes)
        seen: set[tuple[str, str]] = set()
        operations: set[str] = set()
        self._static: dict[str, list[Route[H]]] = {}
        self._templates: dict[int, list[Route[H]]] = {}
        for route in self.routes:
            key = (route.method, route.path)
            if key in seen:
                raise ValueError(f"route {route.method} {route.path}: declared twice")
            if route.operation_id in operations:
                raise ValueError(f"route {route.path}: operation id {route.operation_id!r} twice")
            seen.add(key)
            operations.add(route.operation_id)
            if route.path_parameters:
                self._templates.setdefault(len(route.segments), []).append(route)
            else:
                self._static.setdefault(route.path, []).append(route)

    def match(self, method: str, path: str) -> Match[H]:
        """The route and path parameters for ``method path``; RouteNotFound / MethodNotAllowed."""
        if len(path) > 1 and path.endswith("/"):
            path = path[:-1]
        allowed: list[str] = []
        for route in self._static.get(path, ()):
            if route.method == method:
                return Match(route, {})
            allowed.append(route.method)
        parts = path.split("/")
        for route in self._templates.get(len(parts), ()):
            params = route.match(parts)
            if params is None:
                continue
            if route.method == method:
                return Match(route, params)
            if route.method not in allowed:
                allowed.append(route.method)
        if allowed:
            expected = allowed[0] if len(allowed) == 1 else f"one of {', '.join(allowed)}"
            raise MethodNotAllowed(
                f"method: expected {expected} for this path, received {method}",
                ", ".join(allowed),
            )
        raise RouteNotFound(
            f"path: no route for {preview(method)} {preview(path)}; see /openapi.json"
        )


__all__ = [
    "Body",
    "Match",
    "MethodNotAllowed",
    "Param",
    "Response",
    "Route",
    "RouteNotFound",
    "Router",
]
