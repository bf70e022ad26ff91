"""Reading the server's real HTML forms, as a browser would, to submit them in tests."""

from dataclasses import dataclass, field
from html.parser import HTMLParser


@dataclass
class Form:
    action: str | None
    method: str
    fields: dict[str, str] = field(default_factory=dict)
    buttons: list[tuple[str, str]] = field(default_factory=list)  # (name, value) of submit buttons

    def submission(self, button: str | None = None, **values: str) -> dict[str, str]:
        """The data a browser sends when the person fills ``values`` and clicks ``button``."""
        data = {**self.fields, **values}
        for name, value in self.buttons:
            if name and name == button:
                data[name] = value
        return data


class _FormParser(HTMLParser):
    def __init__(self):
        super().__init__()
        self.forms: list[Form] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.forms.append(Form(action=attrs.get("action"), method=(attrs.get("method") or "get").lower()))
        elif not self.forms:
            return
        elif tag == "input":
            kind = (attrs.get("type") or "text").lower()
            if kind == "submit":
                self.forms[-1].buttons.append((attrs.get("name") or "", attrs.get("value") or ""))
            elif kind == "checkbox":
                if "checked" in attrs and attrs.get("name"):
                    self.forms[-1].fields[attrs["name"]] = attrs.get("value") or "on"
            elif attrs.get("name"):
                self.forms[-1].fields[attrs["name"]] = attrs.get("value") or ""
        elif tag == "button" and (attrs.get("type") or "submit").lower() == "submit":
            self.forms[-1].buttons.append((attrs.get("name") or "", attrs.get("value") or ""))


def parse_forms(html: str) -> list[Form]:
    parser = _FormParser()
    parser.feed(html)
    return parser.forms
