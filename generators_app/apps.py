from django.apps import AppConfig


class GeneratorsAppConfig(AppConfig):
    name = "generators_app"
    verbose_name = "Deployments and generation"

    def ready(self) -> None:
        from generators_app import signals  # noqa: F401  (connects the cache invalidation receivers)
