from django.apps import AppConfig


class AuthserverConfig(AppConfig):
    name = "authserver"
    verbose_name = "Authorization server"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from axes.signals import user_locked_out
        from corsheaders.signals import check_request_enabled
        from django.contrib.auth import get_user_model
        from django.contrib.auth.signals import user_login_failed
        from django.db.models.signals import post_delete, post_save, pre_save
        from oauth2_provider.signals import app_authorized

        from authserver import (
            accounts,
            checks,  # noqa: F401  (registers the system checks)
            cors,
            signals,
        )
        from authserver.dot.metadata_documents import metadata_document_client_keys
        from authserver.models import Application

        check_request_enabled.connect(cors.oauth_endpoint_cors_allowed, dispatch_uid="authserver.cors")
        app_authorized.connect(signals.token_issued, dispatch_uid="authserver.token_issued")
        post_save.connect(signals.client_saved, sender=Application, dispatch_uid="authserver.client_saved")
        # A metadata document that authenticates with private_key_jwt (authserver.dot.metadata_documents).
        pre_save.connect(metadata_document_client_keys, sender=Application, dispatch_uid="authserver.cimd_keys")
        post_delete.connect(signals.client_deleted, sender=Application, dispatch_uid="authserver.client_deleted")
        user_login_failed.connect(signals.login_failed, dispatch_uid="authserver.login_failed")
        user_locked_out.connect(signals.login_locked, dispatch_uid="authserver.login_locked")
        # A deactivated account's tokens are revoked (a changed password's: accounts.PasswordChangeSignsOut).
        User = get_user_model()
        pre_save.connect(accounts.account_deactivation_noted, sender=User, dispatch_uid="authserver.deactivation")
        post_save.connect(accounts.account_deactivated, sender=User, dispatch_uid="authserver.deactivated")
