"""The simulator's extension API (see docs/extensions.md). Import from here; everything else is internal.

    from generators_app.extensions import ExtensionRegistry, Response

    def register(sim: ExtensionRegistry) -> None:
        sim.add_route("echo", r"^echo/?$", auth=False)
        sim.add_generator(lambda request, deployment, context: Response({"echo": request.json}), route="echo")
"""

from generators_app.extensions.api import (
    API_VERSION,
    AnswerView,
    Deployment,
    ExtensionContext,
    ExtensionRequest,
    Latency,
    Response,
    StreamResponse,
    Upstream,
    sse_event,
)
from generators_app.extensions.registry import ExtensionError, ExtensionRegistry, Route

__all__ = [
    "API_VERSION",
    "AnswerView",
    "Deployment",
    "ExtensionContext",
    "ExtensionError",
    "ExtensionRegistry",
    "ExtensionRequest",
    "Latency",
    "Response",
    "Route",
    "StreamResponse",
    "Upstream",
    "sse_event",
]
