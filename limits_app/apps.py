from django.apps import AppConfig


class LimitsAppConfig(AppConfig):
    name = "limits_app"
    verbose_name = "Limits, latency and faults"
