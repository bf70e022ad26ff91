"""A person at a browser: follows the authorization redirect, signs in and answers the consent page
by submitting the server's real HTML forms (with their CSRF tokens) over HTTP."""

from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import httpx2

from live.forms import parse_forms


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class Person:
    def __init__(
        self,
        username: str,
        password: str,
        *,
        allow: bool = True,
        untick: tuple[str, ...] = (),
        tick: tuple[str, ...] = (),
    ):
        self.username = username
        self.password = password
        self.allow = allow
        self.untick = untick  # scopes the person unticks on the consent page
        self.tick = tick  # optional scopes the page offers (unticked) that the person ticks
        self.browser = httpx2.Client(follow_redirects=False, timeout=30)
        self.pages: list[str] = []  # paths of the pages the person was shown, in order
        self.consent_pages: list[str] = []  # the consent pages' HTML

    def authorize(self, url: str) -> dict[str, str]:
        """Go from an authorization request to the client's redirect URI, answering each page.

        Returns the query parameters the client receives (``code``, ``state``, ``iss`` or ``error``).
        """
        server = origin(url)
        for _ in range(12):
            if origin(url) != server:
                params = {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}
                return {**params, "_redirect_uri": url.split("?")[0]}
            response = self.browser.get(url)
            if response.status_code in (301, 302, 303):
                url = urljoin(url, response.headers["location"])
                continue
            assert response.status_code == 200, f"{url} answered {response.status_code}: {response.text[:300]}"
            self.pages.append(urlsplit(url).path)
            # The sign-in form, or the consent form (not the consent page's "Not you? Sign out").
            form = next(form for form in parse_forms(response.text) if {"password", "consent_request"} & form.names)
            if "password" in form.names:
                data = form.submission(username=self.username, password=self.password)
            else:
                self.consent_pages.append(response.text)
                data = form.submission(button="allow" if self.allow else "deny", untick=self.untick, tick=self.tick)
            target = urljoin(url, form.action or url)
            answer = self.browser.post(
                target, content=urlencode(data), headers={"Content-Type": "application/x-www-form-urlencoded"}
            )
            assert answer.status_code in (302, 303), f"{target} answered {answer.status_code}: {answer.text[:300]}"
            url = urljoin(target, answer.headers["location"])
        raise AssertionError("the person never got back to the client")
