"""The one boundary to django-oauth-toolkit (``authserver.dot``): every private DOT name the product
relies on is listed with its signature, and this fails loudly when an upgrade renames, removes or
re-signs one, instead of a security rule quietly switching off."""

import ast
import importlib
import inspect
import re
from importlib.metadata import version
from pathlib import Path

import oauth2_provider
import pytest
from django.conf import settings
from django.utils.module_loading import import_string

from authserver.dot import DOT_VERSION_CHECKED, DOT_VERSIONS_TESTED, PRIVATE_NAMES
from live.server import PROJECT_DIR

PRODUCT_DIRS = ("authserver", "mcpapp")
DOT_DIR = Path(oauth2_provider.__file__).parent


def product_files():
    for folder in PRODUCT_DIRS:
        yield from (path for path in (PROJECT_DIR / folder).rglob("*.py") if "migrations" not in path.parts)


def resolve(dotted: str):
    """``module.Class.attribute`` or ``module.function``: the object DOT has under that name."""
    parts = dotted.split(".")
    for split in range(len(parts) - 1, 0, -1):
        try:
            target = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for name in parts[split:]:
            target = getattr(target, name)
        return target
    raise ImportError(dotted)


def parameters(function) -> str:
    """The parameters as written, without annotations: ``(self, request, client_id)``."""
    signature = inspect.signature(function)
    plain = [parameter.replace(annotation=inspect.Parameter.empty) for parameter in signature.parameters.values()]
    return str(signature.replace(parameters=plain, return_annotation=inspect.Signature.empty))


@pytest.mark.parametrize("dotted", sorted(PRIVATE_NAMES))
def test_every_private_dot_name_used_still_exists_with_the_signature_it_was_checked_with(dotted):
    assert parameters(resolve(dotted)) == PRIVATE_NAMES[dotted], (
        f"django-oauth-toolkit changed {dotted}: re-check what authserver.dot does with it"
    )


def dot_private_functions() -> set[str]:
    names = set()
    for path in DOT_DIR.rglob("*.py"):
        names.update(re.findall(r"^\s*def (_[a-z]\w*)\(", path.read_text(), flags=re.MULTILINE))
    return names


def test_the_product_uses_no_private_dot_name_that_the_boundary_does_not_list():
    listed = {dotted.rsplit(".", 1)[1] for dotted in PRIVATE_NAMES}
    dot_private = dot_private_functions()
    unlisted = {}
    for path in product_files():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("oauth2_provider"):
                used = {alias.name for alias in node.names if alias.name.startswith("_")}
            elif isinstance(node, ast.Attribute | ast.FunctionDef):
                name = node.attr if isinstance(node, ast.Attribute) else node.name
                used = {name} & dot_private
            else:
                continue
            for name in used - listed:
                unlisted.setdefault(name, []).append(str(path.relative_to(PROJECT_DIR)))
    assert unlisted == {}, "private DOT names used outside authserver.dot.PRIVATE_NAMES"


def test_private_dot_functions_are_imported_only_by_the_boundary():
    importers = [
        str(path.relative_to(PROJECT_DIR))
        for path in product_files()
        if re.search(r"^from oauth2_provider\S* import .*\b_[a-z]", path.read_text(), flags=re.MULTILINE)
    ]
    assert importers == ["authserver/dot/private.py"]


def test_the_installed_dot_is_the_version_the_boundary_was_checked_against():
    installed = tuple(int(part) for part in version("django-oauth-toolkit").split(".")[:3])
    lowest, untested = DOT_VERSIONS_TESTED
    assert lowest <= installed < untested
    assert version("django-oauth-toolkit") == DOT_VERSION_CHECKED


def test_dot_is_configured_with_the_classes_of_the_boundary():
    for name in ("OAUTH2_VALIDATOR_CLASS", "OAUTH2_SERVER_CLASS", "OAUTH2_BACKEND_CLASS", "CIMD_METADATA_FETCHER"):
        dotted = settings.OAUTH2_PROVIDER[name]
        assert dotted.startswith("authserver.dot."), name
        import_string(dotted)


def test_the_validator_keeps_only_validator_methods():
    # Policies (replays, reuse, consent) live in plain functions; the class holds DOT's interface only.
    from oauth2_provider.oauth2_validators import OAuth2Validator

    from authserver.dot.validator import MCPOAuth2Validator

    own = {name for name, value in vars(MCPOAuth2Validator).items() if callable(value)}
    assert own <= set(dir(OAuth2Validator)), own - set(dir(OAuth2Validator))
