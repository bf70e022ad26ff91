"""Reading the server's real HTML forms, as a browser would, to submit them in tests."""

from dataclasses import dataclass, field
from html.parser import HTMLParser


@dataclass
class Form:
    action: str | None
    method: str
    fields: list[tuple[str, str]] = field(default_factory=list)  # successful controls, in page order
    checkboxes: list[tuple[str, str]] = field(default_factory=list)  # (name, value) of ticked boxes
    unticked: list[tuple[str, str]] = field(default_factory=list)  # (name, value) of boxes left unticked
    buttons: list[tuple[str, str]] = field(default_factory=list)  # (name, value) of submit buttons

    @property
    def names(self) -> set[str]:
        return {name for name, _ in self.fields + self.checkboxes}

    def submission(
        self, button: str | None = None, untick: tuple[str, ...] = (), tick: tuple[str, ...] = (), **values: str
    ):
        """What a browser sends when the person fills ``values``, unticks the boxes whose values are
        in ``untick``, ticks those in ``tick`` and clicks the submit button named ``button``."""
        data = [(name, values.pop(name, value)) for name, value in self.fields]
        data += list(values.items())
        data += [(name, value) for name, value in self.checkboxes if value not in untick]
        data += [(name, value) for name, value in self.unticked if value in tick]
        data += [(name, value) for name, value in self.buttons if name and name == button]
        return data


class _FormParser(HTMLParser):
    def __init__(self):
        super().__init__()
        self.forms: list[Form] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.forms.append(Form(action=attrs.get("action"), method=(attrs.get("method") or "get").lower()))
            return
        if not self.forms or "disabled" in attrs:
            return
        form, name, kind = self.forms[-1], attrs.get("name"), (attrs.get("type") or "text").lower()
        if tag == "button" and kind == "submit" or tag == "input" and kind == "submit":
            form.buttons.append((name or "", attrs.get("value") or ""))
        elif tag == "input" and kind == "checkbox":
            if name:
                ticked = form.checkboxes if "checked" in attrs else form.unticked
                ticked.append((name, attrs.get("value") or "on"))
        elif tag == "input" and name:
            form.fields.append((name, attrs.get("value") or ""))


def parse_forms(html: str) -> list[Form]:
    parser = _FormParser()
    parser.feed(html)
    return parser.forms
