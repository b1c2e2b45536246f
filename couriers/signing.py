"""Request and push signatures of the courier protocols (reference sheet §1.2, §2.1–2.4, §3.1–3.2).

Pure functions over text: every input is a ``str`` hashed as UTF-8, every output is a ``str``.
Kdniao and Kuaidi100 hash the text as it is; SF URL-encodes it first, and SF publishes two rules
that disagree on ``*`` and ``~`` (see ``sf_msg_digest``).
Signatures are computed over the exact text that travels on the wire (the JSON string, not a
re-serialised dict), so callers must sign the very string they send or received. Verification
compares in constant time so a caller cannot learn a valid signature byte by byte.
"""

import base64
import hashlib
import hmac
from urllib.parse import quote_plus, unquote


def _md5_hex(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def _md5_base64(text: str) -> str:
    # base64 of the 16 raw digest bytes, as SF and ZTO use (Kdniao differs: it encodes the hex).
    return base64.b64encode(hashlib.md5(text.encode()).digest()).decode("ascii")


def _same(expected: str, given: str) -> bool:
    # Bytes, because compare_digest refuses non-ASCII str and a forged sign may contain any text.
    return hmac.compare_digest(expected.encode(), given.encode())


def kdniao_data_sign(request_data: str, app_key: str) -> str:
    """DataSign = base64(md5_hex_lowercase(RequestData + AppKey)), before form URL-encoding."""
    return base64.b64encode(_md5_hex(request_data + app_key).encode("ascii")).decode("ascii")


def kdniao_verify(request_data: str, app_key: str, data_sign: str) -> bool:
    """True if data_sign == kdniao_data_sign(...), given plain or URL-encoded once more."""
    expected = kdniao_data_sign(request_data, app_key)
    # Some clients URL-encode the sign and then form-encode it again, so after the form decoding
    # it still reads "...%3D". Base64 of hex digits never contains "+", "/" or "%", so one more
    # decoding cannot alter a sign that arrived plain.
    candidates = (data_sign, unquote(data_sign))
    # Check both so the timing does not depend on which form matched.
    matches = [_same(expected, candidate) for candidate in candidates]
    return any(matches)


def kuaidi100_query_sign(param: str, key: str, customer: str) -> str:
    """sign = UPPER(md5_hex(param + key + customer)) for poll/query.do."""
    return _md5_hex(param + key + customer).upper()


def kuaidi100_label_sign(param: str, t: str, key: str, secret: str) -> str:
    """sign = UPPER(md5_hex(param + t + key + secret)) for label/order (interceptOrder)."""
    return _md5_hex(param + t + key + secret).upper()


def kuaidi100_verify_query(param: str, key: str, customer: str, sign: str) -> bool:
    """True if sign == kuaidi100_query_sign(...), ignoring the case of the hex digits."""
    return _same(kuaidi100_query_sign(param, key, customer), sign.upper())


def kuaidi100_verify_label(param: str, t: str, key: str, secret: str, sign: str) -> bool:
    """True if sign == kuaidi100_label_sign(...), ignoring the case of the hex digits."""
    return _same(kuaidi100_label_sign(param, t, key, secret), sign.upper())


def kuaidi100_push_sign(param: str, salt: str) -> str:
    """sign = UPPER(md5_hex(param + salt)) for subscription pushes and callbacks."""
    return _md5_hex(param + salt).upper()


def kuaidi100_verify_push(param: str, salt: str, sign: str) -> bool:
    """True if sign == UPPER(md5_hex(param + salt)), ignoring the case of the hex digits."""
    return _same(kuaidi100_push_sign(param, salt), sign.upper())


def java_url_encode(text: str) -> str:
    """``java.net.URLEncoder.encode(text, "UTF-8")``: keeps ``A-Z a-z 0-9 . - * _``, writes a
    space as ``+`` and every other byte of the UTF-8 text as ``%XX`` (upper-case hex)."""
    # quote_plus keeps "~" (RFC 3986 unreserved) and escapes "*": Java does the opposite.
    return quote_plus(text, safe="*").replace("~", "%7E")


# The two rules SF publishes for the text under the digest (reference sheet §3.1).
SF_JAVA_RULE = "java"  # SF's developer documentation: URLEncoder.encode(..., "UTF-8")
SF_PYTHON_DEMO_RULE = "python-demo"  # SF's Python demo: urllib.parse.quote_plus
_SF_ENCODERS = {SF_JAVA_RULE: java_url_encode, SF_PYTHON_DEMO_RULE: quote_plus}


def sf_msg_digest(
    msg_data: str, timestamp: str, check_word: str, *, rule: str = SF_JAVA_RULE
) -> str:
    """msgDigest = base64(md5_raw(urlencode(msgData + timestamp + checkWord))).

    The documented rule encodes as Java's URLEncoder; SF's Python demo uses ``quote_plus``. The
    two differ only on ``*`` and ``~`` (masked phones ``138****0000`` are common), so we sign the
    documented way: SF's gateway is Java.
    """
    return _md5_base64(_SF_ENCODERS[rule](msg_data + timestamp + check_word))


def sf_digest_rule(msg_data: str, timestamp: str, check_word: str, msg_digest: str) -> str | None:
    """Which of SF's two rules made ``msg_digest`` (the documented one first), None if neither.

    For a receiver that must take both (the sandbox, and our push endpoint until a real account
    shows which rule SF's own pushes use)."""
    # Compare against both so the timing does not tell which rule matched.
    matches = [
        (rule, _same(sf_msg_digest(msg_data, timestamp, check_word, rule=rule), msg_digest))
        for rule in _SF_ENCODERS
    ]
    return next((rule for rule, same in matches if same), None)


def sf_verify(msg_data: str, timestamp: str, check_word: str, msg_digest: str) -> bool:
    """True if msg_digest was made by SF's documented (Java URLEncoder) rule."""
    return _same(sf_msg_digest(msg_data, timestamp, check_word), msg_digest)


def zto_data_digest(body: str, app_secret: str) -> str:
    """x-datadigest = base64(md5_raw(body + appSecret))."""
    return _md5_base64(body + app_secret)


def zto_verify(body: str, app_secret: str, data_digest: str) -> bool:
    """True if data_digest == base64(md5_raw(body + appSecret))."""
    return _same(zto_data_digest(body, app_secret), data_digest)
