"""The management API's project-wide pieces: authentication, error mapping and the /api/ URL tree.

Each app owns its serializers and viewsets (``<app>/api/``); this package only assembles them.
"""
