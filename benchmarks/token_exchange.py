"""Token exchanges per second at ``/o/token/``, by kind of client: public (PKCE only), confidential
(its secret stored with the fast hasher, authserver/hashers.py), confidential with its secret
still stored with PBKDF2 (a row from before the fast hasher), and service clients getting tokens with
``client_credentials``, authenticated by their secret or by ``private_key_jwt`` (RS256, ES256, EdDSA:
a new signed assertion per request, signed by the load generator)::

    .venv/bin/python -m benchmarks.token_exchange                          # SQLite
    .venv/bin/python -m benchmarks.token_exchange --database postgresql    # a throwaway PostgreSQL cluster

For each kind, ``concurrency`` clients send token requests back to back for a fixed time:

- ``authorization_code``: codes people approved before the window (they had consented already, so
  each authorization request came straight back with a code); a code lives 60 s, so the window may
  end early when they run out, which the table says.
- ``refresh_token``: each client follows its own rotation chain (RFC 9700 §4.14.2).

Confidential clients authenticate with ``client_secret_basic``. A secret stored with PBKDF2 is
stored again with the fast hasher on the client's first successful authentication, so the legacy
rows measure exactly that first exchange: every exchange is a different client's first (PBKDF2
check, then the upgrade's write). Afterwards those clients are as fast as "confidential".

Only 127.0.0.1 is used. The numbers are for reading, not for passing or failing.
"""

import argparse
import itertools
import json
import math
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial

import httpx2

from benchmarks.harness import (
    BenchmarkWorkdir,
    CpuMeter,
    benchmark_database,
    machine_summary,
    python_summary,
    server_log_problems,
    started_server,
)
from live.keys import KeyPair, assertion_claims
from live.oauth_flow import REDIRECT_URI, client_register, client_registration, code_obtain
from live.person import Person
from live.server import LiveServer

PUBLIC, CONFIDENTIAL, LEGACY = "public", "confidential", "confidential, legacy PBKDF2 hash"
AUTHORIZATION_CODE, REFRESH_TOKEN, CLIENT_CREDENTIALS = "authorization_code", "refresh_token", "client_credentials"
SERVICE_SECRET = "service, client_secret_basic"
SIGNING_ALGORITHMS = ("RS256", "ES256", "EdDSA")
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# Requests queued per service client: more than any window sends (they never run out).
SERVICE_QUEUE = 100_000
PASSWORD = "token exchange benchmark 42"
CODE_LIFETIME_SECONDS = 60  # AUTHORIZATION_CODE_EXPIRE_SECONDS in config/settings.py
# Sizes the pool of legacy clients: more PBKDF2 exchanges per second than 2 cores manage (PBKDF2 releases
# the GIL, so one worker process keeps both busy).
LEGACY_EXCHANGES_PER_SECOND_GUESS = 8

# Run by `manage.py shell` on the server's database: the secrets (JSON on stdin) stored as a row
# written before CLIENT_SECRET_HASHER was set would hold them. PBKDF2 releases the GIL: threads.
LEGACY_HASHES_SET = """
import json, os, sys
from concurrent.futures import ThreadPoolExecutor
from django.contrib.auth.hashers import make_password
from oauth2_provider.models import get_application_model

pairs = json.load(sys.stdin)
with ThreadPoolExecutor(os.cpu_count()) as pool:
    hashes = list(pool.map(lambda pair: make_password(pair[1], hasher="pbkdf2_sha256"), pairs))
clients = get_application_model().objects
print(sum(clients.filter(client_id=pair[0]).update(client_secret=h) for pair, h in zip(pairs, hashes)))
"""
# How many of the clients (JSON list of client_ids on stdin) have their secret stored with PBKDF2.
LEGACY_HASHES_COUNT = """
import json, sys
from oauth2_provider.models import get_application_model

clients = get_application_model().objects.filter(client_id__in=json.load(sys.stdin))
print(clients.filter(client_secret__startswith="pbkdf2_sha256$").count())
"""


@dataclass
class TokenExchangeRate:
    client_kind: str  # PUBLIC, CONFIDENTIAL or LEGACY
    grant: str  # AUTHORIZATION_CODE or REFRESH_TOKEN
    exchanges: int  # answered 200 with tokens
    seconds: float  # from the start until the last request sent before the deadline was answered
    per_second: float
    p50_ms: float
    p99_ms: float
    errors: int  # any other answer, or no answer
    server_cpu_ms: float | None = None  # the server's CPU time per request sent
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Client:
    client_id: str
    secret: str | None = None  # None: a public client, or one that signs (``signer``)
    # private_key_jwt: a fresh `client_assertion` (and its type) for each request.
    signer: Callable[[], dict[str, str]] | None = None

    def credentials(self) -> httpx2.BasicAuth | None:
        # RFC 6749 §2.3.1: client_secret_basic (generated ids and secrets need no form-encoding).
        return httpx2.BasicAuth(self.client_id, self.secret) if self.secret else None


@dataclass(frozen=True)
class Exchange:
    """A token request ready to send: who sends it, and its grant's parameters."""

    client: Client
    grant: dict[str, str]


def client_register_confidential(server_url: str, *, name: str) -> Client:
    """RFC 7591: a server-side client registers itself for client_secret_basic and gets its secret."""
    registered = client_registration(server_url, name=name, auth_method="client_secret_basic")
    return Client(registered["client_id"], registered["client_secret"])


def clients_register(server_url: str, kind: str, count: int) -> list[Client]:
    if kind == PUBLIC:
        return [Client(client_register(server_url, name=f"Public agent {index}")) for index in range(count)]
    return [client_register_confidential(server_url, name=f"{kind} client {index}") for index in range(count)]


def token_post(http: httpx2.Client, exchange: Exchange) -> httpx2.Response:
    """RFC 6749 §4.1.3 / §6: ``client_id`` in the body only for a client that does not authenticate."""
    client = exchange.client
    if client.signer is not None:  # RFC 7523 §2.2: the assertion names the client
        return http.post("/o/token/", data={**exchange.grant, **client.signer()})
    data = exchange.grant if client.secret else {**exchange.grant, "client_id": client.client_id}
    return http.post("/o/token/", data=data, auth=client.credentials())


def code_grant(code: str, verifier: str) -> dict[str, str]:
    return {"grant_type": AUTHORIZATION_CODE, "code": code, "redirect_uri": REDIRECT_URI, "code_verifier": verifier}


def refresh_grant(refresh_token: str) -> dict[str, str]:
    return {"grant_type": REFRESH_TOKEN, "refresh_token": refresh_token}


# --- Before the window ----------------------------------------------------------------------


def codes_obtain(server_url: str, person: Person, clients: Iterable[Client], *, until: float) -> deque[Exchange]:
    """A code the person approved for each of ``clients`` in turn (an endless iterable: until ``until``)."""
    exchanges: deque[Exchange] = deque()
    for client in clients:
        if time.monotonic() >= until:
            break
        code, verifier = code_obtain(server_url, person, client.client_id)
        exchanges.append(Exchange(client, code_grant(code, verifier)))
    return exchanges


def refresh_tokens_obtain(server_url: str, person: Person, clients: Iterable[Client]) -> deque[Exchange]:
    """The person connects each client (consent, code exchange); the refresh requests they can send."""
    exchanges: deque[Exchange] = deque()
    with httpx2.Client(base_url=server_url, timeout=30) as http:
        for client in clients:
            code, verifier = code_obtain(server_url, person, client.client_id)
            answer = token_post(http, Exchange(client, code_grant(code, verifier)))
            assert answer.status_code == 200, (answer.status_code, answer.text[:300])
            exchanges.append(Exchange(client, refresh_grant(answer.json()["refresh_token"])))
    return exchanges


def in_parallel(function: Callable, calls: list[tuple]) -> list:
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(lambda arguments: function(*arguments), calls))


def legacy_hashes_set(server: LiveServer, clients: list[Client]) -> None:
    pairs = [(client.client_id, client.secret) for client in clients]
    updated = server.manage("shell", "-c", LEGACY_HASHES_SET, input=json.dumps(pairs))
    assert int(updated.split()[-1]) == len(clients), updated


def legacy_hashes_count(server: LiveServer, clients: list[Client]) -> int:
    output = server.manage("shell", "-c", LEGACY_HASHES_COUNT, input=json.dumps([c.client_id for c in clients]))
    return int(output.split()[-1])


# --- The window -----------------------------------------------------------------------------


@dataclass
class SenderTally:
    latencies: list[float] = field(default_factory=list)  # seconds, of the exchanges answered with tokens
    errors: int = 0
    first_error: str = ""
    ran_out: bool = False  # stopped before the deadline: nothing left to send
    finished: float = 0.0


def exchanges_send(server_url: str, pending: deque[Exchange], go: threading.Event, window: dict, *, chain: bool):
    """One client's requests, back to back, from ``go`` until ``window["deadline"]``. With ``chain``, a
    refresh answer's new refresh token is the client's next request (rotation: the old one is used up)."""
    tally = SenderTally()
    with httpx2.Client(base_url=server_url, timeout=60) as http:
        go.wait()
        while pending and time.monotonic() < window["deadline"]:
            exchange = pending.popleft()
            sent = time.monotonic()
            try:
                answer = token_post(http, exchange)
            except httpx2.TransportError as error:
                tally.errors += 1
                tally.first_error = tally.first_error or repr(error)
                continue
            if answer.status_code != 200 or "access_token" not in answer.json():
                tally.errors += 1
                tally.first_error = tally.first_error or f"HTTP {answer.status_code}: {answer.text[:200]}"
                continue
            tally.latencies.append(time.monotonic() - sent)
            if chain:
                pending.append(Exchange(exchange.client, refresh_grant(answer.json()["refresh_token"])))
        tally.ran_out = not pending and time.monotonic() < window["deadline"]
    tally.finished = time.monotonic()
    return tally


def percentile_ms(latencies: list[float], share: float) -> float:
    """Nearest-rank percentile, in milliseconds (0 without any)."""
    if not latencies:
        return 0.0
    ordered = sorted(latencies)
    return 1000 * ordered[min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1)]


def exchanges_run(
    server: LiveServer, kind: str, grant: str, queues: list[deque[Exchange]], *, seconds: float, chain: bool
) -> TokenExchangeRate:
    """``len(queues)`` clients sending their queued exchanges at once for ``seconds``."""
    go, window = threading.Event(), {}
    meter = CpuMeter([server.process.pid, *server.worker_pids()])
    with ThreadPoolExecutor(max_workers=len(queues)) as pool:
        sending = [pool.submit(exchanges_send, server.url, queue, go, window, chain=chain) for queue in queues]
        meter.start()
        start = time.monotonic()
        window["deadline"] = start + seconds
        go.set()
        tallies = [future.result() for future in sending]
    meter.stop()
    latencies = [latency for tally in tallies for latency in tally.latencies]
    errors = sum(tally.errors for tally in tallies)
    elapsed = max(tally.finished for tally in tallies) - start
    sent = len(latencies) + errors
    rate = TokenExchangeRate(
        client_kind=kind,
        grant=grant,
        exchanges=len(latencies),
        seconds=elapsed,
        per_second=len(latencies) / elapsed,
        p50_ms=percentile_ms(latencies, 0.50),
        p99_ms=percentile_ms(latencies, 0.99),
        errors=errors,
        server_cpu_ms=1000 * sum(meter.use.per_pid_seconds.values()) / sent if sent else None,
    )
    if any(tally.ran_out for tally in tallies):
        rate.notes.append(f"ran out of prepared requests {elapsed:.1f} s in (of {seconds:g} s)")
    first_error = next((tally.first_error for tally in tallies if tally.first_error), None)
    if first_error:
        rate.notes.append(f"first error: {first_error}")
    return rate


# --- The kinds of client --------------------------------------------------------------------


def steady_rates(server: LiveServer, kind: str, people: list[Person], *, seconds: float) -> list[TokenExchangeRate]:
    """A public or confidential client per person; codes obtained for as long as the window lasts,
    twice over, and no longer than they stay valid."""
    connected = list(zip(people, clients_register(server.url, kind, len(people))))
    until = time.monotonic() + max(1.0, min(2 * seconds, CODE_LIFETIME_SECONDS - seconds - 15))
    calls = [(server.url, person, itertools.repeat(client)) for person, client in connected]
    codes = in_parallel(partial(codes_obtain, until=until), calls)
    code_rate = exchanges_run(server, kind, AUTHORIZATION_CODE, codes, seconds=seconds, chain=False)
    chains = in_parallel(refresh_tokens_obtain, [(server.url, person, [client]) for person, client in connected])
    refresh_rate = exchanges_run(server, kind, REFRESH_TOKEN, chains, seconds=seconds, chain=True)
    return [code_rate, refresh_rate]


def legacy_rates(server: LiveServer, people: list[Person], *, seconds: float) -> list[TokenExchangeRate]:
    """Each exchange is a different confidential client's first since its secret was stored with PBKDF2."""
    count = max(2 * len(people), math.ceil(seconds * LEGACY_EXCHANGES_PER_SECOND_GUESS))
    for_codes = clients_register(server.url, LEGACY, count)
    for_refresh = clients_register(server.url, LEGACY, count)
    shares = [(person, index) for index, person in enumerate(people)]
    # Connected while their secrets are still stored fast, so that the refresh is each one's first PBKDF2 check.
    chains = in_parallel(refresh_tokens_obtain, [(server.url, p, for_refresh[i :: len(people)]) for p, i in shares])
    legacy_hashes_set(server, for_codes + for_refresh)
    calls = [(server.url, person, for_codes[index :: len(people)]) for person, index in shares]
    codes = in_parallel(partial(codes_obtain, until=math.inf), calls)
    rates = [
        exchanges_run(server, LEGACY, AUTHORIZATION_CODE, codes, seconds=seconds, chain=False),
        exchanges_run(server, LEGACY, REFRESH_TOKEN, chains, seconds=seconds, chain=False),
    ]
    for rate, clients in zip(rates, (for_codes, for_refresh)):
        upgraded = count - legacy_hashes_count(server, clients)
        rate.notes.append(
            f"each exchange was a different client's first: the PBKDF2 check, then the upgrade;"
            f" afterwards {upgraded} of the {count} clients prepared hold the fast hash"
        )
    return rates


# Run by `manage.py shell` on the server's database: service clients made as an operator makes them
# (JSON on stdin: [name, jwks or null] pairs); prints [client_id, secret or null] pairs.
SERVICE_CLIENTS_CREATE = """
import json, sys
from authserver.service_clients import service_client_create

made = [service_client_create(name=name, scopes=["mcp"], jwks=jwks) for name, jwks in json.load(sys.stdin)]
print(json.dumps([[client.client_id, secret] for client, secret in made]))
"""


def assertion_signer(key: KeyPair, client_id: str, audience: str) -> Callable[[], dict[str, str]]:
    def signed() -> dict[str, str]:
        claims = assertion_claims(iss=client_id, sub=client_id, aud=audience)
        return {"client_assertion_type": CLIENT_ASSERTION_TYPE, "client_assertion": key.sign(claims)}

    return signed


def service_rates(server: LiveServer, *, concurrency: int, seconds: float) -> list[TokenExchangeRate]:
    """Service clients' ``client_credentials`` requests: by secret, then by each signing algorithm."""
    keys = {alg: KeyPair.make(alg) for alg in SIGNING_ALGORITHMS}
    wanted = [(f"bench service {index}", None) for index in range(concurrency)]
    wanted += [(f"bench {alg} {index}", keys[alg].jwks) for alg in SIGNING_ALGORITHMS for index in range(concurrency)]
    made = json.loads(
        server.manage("shell", "-c", SERVICE_CLIENTS_CREATE, input=json.dumps(wanted)).strip().splitlines()[-1]
    )
    grant = {"grant_type": CLIENT_CREDENTIALS}
    groups = {SERVICE_SECRET: [Client(client_id, secret) for client_id, secret in made[:concurrency]]}
    for position, alg in enumerate(SIGNING_ALGORITHMS, start=1):
        ids = [client_id for client_id, _ in made[position * concurrency : (position + 1) * concurrency]]
        signers = [assertion_signer(keys[alg], client_id, server.url) for client_id in ids]
        groups[f"service, private_key_jwt {alg}"] = [Client(cid, signer=s) for cid, s in zip(ids, signers)]
    rates = []
    for kind, clients in groups.items():
        queues = [deque([Exchange(client, grant)] * SERVICE_QUEUE) for client in clients]
        rates.append(exchanges_run(server, kind, CLIENT_CREDENTIALS, queues, seconds=seconds, chain=False))
    return rates


def token_exchange_rates(server, *, seconds: float = 5.0, concurrency: int = 4) -> list[TokenExchangeRate]:
    """Token exchanges per second on the started ``server`` (a ``live.server.LiveServer``),
    for each kind of client and both grants, with ``concurrency`` clients sending at once."""
    usernames = [f"exchange-{uuid.uuid4().hex[:8]}-{index}" for index in range(concurrency)]
    server.create_users(usernames, PASSWORD)
    people = [Person(username, PASSWORD) for username in usernames]
    try:
        # Untimed: the first token requests a worker answers load code and warm caches.
        for person, client in zip(people, clients_register(server.url, PUBLIC, concurrency)):
            refresh_tokens_obtain(server.url, person, [client])
        rates = [*steady_rates(server, PUBLIC, people, seconds=seconds)]
        rates += steady_rates(server, CONFIDENTIAL, people, seconds=seconds)
        rates += legacy_rates(server, people, seconds=seconds)
        rates += service_rates(server, concurrency=concurrency, seconds=seconds)
        return rates
    finally:
        for person in people:
            person.browser.close()


def format_token_exchange_rates(rates: list[TokenExchangeRate]) -> str:
    header = (
        f"{'client':<34}  {'grant':<18}  {'exchanges':>9}  {'seconds':>7}  {'per s':>7}  {'p50 ms':>7}"
        f"  {'p99 ms':>7}  {'errors':>6}  {'server CPU ms/exchange':>22}"
    )
    lines = [header, "-" * len(header)]
    notes = []
    for rate in rates:
        cpu = f"{rate.server_cpu_ms:.1f}" if rate.server_cpu_ms is not None else "-"
        lines.append(
            f"{rate.client_kind:<34}  {rate.grant:<18}  {rate.exchanges:>9}  {rate.seconds:>7.1f}"
            f"  {rate.per_second:>7.1f}  {rate.p50_ms:>7.1f}  {rate.p99_ms:>7.1f}  {rate.errors:>6}  {cpu:>22}"
        )
        notes.extend(f"  {rate.client_kind}, {rate.grant}: {note}" for note in rate.notes)
    if notes:
        lines += ["", "Notes:", *notes]
    return "\n".join(lines)


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.token_exchange", description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (default 1)")
    parser.add_argument("--seconds", type=float, default=5.0, help="timed window per client kind and grant")
    parser.add_argument("--concurrency", type=int, default=4, help="clients sending at once")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    arguments = parse_arguments(argv)
    workdir = BenchmarkWorkdir("mcp-token-exchange-")
    with workdir.kept_on_failure(), benchmark_database(arguments.database) as database:
        print(f"Machine:  {machine_summary()}")
        print(f"Python:   {python_summary()}")
        print(f"Database: {database.describe()}")
        print(
            f"Load:     {arguments.concurrency} clients sending token requests back to back,"
            f" {arguments.seconds:g} s per row, to uvicorn with {arguments.workers} worker(s)\n",
            flush=True,
        )
        with started_server(workdir.path / "server", workers=arguments.workers, database=database) as server:
            rates = token_exchange_rates(server, seconds=arguments.seconds, concurrency=arguments.concurrency)
        problems = server_log_problems(server)
    print(format_token_exchange_rates(rates))
    print("\n(server CPU: user + system time of the server's processes in the window, per request sent)")
    troubled = bool(problems) or any(rate.errors for rate in rates)
    if troubled:
        print(f"\nServer log ({server.log_path}), from its first warning or traceback:")
        print("\n".join(f"  | {line}" for line in problems))
    workdir.finish(troubled=troubled)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
