"""Serves the images that `url` answers link to: thin transport over generation/images.py.

Like an AOAI SAS link, a link needs no API key: its signature and expiry are the authorization. Drawing
runs in a worker thread (it takes milliseconds, and zlib releases the GIL), so a burst of image fetches
does not stall the data plane's event loop.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import parse_qs

from channels.exceptions import StopConsumer
from channels.generic.http import AsyncHttpConsumer

from generators_app.generation.images import ImageLinkError, image_png, verify_image_link

_XML = [(b"content-type", b"application/xml")]


class GeneratedImageConsumer(AsyncHttpConsumer):
    async def dispatch(self, message: dict[str, Any]) -> None:
        # As in DataPlaneConsumer: no per-message database-connection housekeeping (the ORM is never used here).
        if message["type"] == "http.request":
            await self.http_request(message)
        elif message["type"] == "http.disconnect":
            raise StopConsumer()

    async def handle(self, body: bytes) -> None:
        method = self.scope["method"]
        if method not in ("GET", "HEAD"):
            error = ImageLinkError(405, "UnsupportedHttpVerb", "The resource doesn't support specified Http Verb.")
            await self.send_response(405, error.xml(), headers=[*_XML, (b"allow", b"GET, HEAD")])
            return
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        expires = query.get("se", [None])[0]
        try:
            name = verify_image_link(self.scope["url_route"]["kwargs"]["name"], expires, query.get("sig", [None])[0])
        except ImageLinkError as error:
            await self.send_response(error.status, error.xml(), headers=_XML)
            return
        png = await asyncio.to_thread(image_png, name)
        max_age = max(0, int(expires or 0) - int(time.time()))
        headers = [
            (b"content-type", b"image/png"),
            (b"cache-control", f"private, max-age={max_age}".encode()),
            (b"x-ms-blob-type", b"BlockBlob"),
        ]
        if method == "HEAD":
            headers.append((b"content-length", str(len(png)).encode()))
            await self.send_headers(status=200, headers=headers)
            await self.send_body(b"")
            return
        await self.send_response(200, png, headers=headers)
