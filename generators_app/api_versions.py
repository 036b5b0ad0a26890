"""The AOAI api-versions the dated routes accept (SIMULATOR_API_VERSIONS overrides the list)."""

from django.conf import settings

PUBLISHED_API_VERSIONS: tuple[str, ...] = (
    # stable
    "2022-12-01", "2023-05-15", "2024-02-01", "2024-06-01", "2024-10-21",
    # preview
    "2023-03-15-preview", "2023-06-01-preview", "2023-07-01-preview", "2023-08-01-preview",
    "2023-09-01-preview", "2023-10-01-preview", "2023-12-01-preview", "2024-02-15-preview",
    "2024-03-01-preview", "2024-04-01-preview", "2024-05-01-preview", "2024-07-01-preview",
    "2024-08-01-preview", "2024-09-01-preview", "2024-10-01-preview", "2024-12-01-preview",
    "2025-01-01-preview", "2025-02-01-preview", "2025-03-01-preview", "2025-04-01-preview",
)

# The v1 surface takes no dated version; the SDK and docs use these when they send one.
V1_API_VERSIONS: frozenset[str] = frozenset({"v1", "latest", "preview"})


def accepted_api_versions() -> frozenset[str]:
    configured = settings.SIMULATOR_API_VERSIONS
    return frozenset(configured) if configured else frozenset(PUBLISHED_API_VERSIONS)
