"""Form bodies read as Django reads them, whatever the escapes."""

from urllib.parse import quote_plus, urlencode

from django.http import QueryDict
from hypothesis import example, given, settings
from hypothesis import strategies as st

from couriers.urlencoded import parse_form

# Bodies as gateways and stray clients write them: escapes, bare "%", plus signs, backslashes,
# raw UTF-8, separators in odd places.
PIECES = st.sampled_from(
    ["%", "%2", "%E6%B1%89", "%e6%b1", "%zz", "%5C", "\\", "\\x41", "+", "=", "&", "&&", "汉", "a"]
)
RAW_BODIES = st.lists(st.one_of(PIECES, st.text(max_size=4)), max_size=30).map("".join)


@settings(max_examples=300, deadline=None)
@given(RAW_BODIES)
@example("param=%7B%22nu%22%3A%22YT1%22%7D&sign=AB12")
@example("a=%E6%B1&a=2")  # a cut UTF-8 sequence; a repeated name keeps its last value
@example("%=%%&x")
def test_any_body_reads_as_django_reads_it(body):
    assert parse_form(body) == QueryDict(body).dict()


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=20), st.text(max_size=200), max_size=5))
def test_encoded_forms_come_back_as_they_were_sent(fields):
    assert parse_form(urlencode(fields)) == fields
    assert (
        parse_form(urlencode(fields, quote_via=quote_plus, safe="%\\"))
        == QueryDict(urlencode(fields, quote_via=quote_plus, safe="%\\")).dict()
    )
