"""Image generations: deterministic PNGs, the answer body, and the signed links that serve them.

An image is named by what draws it: a 64-bit seed (from model, prompt, size, quality, style, index and the
optional `seed`), its size and whether its background is transparent. A `url` answer is a link to this
simulator carrying that name, an expiry (`se`, unix seconds) and an HMAC signature (`sig`, keyed by
SECRET_KEY) — the shape of the SAS links AOAI hands out. Any process or replica that shares SECRET_KEY can
verify the link and redraw the image from its name, so nothing is stored and several workers need no shared
state; a small per-process LRU keeps recent images so a fetch right after generation does not redraw.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import threading
import time
from collections import OrderedDict
from contextvars import ContextVar
from dataclasses import dataclass

from django.conf import settings

from generators_app.generation.png import draw_png

IMAGE_PATH_PREFIX = "/openai/images/generated/"
IMAGE_NAME_PATTERN = r"[0-9a-f]{16}-[0-9]{1,4}x[0-9]{1,4}(?:-a)?"
_IMAGE_NAME = re.compile(rf"^({IMAGE_NAME_PATTERN})$")
_MAX_SIDE = 4096

# The simulator's public base URL for the request being served (set by the pipeline; each ASGI request runs
# in its own task, so its own context). Image links are the only answers that need it.
public_base_url: ContextVar[str] = ContextVar("public_base_url", default="http://localhost")


def base_url_from_headers(headers: list[tuple[bytes, bytes]]) -> str:
    """SIMULATOR_PUBLIC_URL when set; otherwise the scheme and host the client used (proxy headers first)."""
    configured = settings.SIMULATOR_PUBLIC_URL
    if configured:
        return configured.rstrip("/")
    host = forwarded_host = proto = ""
    for name, value in headers:
        if name == b"x-forwarded-host":
            forwarded_host = value.decode("latin-1").split(",")[0].strip()
        elif name == b"host":
            host = value.decode("latin-1").strip()
        elif name == b"x-forwarded-proto":
            proto = value.decode("latin-1").split(",")[0].strip()
    return f"{proto or 'http'}://{forwarded_host or host or 'localhost'}"


# --- naming and drawing ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ImageName:
    seed: int
    width: int
    height: int
    transparent: bool = False

    def __str__(self) -> str:
        return f"{self.seed:016x}-{self.width}x{self.height}" + ("-a" if self.transparent else "")

    @classmethod
    def parse(cls, text: str) -> ImageName | None:
        if not _IMAGE_NAME.match(text):
            return None
        seed_hex, size, *flags = text.split("-")
        width, height = (int(side) for side in size.split("x"))
        if not (0 < width <= _MAX_SIDE and 0 < height <= _MAX_SIDE):
            return None
        return cls(int(seed_hex, 16), width, height, bool(flags))


def image_seed(*parts: object) -> int:
    digest = hashlib.blake2b(repr(parts).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big")


class _ImageCache:
    """Recently drawn PNGs, bounded in bytes; thread-safe because the image route may render in a thread."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[ImageName, bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get_or_draw(self, name: ImageName) -> bytes:
        with self._lock:
            png = self._items.get(name)
            if png is not None:
                self._items.move_to_end(name)
                return png
        png = draw_png(name.seed, name.width, name.height, transparent=name.transparent)
        with self._lock:
            if name not in self._items and len(png) <= self.max_bytes:
                self._items[name] = png
                self._size += len(png)
                while self._size > self.max_bytes:
                    _, evicted = self._items.popitem(last=False)
                    self._size -= len(evicted)
        return png


image_cache = _ImageCache(max_bytes=32 * 1024 * 1024)


def image_png(name: ImageName) -> bytes:
    return image_cache.get_or_draw(name)


def image_b64(name: ImageName) -> str:
    return base64.b64encode(image_png(name)).decode("ascii")


# --- signed links ------------------------------------------------------------------------------------------
def _signing_key() -> bytes:
    return hmac.new(settings.SECRET_KEY.encode("utf-8"), b"simulator-image-links", hashlib.sha256).digest()


def _signature(name: str, expires: int) -> str:
    mac = hmac.new(_signing_key(), f"{name}:{expires}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:24]).decode("ascii")


def image_url(name: ImageName, now: float | None = None) -> str:
    expires = int((time.time() if now is None else now) + settings.SIMULATOR_IMAGE_URL_TTL_SECONDS)
    text = str(name)
    return f"{public_base_url.get()}{IMAGE_PATH_PREFIX}{text}.png?se={expires}&sig={_signature(text, expires)}"


class ImageLinkError(Exception):
    """Why a link does not serve an image: an Azure-Storage-like status, code and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def xml(self) -> bytes:
        return (
            '<?xml version="1.0" encoding="utf-8"?>'
            f"<Error><Code>{self.code}</Code><Message>{self.message}</Message></Error>"
        ).encode()


def verify_image_link(name_text: str, expires_text: str | None, signature: str | None,
                      now: float | None = None) -> ImageName:
    """The image a link names, if its signature holds and it has not expired; ImageLinkError otherwise."""
    name = ImageName.parse(name_text)
    if name is None:
        raise ImageLinkError(404, "BlobNotFound", "The specified blob does not exist.")
    if not expires_text or not signature or not expires_text.isdigit():
        raise ImageLinkError(403, "AuthenticationFailed",
                             "Server failed to authenticate the request. The link has no valid signature.")
    if not hmac.compare_digest(signature, _signature(name_text, int(expires_text))):
        raise ImageLinkError(403, "AuthenticationFailed",
                             "Server failed to authenticate the request. Signature did not match.")
    if int(expires_text) < (time.time() if now is None else now):
        raise ImageLinkError(403, "AuthenticationFailed",
                             "Server failed to authenticate the request. Signed expiry time has passed.")
    return name
