"""A site's URLconf that forgot authserver's URLs (tests/config/test_system_checks.py)."""

from django.contrib import admin
from django.urls import path

urlpatterns = [path("admin/", admin.site.urls)]
