from django.apps import AppConfig


class GeneratorsAppConfig(AppConfig):
    name = "generators_app"
    verbose_name = "Deployments and generation"

    def ready(self) -> None:
        from generators_app import signals  # noqa: F401  (connects the cache invalidation receivers)
        from generators_app.extensions.loader import load_configured_extensions

        # Before the first request and before routing.py builds the routes: a broken extension stops the start.
        load_configured_extensions()
