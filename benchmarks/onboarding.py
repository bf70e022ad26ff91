"""Onboarding cost: how long the server takes to get a new agent from its first 401 to its first
successful tool call, one server round trip at a time.

An agent that knows only the MCP endpoint's URL calls a tool, is refused (401), and follows the
links from there, as the MCP authorization spec has it: the protected resource metadata named in
the challenge (RFC 9728), the authorization server's metadata (RFC 8414), registration (RFC 7591),
the authorization request (PKCE, RFC 7636; ``resource``, RFC 8707) in which a person signs in and
consents on the real pages (``live/person.py`` submits them), the token request, and the tool
call again with the token. Every request is timed from sending it to having read the whole answer;
"server side" is the sum of those round trips on loopback, without the person's thinking time (nil
here) and without what the client does in between (PKCE, reading forms), which is reported apart.
"""

import re
import secrets
import statistics
import time
from dataclasses import dataclass, field
from urllib.parse import urlencode

import httpx2

from benchmarks.harness import AgentToken
from benchmarks.traffic import MCP_PROTOCOL_VERSION, ToolCall, call_failure
from live.oauth_flow import MCP_PATH, REDIRECT_URI, pkce_pair
from live.person import Person
from live.server import LiveServer

PASSWORD = "onboarding password 42"
FIRST_CALL = ToolCall()  # whoami on /star/mcp, answered with the identity the token speaks for
SIGN_IN = "sign-in POST (password hash check)"

# What each of the person's requests is, by method, path and status (the agent's are named as sent).
PERSON_STEPS = {
    ("GET", "/o/authorize/", 302): "authorize GET (not signed in: to sign-in)",
    ("GET", "/accounts/login/", 200): "sign-in page GET",
    ("POST", "/accounts/login/", 302): SIGN_IN,
    ("GET", "/o/authorize/", 200): "consent page GET",
    ("POST", "/o/authorize/", 302): "consent POST (code issued)",
}


@dataclass
class RoundTrip:
    step: str
    method: str
    path: str
    status: int
    seconds: float


class RoundTripClock(httpx2.HTTPTransport):
    """A transport that notes each request's round trip: from sending it to the end of its answer."""

    def __init__(self, **options):
        super().__init__(**options)
        self.round_trips: list[RoundTrip] = []
        self.step = ""  # what the next request is for; "" for the person's (named by PERSON_STEPS)

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        started = time.perf_counter()
        response = super().handle_request(request)
        response.read()
        seconds = time.perf_counter() - started
        method, path, status = request.method, request.url.path, response.status_code
        step = self.step or PERSON_STEPS.get((method, path, status), f"{method} {path} → {status}")
        self.round_trips.append(RoundTrip(step, method, path, status, seconds))
        return response


@dataclass
class Onboarding:
    """One agent's way in: every round trip in order, and the client's wall time from the first
    request to the end of the successful call."""

    round_trips: list[RoundTrip]
    wall_seconds: float

    @property
    def server_seconds(self) -> float:
        return sum(trip.seconds for trip in self.round_trips)


@dataclass
class OnboardingReport:
    runs: list[Onboarding] = field(default_factory=list)
    password_check: str = ""  # the configured hasher and what one check costs, measured apart

    def steps(self) -> list[str]:
        return [trip.step for trip in self.runs[0].round_trips]

    def step_ms(self, index: int) -> list[float]:
        return [1000 * run.round_trips[index].seconds for run in self.runs]


def challenge_params(header: str) -> dict[str, str]:
    """The auth-params of a ``WWW-Authenticate: Bearer ...`` challenge (RFC 6750 §3)."""
    return dict(re.findall(r'(\w+)="([^"]*)"', header))


def expect(response: httpx2.Response, status: int, step: str) -> httpx2.Response:
    assert response.status_code == status, f"{step}: {response.status_code} {response.text[:300]}"
    return response


def onboard_one(server_url: str, username: str, password: str) -> Onboarding:
    """A new agent and a person who never used it: from the 401 to the first successful tool call."""
    clock = RoundTripClock()
    person = Person(username, password)
    person.browser.close()
    person.browser = httpx2.Client(transport=clock, follow_redirects=False, timeout=30)
    mcp_headers = {
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": MCP_PROTOCOL_VERSION,
    }
    endpoint = server_url + MCP_PATH
    with httpx2.Client(transport=clock, timeout=30) as agent, person.browser:
        started = time.perf_counter()
        clock.step = "tools/call without a token (401)"
        refused = expect(agent.post(endpoint, content=FIRST_CALL.body(), headers=mcp_headers), 401, clock.step)
        challenge = challenge_params(refused.headers["www-authenticate"])

        clock.step = "protected resource metadata (RFC 9728)"
        resource = expect(agent.get(challenge["resource_metadata"]), 200, clock.step).json()
        clock.step = "authorization server metadata (RFC 8414)"
        issuer = resource["authorization_servers"][0]
        server = expect(agent.get(issuer + "/.well-known/oauth-authorization-server"), 200, clock.step).json()

        clock.step = "registration (RFC 7591)"
        registration = {
            "client_name": f"Onboarding agent {username}",
            "redirect_uris": [REDIRECT_URI],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        }
        client_id = expect(agent.post(server["registration_endpoint"], json=registration), 201, clock.step).json()[
            "client_id"
        ]

        clock.step = ""  # the person's requests, named by PERSON_STEPS
        verifier, challenge_s256 = pkce_pair()
        state = secrets.token_urlsafe(16)
        query = {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": REDIRECT_URI,
            "scope": challenge.get("scope", "mcp"),  # the scope the challenge asked for (MCP scope selection)
            "state": state,
            "code_challenge": challenge_s256,
            "code_challenge_method": "S256",
            "resource": resource["resource"],
        }
        callback = person.authorize(server["authorization_endpoint"] + "?" + urlencode(query))
        assert callback.get("state") == state and "code" in callback, callback
        # RFC 9207: the response names the issuer the client discovered.
        assert callback.get("iss") == server["issuer"], callback

        clock.step = "token request (code + PKCE verifier)"
        form = {
            "grant_type": "authorization_code",
            "code": callback["code"],
            "redirect_uri": REDIRECT_URI,
            "client_id": client_id,
            "code_verifier": verifier,
        }
        tokens = expect(agent.post(server["token_endpoint"], data=form), 200, clock.step).json()

        clock.step = "tools/call with the token (200)"
        bearer = {**mcp_headers, "Authorization": f"Bearer {tokens['access_token']}"}
        answer = expect(agent.post(endpoint, content=FIRST_CALL.body(), headers=bearer), 200, clock.step)
        wall = time.perf_counter() - started
    token = AgentToken(client_id, username, tokens["access_token"], tokens.get("refresh_token", ""))
    wrong = call_failure(answer, FIRST_CALL, token)
    assert wrong is None, wrong
    return Onboarding(clock.round_trips, wall)


PASSWORD_CHECK_TIMING = """
import time
from django.contrib.auth.hashers import check_password, get_hasher, make_password
encoded = make_password("x")
times = []
for _ in range(3):
    started = time.perf_counter()
    check_password("x", encoded)
    times.append(time.perf_counter() - started)
hasher = get_hasher()
print(hasher.algorithm, getattr(hasher, "iterations", "?"), 1000 * sorted(times)[1])
"""


def password_check_cost(server: LiveServer) -> str:
    """The configured password hasher, and one check's milliseconds (median of 3), in a process of its own."""
    algorithm, iterations, milliseconds = server.manage("shell", "-c", PASSWORD_CHECK_TIMING).split()[-3:]
    return f"{algorithm}, {iterations} iterations: {float(milliseconds):.0f} ms per check"


def onboarding_cost(server: LiveServer, *, repetitions: int) -> OnboardingReport:
    """``repetitions`` agents onboarded one after the other, each by a person of its own."""
    usernames = [f"onboard{index}" for index in range(repetitions)]
    server.create_users(usernames, PASSWORD)
    report = OnboardingReport(password_check=password_check_cost(server))
    for username in usernames:
        report.runs.append(onboard_one(server.url, username, PASSWORD))
    return report


def format_onboarding(report: OnboardingReport) -> str:
    runs = report.runs
    lines = [
        f"Onboarding: from the first 401 to the first successful tools/call, {len(runs)} new agents and people"
        " one after the other (ms; server round trips on loopback, the first run is the server's first agent)",
        f"  {'step':<46} {'median':>8} {'max':>8}",
    ]
    for index, step in enumerate(report.steps()):
        values = report.step_ms(index)
        lines.append(f"  {step:<46} {statistics.median(values):>8.1f} {max(values):>8.1f}")
    server = [1000 * run.server_seconds for run in runs]
    wall = [1000 * run.wall_seconds for run in runs]
    client = [w - s for w, s in zip(wall, server, strict=True)]
    sign_in = [1000 * trip.seconds for run in runs for trip in run.round_trips if trip.step == SIGN_IN] or [
        float("nan")
    ]
    lines += [
        f"  {'total, server side (sum of the round trips)':<46} {statistics.median(server):>8.1f} {max(server):>8.1f}",
        f"  {'client work in between (PKCE, forms, JSON)':<46} {statistics.median(client):>8.1f} {max(client):>8.1f}",
        f"  {'wall time, no thinking time':<46} {statistics.median(wall):>8.1f} {max(wall):>8.1f}",
        f"  The sign-in POST ({statistics.median(sign_in):.0f} ms median) is mostly the password check, slow on"
        f" purpose: {report.password_check} (measured apart, in a process of its own).",
    ]
    return "\n".join(lines)
