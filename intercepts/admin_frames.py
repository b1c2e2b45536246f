"""Workbench lists served from a cached page frame.

Most of a list page is frame: the head, the sidebar, the header with the user menu, the search
box and filters, the table's header and the actions bar. For one user, with the same roles,
language and list filters, that frame is the same on every request; what changes is the rows,
the pagination and the CSRF token. So the first request renders the whole page through the
admin's templates as usual, with those three parts marked; the page without them is kept as a
frame in the process, and later requests with the same key render only the rows and the
pagination and pour them into the frame. Rendering the frame is most of a page's time.

The key holds everything the frame is made from, so nothing is ever invalidated: another role,
another language, another filter or another row count is another key. What the key does not
cover is not cached: pages with messages, POSTs, editable lists, date hierarchies and lists
with templates of their own.
"""

import hashlib
import re
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import lru_cache

from django.conf import settings
from django.contrib.admin import SimpleListFilter, filters
from django.dispatch import receiver
from django.utils import timezone
from django.utils.autoreload import file_changed
from django.utils.translation import get_language

from intercepts.tenancy import access_for

_TOKEN = secrets.token_hex(16)
# Random per process, so no text on a page (always escaped) can look like a hole.
CSRF_SENTINEL = f"wbcsrf{_TOKEN}"
HOLES = ("rows", "pagination")
# Paginations kept per frame, and what each may take (a pagination is under a kilobyte): the
# allowance is counted in the frame's size from the start, so the cache keeps to its bound.
MAX_PAGINATIONS = 16
PAGINATION_BYTES = 2048


def hole_start(name: str) -> str:
    return f"<!--wb:{name}:{_TOKEN}-->"


def hole_end(name: str) -> str:
    return f"<!--wb:/{name}:{_TOKEN}-->"


_HOLE_RE = re.compile(
    "({csrf})|<!--wb:({names}):{token}-->(.*?)<!--wb:/\\2:{token}-->".format(
        csrf=re.escape(CSRF_SENTINEL), names="|".join(HOLES), token=_TOKEN
    ),
    re.S,
)


@dataclass(frozen=True, slots=True)
class Frame:
    """A page cut at its holes: ``statics[0] holes[0] statics[1] ... statics[-1]``.

    ``paginations`` keeps the pagination rendered for this frame's list by (page, has next
    page): with the query in the key, that is all it is made from.
    """

    statics: tuple[bytes, ...]
    holes: tuple[str, ...]
    paginations: dict = field(default_factory=dict, compare=False)

    def pagination(self, page: tuple, render) -> str:
        html = self.paginations.get(page)
        if html is None:
            html = render()
            if len(self.paginations) < MAX_PAGINATIONS and len(html) <= PAGINATION_BYTES:
                self.paginations[page] = html
        return html

    @property
    def size(self) -> int:
        return sum(len(part) for part in self.statics) + MAX_PAGINATIONS * PAGINATION_BYTES

    def fill(self, values: dict[str, str]) -> bytes:
        parts = [self.statics[0]]
        for name, static in zip(self.holes, self.statics[1:], strict=True):
            parts.append(values[name].encode())
            parts.append(static)
        return b"".join(parts)


def cut(marked: str, csrf_token: str) -> tuple[Frame, str]:
    """Split a page rendered with marked holes into its frame and the page to serve."""
    statics: list[bytes] = []
    holes: list[str] = []
    served: list[str] = []
    position = 0
    for match in _HOLE_RE.finditer(marked):
        static = marked[position : match.start()]
        statics.append(static.encode())
        served.append(static)
        if match.group(1):
            holes.append("csrf")
            served.append(csrf_token)
        else:
            holes.append(match.group(2))
            served.append(match.group(3))
        position = match.end()
    statics.append(marked[position:].encode())
    served.append(marked[position:])
    return Frame(tuple(statics), tuple(holes)), "".join(served)


class FrameCache:
    """A process-local LRU of frames, bounded by their total size in bytes."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._frames: OrderedDict[bytes, Frame] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: bytes) -> Frame | None:
        with self._lock:
            frame = self._frames.get(key)
            if frame is None:
                self.misses += 1
                return None
            self._frames.move_to_end(key)
            self.hits += 1
            return frame

    def put(self, key: bytes, frame: Frame) -> None:
        size = frame.size
        if size > self.max_bytes:
            return
        with self._lock:
            previous = self._frames.pop(key, None)
            if previous is not None:
                self._bytes -= previous.size
            self._frames[key] = frame
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, evicted = self._frames.popitem(last=False)
                self._bytes -= evicted.size

    def clear(self) -> None:
        with self._lock:
            self._frames.clear()
            self._bytes = 0
            self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._frames)

    @property
    def bytes(self) -> int:
        return self._bytes


frames = FrameCache(max_bytes=int(settings.WORKBENCH_FRAME_CACHE_MB * 1024 * 1024))


@receiver(file_changed, dispatch_uid="workbench_frames_file_changed")
def _drop_frames_when_files_change(sender, file_path, **kwargs) -> None:
    # The development server reloads templates (and translations) in place instead of
    # restarting: frames rendered from the old ones go with them.
    if file_path.suffix != ".py":
        frames.clear()


# Unfold settings that make the page's frame depend on more than the key holds (a badge with a
# count, an environment label, callbacks run for every request): with any of them set, every
# list page is rendered whole. The sidebar's permission callbacks must depend on the user's
# roles only, as intercepts.navigation's do.
_PER_REQUEST_UNFOLD_SETTINGS = ("ENVIRONMENT", "SITE_DROPDOWN", "GLOBAL_CALLBACK", "TABS")


def unfold_settings_vary_per_request() -> list[str]:
    """The Unfold settings in use that a frame cannot be kept for (see above)."""
    config = getattr(settings, "UNFOLD", {}) or {}
    found = [name for name in _PER_REQUEST_UNFOLD_SETTINGS if config.get(name)]
    sidebar = config.get("SIDEBAR") or {}
    if sidebar.get("show_search"):
        found.append("SIDEBAR.show_search")  # its template reads the browser's user agent
    for group in sidebar.get("navigation") or ():
        for item in group.get("items") or ():
            if item.get("badge"):
                found.append(f"SIDEBAR.navigation badge of {item.get('link')}")
    return found


def enabled() -> bool:
    return frames.max_bytes > 0 and not _unfold_blocks_frames()


@lru_cache(maxsize=1)
def _unfold_blocks_frames() -> bool:
    return bool(unfold_settings_vary_per_request())


# Filters whose output the key covers: the selected value is in the query, the choices are the
# filter's ``lookup_choices`` or fixed per language. Any other kind renders the page whole.
_KNOWN_FILTERS = (
    SimpleListFilter,
    filters.ChoicesFieldListFilter,
    filters.BooleanFieldListFilter,
    filters.RelatedFieldListFilter,
    filters.AllValuesFieldListFilter,
    filters.DateFieldListFilter,
    filters.EmptyFieldListFilter,
)


def filters_known(cl) -> bool:
    """Whether every filter of the list is one the key covers (Unfold's own filters render
    inputs of their own, so they are not)."""
    return all(
        isinstance(spec, _KNOWN_FILTERS)
        and not any(kind.__module__.startswith("unfold.") for kind in type(spec).__mro__)
        for spec in cl.filter_specs
    )


def servable(request) -> bool:
    """Whether this request's page can come from a frame: a plain read with no messages."""
    if request.method not in ("GET", "HEAD"):
        return False
    storage = getattr(request, "_messages", None)
    # len() loads the messages without marking them shown; a page that shows some is
    # rendered whole (it is rare, and the messages are not part of any frame).
    return storage is None or len(storage) == 0


def _filter_part(spec) -> tuple:
    # Which choices a filter offers: lookups read from the database, and choices that are
    # fixed per language (the language is in the key). What is selected is in the query.
    choices = getattr(spec, "lookup_choices", None)
    if choices is None:
        return (type(spec).__qualname__,)
    return (
        type(spec).__qualname__,
        tuple(
            (str(choice[0]), str(choice[1])) if isinstance(choice, list | tuple) else str(choice)
            for choice in choices
        ),
    )


def frame_key(request, cl, page_var: str | None) -> bytes:
    """Everything a list page's frame is made from, hashed; ``page_var`` names the page number
    parameter when the frame does not depend on it."""
    user = request.user
    access = access_for(user)
    now = timezone.localtime()
    parts = (
        cl.model_admin.__class__.__qualname__,
        cl.opts.label,
        request.path,
        request.META.get("SCRIPT_NAME", ""),
        get_language(),
        # The page carries the UTC offset, and date filters offer ranges from today.
        now.date().isoformat(),
        now.utcoffset(),
        user.pk,
        user.get_username(),
        user.first_name,
        user.last_name,
        user.email,
        user.is_active,
        user.is_staff,
        user.is_superuser,
        user.has_usable_password(),
        access.is_superuser,
        tuple(sorted(access.platform_groups)),
        tuple(sorted(access.shop_roles.items())),
        tuple(sorted((k, tuple(v)) for k, v in request.GET.lists() if k != page_var)),
        len(cl.result_list),
        cl.multi_page,
        tuple(_filter_part(spec) for spec in cl.filter_specs),
    )
    return hashlib.blake2b(repr(parts).encode(), digest_size=20).digest()
