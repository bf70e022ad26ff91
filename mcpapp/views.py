"""RFC 9728 metadata for the MCP endpoints, served by django-oauth-toolkit's view."""

from oauth2_provider.views import OAuthProtectedResourceMetadataView

from authserver.resources import resource_url
from authserver.scopes import scope_registry
from mcpapp.conf import app_settings, resource_path


class MCPResourceMetadataView(OAuthProtectedResourceMetadataView):
    """One document per endpoint (RFC 9728 §3.1). DOT would derive the bare
    ``/.well-known/oauth-protected-resource`` form's resource as the origin; here it names the
    Streamable HTTP endpoint, and the issuer (not the request) names the origin when set."""

    resource_path: str | None = None  # None: the Streamable HTTP endpoint's

    def get_resource(self, request):
        return resource_url(request.build_absolute_uri("/"), self.resource_path or resource_path())

    def get_resource_name(self):
        return app_settings.SERVER_NAME

    def get_scopes_supported(self):
        # Minimal (MCP authorization, scope selection): a client that follows this list asks for the
        # base scope only, and each tool's 403 challenge asks for more when it is needed.
        return [scope_registry.base.name]
