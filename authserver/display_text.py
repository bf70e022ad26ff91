"""Text a client supplies that people are shown (its name above all), held to one rule: it shows
what it says.

A name holding a right-to-left override (U+202E) reads backwards from there on ("Safe App‮gnp.exe"
is shown as "Safe Appexe.png"); zero-width and other invisible characters make two different
names look the same; control characters break the page around them. Such text is refused where
a client supplies it (registration, RFC 7592 updates, metadata documents, the admin), and pages
show client-supplied text isolated (``<bdi>``) in case an older row holds some.
"""

import unicodedata

# Unicode general categories refused: Cc (controls), Cf (format: the bidi embeddings, overrides and
# isolates U+202A-U+202E and U+2066-U+2069, the marks U+200E, U+200F and U+061C, zero-width
# characters, joiners), Zl and Zp (line and paragraph separators), Cs (lone surrogates, which no
# database can store) and Co (private use: shown as whatever glyph a font puts there).
REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co"})
# Letters and marks that render as nothing (Unicode's Default_Ignorable_Code_Point outside Cf).
INVISIBLE = frozenset("\u034f\u115f\u1160\u17b4\u17b5\u3164\uffa0")


def _refused(char: str) -> bool:
    return char in INVISIBLE or unicodedata.category(char) in REFUSED_CATEGORIES


def display_text_problem(value: str) -> str | None:
    """Why ``value`` cannot be shown to people as it is, or None when it can."""
    for char in value:
        if _refused(char):
            return f"must not contain control, formatting or invisible characters (found U+{ord(char):04X})"
    return None


def display_text_clean(value: str) -> str:
    """``value`` without such characters: for places that cannot isolate text (a page's ``<title>``)."""
    return "".join(char for char in value if not _refused(char))
