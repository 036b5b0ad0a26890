"""Management API (DRF) for deployments and data-plane API keys; assembled under /api/ by simulator_project.api."""
