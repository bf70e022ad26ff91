from django.urls import path

from mcpapp.conf import resource_path, sse_resource_path
from mcpapp.views import MCPResourceMetadataView

# RFC 9728 §3.1: at the origin root with each resource's path appended, and the bare form.
urlpatterns = [
    path(
        ".well-known/oauth-protected-resource" + endpoint_path,
        MCPResourceMetadataView.as_view(resource_path=endpoint_path),
    )
    for endpoint_path in (resource_path(), sse_resource_path())
] + [
    path(".well-known/oauth-protected-resource", MCPResourceMetadataView.as_view()),
]
