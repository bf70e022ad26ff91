from django.apps import AppConfig


class AuthserverConfig(AppConfig):
    name = "authserver"
    verbose_name = "Authorization server"

    def ready(self):
        from oauth2_provider.signals import app_authorized

        from authserver.signals import note_client_used

        app_authorized.connect(note_client_used, dispatch_uid="authserver.note_client_used")
