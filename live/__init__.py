"""The real product on 127.0.0.1, driven the way its users drive it, shared by ``tests/`` and
``benchmarks/`` (neither imports the other): server processes (``server``), throwaway PostgreSQL and
Redis servers (``postgres_server``, ``redis_server``), a person at a browser who signs in and answers
the consent page (``person``, ``forms``), and an OAuth client's steps over HTTP (``oauth_flow``)."""
