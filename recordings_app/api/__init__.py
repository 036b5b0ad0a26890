"""Management API (DRF) for recording sets and recordings; assembled under /api/ by simulator_project.api."""
