"""Management API (DRF) for limit, latency and fault profiles; assembled under /api/ by simulator_project.api."""
