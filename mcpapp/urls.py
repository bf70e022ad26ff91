from django.conf import settings
from django.urls import path

from mcpapp.resource import resource_paths
from mcpapp.views import MCPResourceMetadataView

# RFC 9728 §3.1: at the origin root with each resource's path appended, and the bare form.
urlpatterns = [
    path(
        ".well-known/oauth-protected-resource" + resource_path,
        MCPResourceMetadataView.as_view(resource_path=resource_path),
    )
    for resource_path in resource_paths()
] + [
    path(
        ".well-known/oauth-protected-resource",
        MCPResourceMetadataView.as_view(resource_path=settings.MCP_RESOURCE_PATH),
    ),
]
