"""The reference site's own page: what this server is and how to connect to it."""

from django.views.generic import TemplateView

from mcpapp.connect import mcp_connection


class HomeView(TemplateView):
    template_name = "home.html"

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), **mcp_connection(self.request)}
