"""Signals recordings_app sends; the app that caches configuration (generators_app) listens.

Bulk changes made with ``QuerySet.update`` send no ``post_save``, so the services announce them with
``recordings_changed``. Hit counting is deliberately silent: it changes nothing the data plane serves.
"""

from django.dispatch import Signal

# Sent after a bulk change to recordings (enable/disable, move, re-key); no arguments besides ``sender``.
recordings_changed = Signal()
