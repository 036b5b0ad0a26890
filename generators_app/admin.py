from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest

from generators_app.models import ApiKey, Deployment
from generators_app.services import generate_api_key_secret, hash_api_key


class DeploymentForm(forms.ModelForm):
    """The upstream key is write-only: never rendered back; left empty it keeps the stored one."""

    upstream_key = forms.CharField(
        required=False, strip=True, widget=forms.PasswordInput(render_value=False),
        help_text="Record modes: the upstream's API key. Write-only: it is never shown again. Leave empty to keep "
                  "the current one; or name an environment variable below instead.",
    )
    clear_upstream_key = forms.BooleanField(required=False, help_text="Forget the stored upstream key.")

    class Meta:
        model = Deployment
        fields = "__all__"

    def clean_upstream_key(self) -> str:
        typed = self.cleaned_data.get("upstream_key") or ""
        return typed or (self.instance.upstream_key if self.instance.pk else "")

    def clean(self) -> dict:
        cleaned = super().clean()
        if cleaned.get("clear_upstream_key"):
            cleaned["upstream_key"] = ""
        return cleaned


@admin.register(Deployment)
class DeploymentAdmin(admin.ModelAdmin):
    form = DeploymentForm
    list_display = ("name", "model", "mode", "output_tokens_mean", "output_tokens_std", "enabled", "updated_at")
    list_filter = ("model", "mode", "enabled")
    search_fields = ("name", "model")


class ApiKeyForm(forms.ModelForm):
    secret = forms.CharField(
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False),
        help_text="Leave empty to generate one. The secret is shown once, after saving, and never again.",
    )

    class Meta:
        model = ApiKey
        fields = ("name", "enabled")


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    form = ApiKeyForm
    list_display = ("name", "key_prefix", "enabled", "created_at")
    list_filter = ("enabled",)
    search_fields = ("name", "key_prefix")
    readonly_fields = ("key_prefix", "created_at")

    def get_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> tuple[str, ...]:
        return ("name", "enabled", "secret") if obj is None else ("name", "enabled", "key_prefix", "created_at")

    def save_model(self, request: HttpRequest, obj: ApiKey, form: forms.ModelForm, change: bool) -> None:
        if not change:
            secret = form.cleaned_data.get("secret") or generate_api_key_secret()
            obj.key_hash, obj.key_prefix = hash_api_key(secret), secret[:8]
            super().save_model(request, obj, form, change)
            messages.warning(request, f"The key's secret, shown this once only: {secret}")
            return
        super().save_model(request, obj, form, change)
