"""Data-plane routes, matched in asgi.py ahead of Django. Each route fixes the operation and the surface."""

from django.urls import re_path

from generators_app.catalogue import Operation
from generators_app.consumers import DataPlaneConsumer
from generators_app.errors import Surface
from generators_app.extensions.registry import EXTENSIONS
from generators_app.generation.images import IMAGE_NAME_PATTERN
from generators_app.image_files import GeneratedImageConsumer

_DEPLOYMENT = r"^openai/deployments/(?P<deployment>[^/]+)/"


def _route(pattern: str, operation: Operation | None, surface: str):
    return re_path(pattern, DataPlaneConsumer.as_asgi(operation=operation, surface=surface))


dataplane_urlpatterns = [
    _route(_DEPLOYMENT + r"chat/completions/?$", Operation.CHAT, Surface.AZURE),
    _route(_DEPLOYMENT + r"completions/?$", Operation.COMPLETIONS, Surface.AZURE),
    _route(_DEPLOYMENT + r"embeddings/?$", Operation.EMBEDDINGS, Surface.AZURE),
    _route(_DEPLOYMENT + r"images/generations/?$", Operation.IMAGES, Surface.AZURE),
    _route(_DEPLOYMENT + r"audio/transcriptions/?$", Operation.AUDIO_TRANSCRIPTIONS, Surface.AZURE),
    _route(_DEPLOYMENT + r"audio/translations/?$", Operation.AUDIO_TRANSLATIONS, Surface.AZURE),
    _route(r"^openai/responses/?$", Operation.RESPONSES, Surface.AZURE),  # deployment = body `model`
    _route(r"^openai/v1/chat/completions/?$", Operation.CHAT, Surface.AZURE_V1),
    _route(r"^openai/v1/completions/?$", Operation.COMPLETIONS, Surface.AZURE_V1),
    _route(r"^openai/v1/embeddings/?$", Operation.EMBEDDINGS, Surface.AZURE_V1),
    _route(r"^openai/v1/responses/?$", Operation.RESPONSES, Surface.AZURE_V1),
    _route(r"^openai/v1/models/?$", Operation.MODELS, Surface.AZURE_V1),
    _route(r"^openai/v1/images/generations/?$", Operation.IMAGES, Surface.AZURE_V1),
    _route(r"^openai/v1/audio/transcriptions/?$", Operation.AUDIO_TRANSCRIPTIONS, Surface.AZURE_V1),
    _route(r"^openai/v1/audio/translations/?$", Operation.AUDIO_TRANSLATIONS, Surface.AZURE_V1),
    _route(r"^v1/chat/completions/?$", Operation.CHAT, Surface.OPENAI),
    _route(r"^v1/completions/?$", Operation.COMPLETIONS, Surface.OPENAI),
    _route(r"^v1/embeddings/?$", Operation.EMBEDDINGS, Surface.OPENAI),
    _route(r"^v1/responses/?$", Operation.RESPONSES, Surface.OPENAI),
    _route(r"^v1/models/?$", Operation.MODELS, Surface.OPENAI),
    _route(r"^v1/images/generations/?$", Operation.IMAGES, Surface.OPENAI),
    _route(r"^v1/audio/transcriptions/?$", Operation.AUDIO_TRANSCRIPTIONS, Surface.OPENAI),
    _route(r"^v1/audio/translations/?$", Operation.AUDIO_TRANSLATIONS, Surface.OPENAI),
    # The links of `url` image answers (signed, no API key: like AOAI's blob SAS links).
    re_path(rf"^openai/images/generated/(?P<name>{IMAGE_NAME_PATTERN})\.png$", GeneratedImageConsumer.as_asgi()),
]

# Extensions' routes (loaded at start, before this module): after the built-in ones and Django's own prefixes
# (asgi.py), before the catch-alls, so an extension can add paths but never hide the simulator's.
extension_urlpatterns = [
    re_path(route.pattern, DataPlaneConsumer.as_asgi(operation=route.operation, surface=route.surface, route=route))
    for route in EXTENSIONS.routes
]

# Anything else under the data-plane prefixes is a 404 in that surface's shape, never Django's HTML.
catchall_urlpatterns = [
    _route(r"^openai/v1/", None, Surface.AZURE_V1),
    _route(r"^openai/", None, Surface.AZURE),
    _route(r"^v1/", None, Surface.OPENAI),
]
