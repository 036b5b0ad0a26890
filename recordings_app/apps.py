from django.apps import AppConfig


class RecordingsAppConfig(AppConfig):
    name = "recordings_app"
    verbose_name = "Recordings"
