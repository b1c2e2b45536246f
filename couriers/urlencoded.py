"""Reading ``application/x-www-form-urlencoded`` bodies, as every courier protocol posts them.

A push's form holds a JSON document whose every quote, brace and Chinese character is escaped:
a tracking push of 1 KB has hundreds of ``%XX``. ``urllib.parse`` (and so Django's
``QueryDict``) decodes them one by one in Python, which costs more than verifying the push;
here a value's escapes are decoded in one C call, and a value that is not well formed goes the
careful way. The result is what ``QueryDict(body).dict()`` gives.
"""

import codecs
from urllib.parse import unquote


def parse_form(body: str) -> dict[str, str]:
    """The fields of a form body; a name given twice keeps its last value."""
    fields = {}
    for pair in body.split("&"):
        if pair:
            name, _, value = pair.partition("=")
            fields[unquote_plus(name)] = unquote_plus(value)
    return fields


def unquote_plus(text: str) -> str:
    """``urllib.parse.unquote_plus``, UTF-8 with replacement characters for bad bytes."""
    text = text.replace("+", " ")
    if "%" not in text:
        return text
    # "%XX" becomes the bytes escape "\xXX" (literal backslashes doubled first), which
    # escape_decode turns into bytes in C.
    escaped = text.replace("\\", "\\\\").replace("%", "\\x").encode()
    try:
        raw = codecs.escape_decode(escaped)[0]
    except ValueError:  # a "%" that starts no escape: kept as it is, as urllib keeps it
        return unquote(text, errors="replace")
    return raw.decode("utf-8", errors="replace")
