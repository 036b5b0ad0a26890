"""Data-plane routes, matched in asgi.py ahead of Django. Each route fixes the operation and the surface."""

from django.urls import re_path

from generators_app.catalogue import Operation
from generators_app.consumers import DataPlaneConsumer
from generators_app.errors import Surface

_DEPLOYMENT = r"^openai/deployments/(?P<deployment>[^/]+)/"


def _route(pattern: str, operation: Operation | None, surface: str):
    return re_path(pattern, DataPlaneConsumer.as_asgi(operation=operation, surface=surface))


dataplane_urlpatterns = [
    _route(_DEPLOYMENT + r"chat/completions/?$", Operation.CHAT, Surface.AZURE),
    _route(_DEPLOYMENT + r"completions/?$", Operation.COMPLETIONS, Surface.AZURE),
    _route(_DEPLOYMENT + r"embeddings/?$", Operation.EMBEDDINGS, Surface.AZURE),
    _route(r"^openai/v1/chat/completions/?$", Operation.CHAT, Surface.AZURE_V1),
    _route(r"^openai/v1/completions/?$", Operation.COMPLETIONS, Surface.AZURE_V1),
    _route(r"^openai/v1/embeddings/?$", Operation.EMBEDDINGS, Surface.AZURE_V1),
    _route(r"^openai/v1/models/?$", Operation.MODELS, Surface.AZURE_V1),
    _route(r"^v1/chat/completions/?$", Operation.CHAT, Surface.OPENAI),
    _route(r"^v1/completions/?$", Operation.COMPLETIONS, Surface.OPENAI),
    _route(r"^v1/embeddings/?$", Operation.EMBEDDINGS, Surface.OPENAI),
    _route(r"^v1/models/?$", Operation.MODELS, Surface.OPENAI),
    # Anything else under the data-plane prefixes is a 404 in that surface's shape, never Django's HTML.
    _route(r"^openai/v1/", None, Surface.AZURE_V1),
    _route(r"^openai/", None, Surface.AZURE),
    _route(r"^v1/", None, Surface.OPENAI),
]
