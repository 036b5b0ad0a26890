from django.apps import AppConfig


class RecordingsAppConfig(AppConfig):
    name = "recordings_app"
    verbose_name = "Recordings"

    def ready(self) -> None:
        from recordings_app import receivers  # noqa: F401  (connects the signal receivers)
