"""What the attacker's checklist (tests/security) needs besides the product's own test helpers."""

from django.contrib.auth import get_user_model
from oauth2_provider.models import (
    get_access_token_model,
    get_application_model,
    get_grant_model,
    get_id_token_model,
    get_refresh_token_model,
)

from authserver.models import ConsentGrant, RedeemedCode

# The rows an OAuth request can create, change or delete.
STORED_MODELS = (
    get_application_model,
    get_access_token_model,
    get_refresh_token_model,
    get_grant_model,
    get_id_token_model,
    lambda: ConsentGrant,
    lambda: RedeemedCode,
    get_user_model,
)


def stored_rows() -> dict[str, list[tuple]]:
    """Every stored row an OAuth request could touch (the audit trail aside: refusals are recorded
    on purpose), to compare before and after a request that must change nothing."""
    rows = {}
    for model_of in STORED_MODELS:
        model = model_of()
        rows[model._meta.label] = sorted(model.objects.values_list(), key=repr)
    return rows


def assert_json_error(response, status: int, error: str | None = None) -> dict:
    """A JSON error answer (RFC 6749 §5.2's shape), never a page."""
    assert response.status_code == status, (response.status_code, response.content[:300])
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert isinstance(body.get("error_description", ""), str)
    if error is not None:
        assert body["error"] == error, body
    return body
