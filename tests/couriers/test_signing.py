"""Courier signatures against the reference sheet's vectors (§1.2 and §7.3), and tampering."""

import base64
import hashlib
from urllib.parse import parse_qs, quote, unquote, urlencode

import pytest

from couriers import signing

# §1.2: the Kdniao documentation example, whose published output was recomputed.
KDNIAO_DATA = "{'OrderCode':'','ShipperCode':'SF','LogisticCode':'118954907573'}"
KDNIAO_KEY = "56da2cf8-c8a2-44b2-b6fa-476cd7d1ba17"
KDNIAO_SIGN = "OWFhM2I5N2ViM2U2MGRkMjc4YzU2NmVlZWI3ZDk0MmE="

# §7.3: synthetic inputs with locally recomputed outputs.
K100_PARAM = '{"com":"yuantong","num":"YT0000000000000"}'
K100_QUERY_SIGN = "98EDFC6C0349B3BC68A8A896AC95942E"
K100_LABEL_SIGN = "FF104B162B2454B1CEFB4464D1068879"
K100_PUSH_SIGN = "D3CDCD03C3B1EA612209DE145A0834C4"
SF_MSG = '{"trackingType":"1","trackingNumber":["SF0000000000000"],"methodType":"1"}'
SF_TS = "1700000000000"
SF_CHECK_WORD = "testcheckword"
SF_DIGEST = "jVGY0vkdxvbr2lQRwf9fPA=="
ZTO_BODY = '{"billCode":"73100000000000"}'
ZTO_DIGEST = "NNe8WPLBRkImsjRgDScTZw=="

# Signed text with the characters URL encoders disagree on ("*", "~", " ", "+") and with Chinese
# and an emoji (four UTF-8 bytes, a surrogate pair in Java). Every expected value below was
# computed with the JDK 17 classes the couriers' Java documentation names: URLEncoder.encode(s,
# "UTF-8"), MessageDigest "MD5" and Base64, independently of our code.
SF_MASKED_MSG = (
    '{"waybillNo":"SF1234567890123","serviceCode":"1","newDestAddress":{"contact":"张*",'
    '"phone":"138****0000","address":"徐汇区~漕溪北路 88号 A+B座 📦"}}'
)
SF_MASKED_JAVA_ENCODED = (
    "%7B%22waybillNo%22%3A%22SF1234567890123%22%2C%22serviceCode%22%3A%221%22%2C"
    "%22newDestAddress%22%3A%7B%22contact%22%3A%22%E5%BC%A0*%22%2C%22phone%22%3A"
    "%22138****0000%22%2C%22address%22%3A%22%E5%BE%90%E6%B1%87%E5%8C%BA%7E%E6%BC%95"
    "%E6%BA%AA%E5%8C%97%E8%B7%AF+88%E5%8F%B7+A%2BB%E5%BA%A7+%F0%9F%93%A6%22%7D%7D"
    "1700000000000testcheckword"
)
SF_MASKED_JAVA_DIGEST = "3TwWuvSm+Ohsjh0/TWDqIA=="
# The same text under SF's Python demo (quote_plus: "*" escaped, "~" kept).
SF_MASKED_PYTHON_DIGEST = "d1G7p9Q2I7Tspwweq909ng=="
KDNIAO_SPECIAL_DATA = (
    '{"OrderCode":"订单 *~+😀","ShipperCode":"SF","LogisticCode":"SF1234567890123"}'
)
KDNIAO_SPECIAL_SIGN = "YzQzOTdiZTgyYzJlZGIwMTVmNDg2N2E5MDQ5ZTk3MzA="
K100_SPECIAL_PARAM = (
    '{"com":"shunfeng","num":"SF1234567890123","phone":"138****0000",'
    '"from":"上海 浦东~","to":"北京+朝阳 😀"}'
)
K100_SPECIAL_QUERY_SIGN = "BF89C5D440EABCB0488B3D85C8FCA7D4"
K100_SPECIAL_LABEL_SIGN = "909EF72C71671C51F3D54FC12E16820B"
K100_SPECIAL_PUSH_SIGN = "E03EC4A2E6D5320884235716B974D699"


def _flip_last_char(text: str) -> str:
    return text[:-1] + ("A" if text[-1] != "A" else "B")


# Kdniao


def test_kdniao_sign_matches_the_documentation_vector():
    assert signing.kdniao_data_sign(KDNIAO_DATA, KDNIAO_KEY) == KDNIAO_SIGN


def test_kdniao_sign_encodes_the_lowercase_hex_not_the_raw_digest():
    assert base64.b64decode(KDNIAO_SIGN) == b"9aa3b97eb3e60dd278c566eeeb7d942a"


def test_kdniao_sign_is_not_url_encoded_but_its_wire_form_ends_in_percent_3d():
    sign = signing.kdniao_data_sign(KDNIAO_DATA, KDNIAO_KEY)
    assert sign.endswith("mE=")
    assert quote(sign, safe="").endswith("mE%3D")


def test_kdniao_sign_hashes_utf8():
    data = '{"Remark":"快递鸟"}'
    expected_hex = hashlib.md5((data + "key").encode("utf-8")).hexdigest()
    assert signing.kdniao_data_sign(data, "key") == base64.b64encode(expected_hex.encode()).decode()


def test_kdniao_verify_accepts_the_plain_sign():
    assert signing.kdniao_verify(KDNIAO_DATA, KDNIAO_KEY, KDNIAO_SIGN)


def test_kdniao_verify_accepts_the_sign_url_encoded_once_more():
    assert signing.kdniao_verify(KDNIAO_DATA, KDNIAO_KEY, KDNIAO_SIGN[:-1] + "%3D")


def test_kdniao_verify_accepts_a_double_encoded_sign_after_the_form_decoding():
    # The client URL-encodes the sign, then its form encoder encodes it again.
    body = urlencode({"RequestData": KDNIAO_DATA, "DataSign": quote(KDNIAO_SIGN, safe="")})
    form = {name: values[0] for name, values in parse_qs(body).items()}
    assert form["DataSign"].endswith("%3D")
    assert signing.kdniao_verify(form["RequestData"], KDNIAO_KEY, form["DataSign"])


def test_kdniao_sign_is_base64_of_hex_so_it_never_needs_escaping_but_the_padding():
    # Why one extra URL decoding is safe: it cannot change a sign that arrived plain.
    signs = [signing.kdniao_data_sign(f'{{"LogisticCode":"{n}"}}', "key") for n in range(200)]
    assert all(quote(sign, safe="") == sign.replace("=", "%3D") for sign in signs)
    assert all(unquote(sign) == sign for sign in signs)


@pytest.mark.parametrize(
    ("data", "key", "sign"),
    [
        pytest.param(
            KDNIAO_DATA.replace("118954907573", "118954907574"), KDNIAO_KEY, KDNIAO_SIGN, id="data"
        ),
        pytest.param(KDNIAO_DATA, KDNIAO_KEY[:-1] + "8", KDNIAO_SIGN, id="key"),
        pytest.param(KDNIAO_DATA, KDNIAO_KEY, "P" + KDNIAO_SIGN[1:], id="sign"),
        pytest.param(KDNIAO_DATA, KDNIAO_KEY, KDNIAO_SIGN[:-1] + "%253D", id="encoded-three-times"),
        pytest.param(
            KDNIAO_DATA,
            KDNIAO_KEY,
            base64.b64encode(b"9AA3B97EB3E60DD278C566EEEB7D942A").decode(),
            id="uppercase-hex",
        ),
        pytest.param(KDNIAO_DATA, KDNIAO_KEY, "", id="empty"),
        pytest.param(KDNIAO_DATA, KDNIAO_KEY, "签名", id="non-ascii"),
    ],
)
def test_kdniao_verify_rejects_a_changed_input(data, key, sign):
    assert not signing.kdniao_verify(data, key, sign)


# kuaidi100


def test_kuaidi100_query_sign_matches_the_vector():
    assert signing.kuaidi100_query_sign(K100_PARAM, "testkey", "TESTCUSTOMER") == K100_QUERY_SIGN


def test_kuaidi100_query_sign_puts_the_key_before_the_customer():
    assert signing.kuaidi100_query_sign(K100_PARAM, "TESTCUSTOMER", "testkey") != K100_QUERY_SIGN


def test_kuaidi100_label_sign_matches_the_vector():
    sign = signing.kuaidi100_label_sign(K100_PARAM, "1700000000000", "testkey", "testsecret")
    assert sign == K100_LABEL_SIGN


def test_kuaidi100_label_sign_changes_with_the_timestamp():
    sign = signing.kuaidi100_label_sign(K100_PARAM, "1700000000001", "testkey", "testsecret")
    assert sign != K100_LABEL_SIGN


def test_kuaidi100_push_sign_matches_the_vector():
    assert signing.kuaidi100_push_sign(K100_PARAM, "salt123") == K100_PUSH_SIGN


def test_kuaidi100_push_sign_with_an_empty_salt_is_the_md5_of_the_param():
    expected = hashlib.md5(K100_PARAM.encode()).hexdigest().upper()
    assert signing.kuaidi100_push_sign(K100_PARAM, "") == expected


@pytest.mark.parametrize("sign", [K100_PUSH_SIGN, K100_PUSH_SIGN.lower()], ids=["upper", "lower"])
def test_kuaidi100_verify_push_accepts_either_case(sign):
    assert signing.kuaidi100_verify_push(K100_PARAM, "salt123", sign)


@pytest.mark.parametrize(
    ("param", "salt", "sign"),
    [
        pytest.param(K100_PARAM.replace("YT0", "YT1"), "salt123", K100_PUSH_SIGN, id="param"),
        pytest.param(K100_PARAM, "salt124", K100_PUSH_SIGN, id="salt"),
        pytest.param(K100_PARAM, "salt123", _flip_last_char(K100_PUSH_SIGN), id="sign"),
        pytest.param(K100_PARAM, "salt123", K100_QUERY_SIGN, id="other-sign"),
        pytest.param(K100_PARAM, "salt123", "", id="empty"),
        pytest.param(K100_PARAM, "salt123", "签名", id="non-ascii"),
    ],
)
def test_kuaidi100_verify_push_rejects_a_changed_input(param, salt, sign):
    assert not signing.kuaidi100_verify_push(param, salt, sign)


# SF


def test_sf_msg_digest_matches_the_vector():
    assert signing.sf_msg_digest(SF_MSG, SF_TS, SF_CHECK_WORD) == SF_DIGEST


def test_sf_msg_digest_url_encodes_before_hashing():
    # The third-party variant without quote_plus gives another digest for JSON input.
    unquoted = hashlib.md5((SF_MSG + SF_TS + SF_CHECK_WORD).encode()).digest()
    assert base64.b64encode(unquoted).decode() != SF_DIGEST


def test_sf_msg_digest_url_encodes_utf8():
    expected = base64.b64encode(hashlib.md5(b"%E9%A1%BA%E4%B8%B0+1").digest()).decode()
    assert signing.sf_msg_digest("顺丰 ", "1", "") == expected


def test_sf_verify_accepts_the_vector():
    assert signing.sf_verify(SF_MSG, SF_TS, SF_CHECK_WORD, SF_DIGEST)


@pytest.mark.parametrize(
    ("text", "encoded"),
    [
        ("138****0000", "138****0000"),
        ("~", "%7E"),
        ("a b+c", "a+b%2Bc"),
        (".-_*", ".-_*"),
        (
            "收件人：王小明 😀",
            "%E6%94%B6%E4%BB%B6%E4%BA%BA%EF%BC%9A%E7%8E%8B%E5%B0%8F%E6%98%8E+%F0%9F%98%80",
        ),
        (SF_MASKED_MSG + SF_TS + SF_CHECK_WORD, SF_MASKED_JAVA_ENCODED),
    ],
)
def test_java_url_encode_writes_what_javas_url_encoder_writes(text, encoded):
    assert signing.java_url_encode(text) == encoded


@pytest.mark.parametrize(
    ("msg", "java_digest", "python_digest", "python_digest_rule"),
    [
        pytest.param(
            "138****0000",
            "J8EeSaza+deh0LIpDh4hIA==",
            "OK5d2N2gS6AA/SkjMYMX4A==",
            "python-demo",
            id="star",
        ),
        pytest.param(
            "~", "i07yNhI/l2X27d5sQdRQxg==", "k94g5CT5mKn9OD/j4PD33Q==", "python-demo", id="tilde"
        ),
        # Without "*" or "~" the two rules agree: the demo's digest is the Java one.
        pytest.param(
            "a b+c", "6isjSfp1rEe8jTKlHy3Mzw==", "6isjSfp1rEe8jTKlHy3Mzw==", "java", id="space-plus"
        ),
        pytest.param(
            "收件人：王小明 😀",
            "ol3EgaIFmmqmJ7SjLAKTBg==",
            "ol3EgaIFmmqmJ7SjLAKTBg==",
            "java",
            id="chinese-emoji",
        ),
        pytest.param(
            SF_MASKED_MSG,
            SF_MASKED_JAVA_DIGEST,
            SF_MASKED_PYTHON_DIGEST,
            "python-demo",
            id="masked-intercept",
        ),
    ],
)
def test_sf_signs_by_the_documented_java_rule_and_knows_the_python_demos(
    msg, java_digest, python_digest, python_digest_rule
):
    assert signing.sf_msg_digest(msg, SF_TS, SF_CHECK_WORD) == java_digest
    assert signing.sf_verify(msg, SF_TS, SF_CHECK_WORD, java_digest)
    demo = signing.sf_msg_digest(msg, SF_TS, SF_CHECK_WORD, rule=signing.SF_PYTHON_DEMO_RULE)
    assert demo == python_digest
    assert signing.sf_digest_rule(msg, SF_TS, SF_CHECK_WORD, java_digest) == "java"
    assert signing.sf_digest_rule(msg, SF_TS, SF_CHECK_WORD, python_digest) == python_digest_rule


def test_sf_verify_takes_only_the_documented_rule_where_the_two_differ():
    assert not signing.sf_verify(SF_MASKED_MSG, SF_TS, SF_CHECK_WORD, SF_MASKED_PYTHON_DIGEST)


def test_sf_digest_rule_is_none_for_a_digest_neither_rule_made():
    assert signing.sf_digest_rule(SF_MASKED_MSG, SF_TS, "wrong", SF_MASKED_JAVA_DIGEST) is None
    assert signing.sf_digest_rule(SF_MASKED_MSG, SF_TS, SF_CHECK_WORD, "") is None


def test_kdniao_signs_special_characters_as_they_are():
    assert signing.kdniao_data_sign(KDNIAO_SPECIAL_DATA, KDNIAO_KEY) == KDNIAO_SPECIAL_SIGN
    assert signing.kdniao_verify(KDNIAO_SPECIAL_DATA, KDNIAO_KEY, KDNIAO_SPECIAL_SIGN)


def test_kuaidi100_signs_special_characters_as_they_are():
    param = K100_SPECIAL_PARAM
    assert signing.kuaidi100_query_sign(param, "testkey", "TESTCUSTOMER") == K100_SPECIAL_QUERY_SIGN
    label = signing.kuaidi100_label_sign(param, SF_TS, "testkey", "testsecret")
    assert label == K100_SPECIAL_LABEL_SIGN
    assert signing.kuaidi100_push_sign(param, "salt123") == K100_SPECIAL_PUSH_SIGN
    assert signing.kuaidi100_verify_push(param, "salt123", K100_SPECIAL_PUSH_SIGN.lower())


@pytest.mark.parametrize(
    ("msg", "ts", "check_word", "digest"),
    [
        pytest.param(SF_MSG.replace('"1"}', '"2"}'), SF_TS, SF_CHECK_WORD, SF_DIGEST, id="msg"),
        pytest.param(SF_MSG, "1700000000", SF_CHECK_WORD, SF_DIGEST, id="seconds-timestamp"),
        pytest.param(SF_MSG, SF_TS, "testcheckworD", SF_DIGEST, id="check-word"),
        pytest.param(SF_MSG, SF_TS, SF_CHECK_WORD, "k" + SF_DIGEST[1:], id="digest"),
        pytest.param(SF_MSG, SF_TS, SF_CHECK_WORD, "", id="empty"),
    ],
)
def test_sf_verify_rejects_a_changed_input(msg, ts, check_word, digest):
    assert not signing.sf_verify(msg, ts, check_word, digest)


# ZTO


def test_zto_data_digest_matches_the_vector():
    assert signing.zto_data_digest(ZTO_BODY, "testsecret") == ZTO_DIGEST


def test_zto_verify_accepts_the_vector():
    assert signing.zto_verify(ZTO_BODY, "testsecret", ZTO_DIGEST)


@pytest.mark.parametrize(
    ("body", "secret", "digest"),
    [
        pytest.param(ZTO_BODY.replace("731", "732"), "testsecret", ZTO_DIGEST, id="body"),
        pytest.param(ZTO_BODY, "testsecreT", ZTO_DIGEST, id="secret"),
        pytest.param(ZTO_BODY, "testsecret", "M" + ZTO_DIGEST[1:], id="digest"),
    ],
)
def test_zto_verify_rejects_a_changed_input(body, secret, digest):
    assert not signing.zto_verify(body, secret, digest)
