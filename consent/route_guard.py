"""Authorization before the body: routes whose guards decide before FastAPI reads a byte of it.

FastAPI parses a JSON body before it solves any dependency (a syntax error is a 422 at
once) and validates it before it calls a dependency that takes it, so a scope checked in
such a dependency, or in the route, answers 422 with the schema's error messages to a
caller that may not use the route at all. A :class:`RouteGuard` is a dependency that
decides from the request's headers and path alone; :class:`GuardedRoute` runs every guard a
route depends on (at any depth) before FastAPI's own handler, and what the guard decided
is then what the dependency gives the route: each guard decides once per request.

Both the coordinator's API and the participants' partial-inference services use it
(``app.router.route_class = GuardedRoute`` before their routes are added).

This module does not use postponed annotations: FastAPI reads ``RouteGuard.__call__``'s
signature at run time.
"""

import abc
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

from fastapi import Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

__all__ = ["GuardedRoute", "RouteGuard", "guards_of"]

#: Where a request keeps what its guards decided (an ASGI scope key of this package).
_DECIDED = "fedrisk.guards"


class RouteGuard(abc.ABC):
    """A dependency that lets a request through, or refuses it, from its headers and path.

    Subclasses implement :meth:`decide`; they may override ``__call__`` to declare a
    security scheme for the OpenAPI document, returning ``await self.decided(request)``.
    """

    @abc.abstractmethod
    async def decide(self, request: Request) -> Any:
        """What the route may act as; raise :class:`fastapi.HTTPException` to refuse."""

    async def decided(self, request: Request) -> Any:
        """What :meth:`decide` gave for this request, deciding at the first call."""
        decided: dict[RouteGuard, Any] = request.scope.setdefault(_DECIDED, {})
        if self not in decided:
            decided[self] = await self.decide(request)
        return decided[self]

    async def __call__(self, request: Request) -> Any:
        return await self.decided(request)


def guards_of(dependant: Dependant) -> Iterator[RouteGuard]:
    """Every guard ``dependant`` depends on, depth first in declaration order, once each."""
    seen: set[int] = set()

    def walk(node: Dependant) -> Iterator[RouteGuard]:
        for sub in node.dependencies:
            if isinstance(sub.call, RouteGuard) and id(sub.call) not in seen:
                seen.add(id(sub.call))
                yield sub.call
            yield from walk(sub)

    return walk(dependant)


class GuardedRoute(APIRoute):
    """An API route that runs its guards before its body is read or validated."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        guards = tuple(guards_of(self.dependant))
        if not guards:
            return handler

        async def guarded(request: Request) -> Response:
            for guard in guards:
                await guard.decided(request)
            return await handler(request)

        return guarded
