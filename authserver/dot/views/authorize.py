"""The authorization endpoint: django-oauth-toolkit's view, with this site's consent policy.

DOT validates the request and issues the code; this subclass decides whether the person must be
asked (first-party clients never, third-party clients for whatever they were not allowed before),
shows the consent page, and checks that the form comes back as it was sent. ``prompt`` (OpenID
Connect Core §3.1.2.1) means the same with or without ``openid``: ``none`` never shows a page
(login_required, consent_required), ``login`` signs in again, ``consent`` asks again.
"""

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from django.contrib.auth.views import redirect_to_login
from django.core import signing
from django.http import HttpResponseNotAllowed
from django.shortcuts import resolve_url
from django.views import View
from oauth2_provider import views as dot_views
from oauth2_provider.exceptions import OAuthToolkitError
from oauth2_provider.forms import AllowForm
from oauth2_provider.models import get_application_model
from oauth2_provider.scopes import get_scopes_backend
from oauth2_provider.settings import oauth2_settings
from oauthlib.oauth2.rfc6749.errors import CustomOAuth2Error

from authserver.audit import audit_record
from authserver.capabilities import Capability, capabilities_by_scope, optional_scopes_offered
from authserver.conf import refresh_token_lifetime, site_name
from authserver.consent import consent_grant, consent_new_tools
from authserver.display_text import display_text_clean
from authserver.dot.private import add_iss_to_redirect
from authserver.dot.repeated_parameters import oauth_parameters_repeated, repeated_parameter_description
from authserver.models import AuditEvent
from authserver.registration import is_loopback_host
from authserver.resources import names_known_resource
from authserver.scopes import Scope, scope_registry
from authserver.security import sensitive_page

CONSENT_SALT = "authserver.consent"
CONSENT_MAX_AGE = 15 * 60  # seconds a consent page stays valid
# The authorization request as DOT's form carries it in hidden fields.
REQUEST_FIELDS = (
    "client_id",
    "redirect_uri",
    "scope",
    "response_type",
    "state",
    "code_challenge",
    "code_challenge_method",
    "nonce",
    "claims",
    "resource",
)
TAMPERED = "This consent form was changed or has expired. Go back to the app and start again."


def consent_request_sign(*, user, fields: dict, optional: list[str], extra: list[str]) -> str:
    """Sign what the consent page was shown for (allauth's IdP does the same with its forms): the
    request, the asked scopes the person may untick, and the scopes it may add (``extra``)."""
    payload = {"user": user.pk, "fields": {name: fields.get(name) or "" for name in REQUEST_FIELDS}}
    payload.update(optional=optional, extra=extra)
    return signing.dumps(payload, salt=CONSENT_SALT, compress=True)


@dataclass(frozen=True)
class ScopeOnPage:
    """A scope as the consent page shows it: what it lets the client do, the tools it unlocks, and
    (for an optional one) which tools would use it."""

    scope: Scope
    tools: list[Capability]
    reasons: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.scope.name

    @property
    def base(self) -> bool:
        return self.scope.base


def consent_request_verify(*, user, token: str) -> dict | None:
    try:
        payload = signing.loads(token, salt=CONSENT_SALT, max_age=CONSENT_MAX_AGE)
    except signing.BadSignature:  # also SignatureExpired
        return None
    return payload if payload.get("user") == user.pk else None


def describe_registration(client) -> str:
    source = client.registration_source
    if source == client.RegistrationSource.CIMD:
        host = display_text_clean(urlsplit(client.client_id).hostname or "")
        return f"It identifies itself with a metadata document published at {host}."
    if source == client.RegistrationSource.DCR:
        return "It registered itself with this site automatically; nobody here has reviewed it."
    return "It was registered by this site's administrators."


def describe_redirect(redirect_uri: str) -> dict:
    parts = urlsplit(redirect_uri)
    if parts.scheme not in ("http", "https"):
        return {"redirect_host": f"{parts.scheme}:", "redirect_kind": "app"}
    if is_loopback_host(parts.hostname):
        return {"redirect_host": parts.hostname, "redirect_kind": "loopback"}
    return {"redirect_host": parts.hostname, "redirect_kind": "web"}


@sensitive_page
class AuthorizationView(dot_views.AuthorizationView):
    template_name = "authserver/authorize.html"

    def get(self, request, *args, **kwargs):
        # DOT would auto-approve on `approval_prompt=auto` from its own token history; consent here
        # is decided by the remembered grant only.
        if "approval_prompt" in request.GET:
            request.GET = request.GET.copy()
            del request.GET["approval_prompt"]
        repeated = self._repeated_parameters_refusal()
        if repeated is not None:
            return repeated
        self.prompt = set(request.GET.get("prompt", "").split())
        conflict = self._prompt_conflict()
        if conflict is not None:
            return conflict
        unknown = self._unknown_resources(request.GET.getlist("resource"))
        if unknown:
            try:
                _scopes, credentials = self.validate_authorization_request(request)
            except OAuthToolkitError as error:
                return self.error_response(error, application=None)
            # RFC 8707 §2: this server issues tokens only for its own MCP endpoints.
            return self._redirect_error(
                "invalid_target", "This server issues tokens only for its own MCP endpoints.", credentials
            )
        return super().get(request, *args, **kwargs)

    def handle_no_permission(self):
        # Nobody is signed in. DOT 3.4.1 answers prompt=none with login_required to the redirect URI
        # (OpenID Connect Core §3.1.2.6; `iss` added by `redirect`, RFC 9207), `openid` or not, once it
        # validated the request (a bad client or redirect URI: the error page, RFC 6749 §4.1.2.1).
        conflict = self._prompt_conflict()
        if conflict is not None:
            return conflict
        return super().handle_no_permission()

    def handle_prompt_login(self):
        # OpenID Connect Core §3.1.2.1 `login`: sign in (again), then back to this same request with only
        # `login` consumed. DOT 3.4.1 drops the whole prompt (a `consent` sent with it was lost, and a
        # remembered consent answered) and all but one of a repeated parameter (RFC 8707 `resource`).
        query = self.request.GET.copy()
        rest = [value for value in query.get("prompt", "").split() if value != "login"]
        if rest:
            query["prompt"] = " ".join(rest)
        else:
            query.pop("prompt", None)
        login_url = resolve_url(self.get_login_url())
        back = f"{self.request.path}?{query.urlencode()}"
        login_origin, here = urlsplit(login_url)[:2], urlsplit(self.request.build_absolute_uri())[:2]
        if any(part and part != current for part, current in zip(login_origin, here)):
            back = self.request.build_absolute_uri(back)  # a sign-in page elsewhere needs the whole URL
        return redirect_to_login(back, login_url, self.get_redirect_field_name())

    def render_to_response(self, context, **response_kwargs):
        application = context.get("application")
        if application is None or "form" not in context:  # an error page
            return super().render_to_response(context, **response_kwargs)
        # DOT has validated the request and is about to ask the person. First-party clients never
        # get here (DOT's skip_authorization approved them already).
        user, requested = self.request.user, context["scopes"]
        grant = None if "consent" in self.prompt else consent_grant(user=user, client=application)
        granted = grant.scopes if grant else []
        asked = scope_registry.missing(granted=granted, required=requested)
        new_tools = consent_new_tools(grant=grant, scopes=requested)
        if not asked and not new_tools:
            return self._approve(context["form"])
        if "none" in self.prompt:
            # OpenID Connect Core §3.1.2.6: consent is needed and the client said not to ask.
            return self._redirect_error("consent_required", "The user has not allowed this yet.", context)
        untickable = [name for name in asked if not scope_registry[name].base]
        # The page offers nothing the client may not get (an operator's allowed_scope): ticking it would fail.
        available = get_scopes_backend().get_available_scopes(application=application, request=self.request)
        offered = optional_scopes_offered([*granted, *requested], available=available)
        tools = capabilities_by_scope([*asked, *requested, *(option.scope.name for option in offered)])
        context.update(
            client_name=application.name or application.client_id,
            site_name=site_name(self.request),
            registration=describe_registration(application),
            asked_scopes=[ScopeOnPage(scope_registry[name], tools[name]) for name in asked],
            untickable=bool(untickable),
            optional_scopes=[ScopeOnPage(option.scope, tools[option.scope.name], option.reasons) for option in offered],
            # On a step-up, what the client keeps from before, so the person sees the whole of it.
            already_allowed=[ScopeOnPage(scope_registry[name], tools[name]) for name in requested if name not in asked],
            new_tools=new_tools,
            # How long a connection lasts unused: refresh tokens expire this long after they are issued.
            access_days=round(lifetime.total_seconds() / 86400) if (lifetime := refresh_token_lifetime()) else 0,
            sign_out_next=self.request.get_full_path(),
            consent_request=consent_request_sign(
                user=user,
                fields=context["form"].initial,
                optional=untickable,
                extra=[option.scope.name for option in offered],
            ),
            **describe_redirect(context["redirect_uri"]),
        )
        return super().render_to_response(context, **response_kwargs)

    def form_valid(self, form):
        signed = consent_request_verify(user=self.request.user, token=self.request.POST.get("consent_request", ""))
        # Every hidden field must come back as it was signed (RFC 9700 §4.1: never redirect to a
        # URI the client did not register, never issue a code for a request the person did not see).
        if signed is None or any(
            (form.cleaned_data.get(name) or "") != signed["fields"][name] for name in REQUEST_FIELDS
        ):
            context = {"error": {"error": "invalid_request", "description": TAMPERED}}
            return super().render_to_response(context, status=400)
        if form.cleaned_data.get("allow"):
            ticked = set(self.request.POST.getlist("scopes"))
            unticked = set(signed["optional"]) - ticked
            # Optional scopes the page offered (tools use them if granted) and the person ticked; any
            # other name posted was not offered and is ignored (the signature says what was).
            added = [name for name in signed.get("extra", []) if name in ticked]
            form.cleaned_data["scope"] = " ".join(
                [*(name for name in form.cleaned_data["scope"].split() if name not in unticked), *added]
            )
            if not form.cleaned_data["scope"]:  # the person unticked everything: that is a no
                form.cleaned_data["allow"] = False
        audit_record(
            kind=AuditEvent.Kind.CONSENT_GRANTED if form.cleaned_data.get("allow") else AuditEvent.Kind.CONSENT_DENIED,
            user=self.request.user,
            client=get_application_model().objects.filter(client_id=signed["fields"]["client_id"]).first(),
            scope=form.cleaned_data["scope"] if form.cleaned_data.get("allow") else signed["fields"]["scope"],
        )
        return super().form_valid(form)

    def redirect(self, redirect_to, application):
        # RFC 9207 §2: *every* authorization response carries `iss`, errors included (DOT adds it to
        # successful responses only). `add_iss_to_redirect` replaces any `iss` already present.
        issuer = oauth2_settings.oauth2_authorization_server_issuer(self.request)
        if application is None:
            # DOT passes no client on error redirects and then allows only the global schemes,
            # which would turn an error for a loopback-http client into a 500. oauthlib redirects
            # only to a redirect URI it has matched against this client, so its schemes apply.
            client_id = self.request.GET.get("client_id") or self.request.POST.get("client_id")
            application = get_application_model().objects.filter(client_id=client_id).first()
        return super().redirect(add_iss_to_redirect(redirect_to, issuer), application)

    def _approve(self, form):
        """Approve without asking: the person allowed all of this before."""
        data = {name: value for name, value in form.initial.items() if value is not None}
        approved = AllowForm(data={**data, "allow": True})
        if not approved.is_valid():  # pragma: no cover - DOT built these fields itself
            return super().render_to_response({"error": {"error": "invalid_request", "description": TAMPERED}})
        return super().form_valid(approved)

    def _prompt_conflict(self):
        """OpenID Connect Core §3.1.2.1: `none` with any other prompt value is an error, for every
        request (oauthlib checks it only when `openid` is asked for): invalid_request to the client."""
        prompt = set(self.request.GET.get("prompt", "").split())
        if "none" not in prompt or len(prompt) == 1:
            return None
        try:
            _scopes, credentials = self.validate_authorization_request(self.request)
        except OAuthToolkitError as error:
            return self.error_response(error, application=None)
        refusal = "prompt=none cannot be combined with other values."
        return self._redirect_error("invalid_request", refusal, credentials)

    def _repeated_parameters_refusal(self):
        """RFC 6749 §3.1: no parameter twice but `resource` (RFC 8707 §2; authserver.dot.repeated_parameters).
        oauthlib refuses a repeated client_id, redirect_uri, response_type, scope or state on the error
        page (whose redirect URI or state is meant is unknown, §4.1.2.1); any other, to the client."""
        repeated = oauth_parameters_repeated(self.request.GET)
        if not repeated:
            return None
        try:
            _scopes, credentials = self.validate_authorization_request(self.request)
        except OAuthToolkitError as error:
            return self.error_response(error, application=None)
        return self._redirect_error("invalid_request", repeated_parameter_description(repeated[0]), credentials)

    def _unknown_resources(self, resources):
        """RFC 8707 §2: the resources named that this server issues no tokens for."""
        origin = self.request.build_absolute_uri("/")
        return [resource for resource in resources if not names_known_resource(resource, origin)]

    def _redirect_error(self, error, description, request_data):
        """An error answered to the client's (already validated) redirect URI, with `state` and `iss`."""
        failure = OAuthToolkitError(
            error=CustomOAuth2Error(error=error, description=description, state=request_data.get("state")),
            redirect_uri=request_data["redirect_uri"],
        )
        return self.error_response(failure, application=None)


class AuthorizationCancelView(AuthorizationView):
    """ "Cancel and go back to <app>" on the sign-in page: the authorization request (the same query
    as ``/o/authorize/``) answered ``access_denied`` to the client's redirect URI, with ``state`` and
    ``iss`` (RFC 6749 §4.1.2.1), by someone not signed in. Validated as the authorization endpoint
    validates it, so it only ever redirects where a request to that endpoint could (RFC 9700 §4.1)."""

    def dispatch(self, request, *args, **kwargs):
        return View.dispatch(self, request, *args, **kwargs)  # no sign-in: the person is cancelling it

    def get(self, request, *args, **kwargs):
        try:
            _scopes, credentials = self.validate_authorization_request(request)
        except OAuthToolkitError as error:
            return self.error_response(error, application=None)
        return self._redirect_error("access_denied", "The person cancelled signing in.", credentials)

    def post(self, request, *args, **kwargs):
        return HttpResponseNotAllowed(["GET"])
