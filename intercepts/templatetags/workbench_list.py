"""A lean result table for the workbench changelists.

Unfold's ``items_for_result`` recomputes every column header for every row and looks each
cell up through the generic admin machinery, which made the row table most of a list page's
time. Here the per-column work (header, classes, choice labels, how to read the value, whether
and where it links) is done once per page, and each cell is one read and one escape. The markup
is Unfold's, so the table looks and behaves the same.
"""

import datetime
import html

from django import template
from django.contrib.admin.templatetags.admin_list import result_hidden_fields
from django.contrib.admin.templatetags.admin_urls import add_preserved_filters
from django.contrib.admin.templatetags.base import InclusionAdminNode
from django.contrib.admin.utils import quote
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.urls import NoReverseMatch, reverse
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import get_language, gettext
from unfold.templatetags.unfold_list import (
    CHECKBOX_CLASSES,
    LINK_CLASSES,
    ROW_CLASSES,
    result_headers,
)
from unfold.utils import display_for_field, display_for_value

from intercepts.admin_frames import hole_end, hole_start
from intercepts.display import conditional_escape as fast_conditional_escape

register = template.Library()

LINK_CLASSES_STR = " ".join(LINK_CLASSES)
_PK_PLACEHOLDER = "__row_pk__"


class _Column:
    __slots__ = (
        "boolean",
        "choices",
        "data_label",
        "field",
        "getter",
        "label",
        "links",
        "row_class",
        "tag",
    )

    def __init__(self, cl, name, label: str, links: bool, tag: str):
        model_admin = cl.model_admin
        self.label = fast_conditional_escape(label)
        self.links = links
        self.tag = tag
        self.field = None
        self.choices = None
        self.boolean = False
        css_name = name if isinstance(name, str) else getattr(name, "__name__", "value")
        classes = [f"field-{fast_conditional_escape(css_name)}", *ROW_CLASSES]
        if name == "action_checkbox":
            classes = list(CHECKBOX_CLASSES)
        # The same order of lookups as Django's lookup_field: a callable, a model field, an
        # attribute of the admin, then one of the model.
        field = None
        if not callable(name):
            try:
                field = cl.lookup_opts.get_field(name)
            except FieldDoesNotExist:
                field = None
        if callable(name):
            self.getter = name
        elif field is None and hasattr(model_admin, name) and name != "__str__":
            self.getter = getattr(model_admin, name)
        elif field is None:
            attr = getattr(cl.model, name)
            if callable(attr):
                self.getter = lambda obj, _name=name: getattr(obj, _name)()
            else:
                self.getter = lambda obj, _name=name: getattr(obj, _name)
            self.boolean = getattr(attr, "boolean", False)
        else:
            self.field = field
            self.getter = None
            if field.flatchoices:
                # Choice labels are lazy: translate each once per page, not once per cell.
                self.choices = {k: fast_conditional_escape(v) for k, v in field.flatchoices}
            if isinstance(field, models.DateField | models.TimeField | models.ForeignKey):
                classes.append("nowrap")
        if self.getter is not None and not self.boolean:
            self.boolean = getattr(self.getter, "boolean", False)
        self.row_class = mark_safe(f' class="{" ".join(classes)}"')
        self.data_label = f' data-label="{self.label}"'

    def render_value(self, obj, empty: str) -> str:
        """The cell's content, escaped; ``empty`` is the escaped empty-value display."""
        field = self.field
        if field is not None:
            if field.is_relation:
                value = getattr(obj, field.name)
                return empty if value is None else fast_conditional_escape(value)
            value = getattr(obj, field.attname)
            if self.choices is not None:
                return self.choices.get(value, empty)
            return fast_conditional_escape(display_for_field(value, field, empty))
        value = self.getter(obj)
        if type(value) is SafeString:  # what display methods return: the common case
            return value
        if isinstance(value, datetime.date | datetime.time):
            return fast_conditional_escape(display_for_value(value, empty))
        return fast_conditional_escape(display_for_value(value, empty, self.boolean))


def _columns(cl, headers) -> list[_Column]:
    columns = []
    first = True
    for index, name in enumerate(cl.list_display):
        if cl.list_display_links is None:
            links = False
        elif first and not cl.list_display_links and name != "action_checkbox":
            links = True
        else:
            links = name in (cl.list_display_links or ())
        # Unfold marks the first linked cell as the row's header cell.
        tag = "th" if links and first else "td"
        if links:
            first = False
        label = gettext("Select record") if name == "action_checkbox" else headers[index]["text"]
        columns.append(_Column(cl, name, label, links, tag))
    return columns


def _link_template(cl) -> str | None:
    """The change URL with the list's filters preserved, with a placeholder for the pk."""
    opts = cl.opts
    try:
        url = reverse(
            f"admin:{opts.app_label}_{opts.model_name}_change",
            args=(_PK_PLACEHOLDER,),
            current_app=cl.model_admin.admin_site.name,
        )
    except NoReverseMatch:
        return None
    return add_preserved_filters({"preserved_filters": cl.preserved_filters, "opts": opts}, url)


_ROW_SHADES = ("", "bg-base-50 dark:bg-white/[.02]")


def _row(obj, columns, empty, link, pk_attname, shade: str) -> str:
    cells = []
    for column in columns:
        shown = column.render_value(obj, empty)
        if column.links and link is not None:
            pk = html.escape(quote(str(getattr(obj, pk_attname))))
            shown = f'<a href="{link[0]}{pk}{link[1]}" class="{LINK_CLASSES_STR}">{shown}</a>'
        tag = column.tag
        cells.append(f"<{tag}{column.row_class}{column.data_label}>{shown}</{tag}>")
    return (
        f'<tbody class="block relative lg:table-row-group {shade}">'
        '<tr class="data-row block border border-base-200 mb-3 relative rounded-default '
        'lg:table-row lg:border-none lg:mb-0 lg:rounded-none dark:border-base-800">'
        f"{''.join(cells)}</tr></tbody>\n"
    )


# Columns depend on the admin, its list_display and the language only, when the list cannot be
# sorted (the headers then never change): built once, not on every page.
_column_cache: dict[tuple, list[_Column]] = {}


def _page_columns(cl) -> list[_Column]:
    if cl.sortable_by != ():
        return _columns(cl, list(result_headers(cl)))
    key = (
        id(cl.model_admin),
        get_language(),
        tuple(cl.list_display),
        tuple(cl.list_display_links or ()) if cl.list_display_links is not None else None,
    )
    columns = _column_cache.get(key)
    if columns is None:
        columns = _column_cache[key] = _columns(cl, list(result_headers(cl)))
    return columns


def rows_html(cl) -> str:
    """The table's rows, as the list page shows them (a frame's "rows" hole)."""
    columns = _page_columns(cl)
    # Marked safe: cells pass it through fast_conditional_escape again when a value is empty.
    empty = mark_safe(fast_conditional_escape(cl.model_admin.get_empty_value_display()))
    link_template = _link_template(cl)
    # The link with the filters preserved, escaped once, around each row's escaped pk.
    link = (
        None
        if link_template is None
        else tuple(html.escape(part) for part in link_template.split(_PK_PLACEHOLDER, 1))
    )
    pk_attname = cl.lookup_opts.pk.attname
    return mark_safe(
        "".join(
            _row(obj, columns, empty, link, pk_attname, _ROW_SHADES[index % 2])
            for index, obj in enumerate(cl.result_list)
        )
    )


def workbench_result_list(context, cl):
    headers = list(result_headers(cl))
    rows = rows_html(cl) if cl.result_list else ""
    if rows and context.get("workbench_frame_recording"):
        rows = mark_safe(f"{hole_start('rows')}{rows}{hole_end('rows')}")
    return {
        "cl": cl,
        "result_hidden_fields": list(result_hidden_fields(cl)),
        "result_headers": headers,
        "num_sorted_fields": sum(1 for h in headers if h["sortable"] and h["sorted"]),
        "rows": rows,
    }


@register.tag(name="workbench_result_list")
def workbench_result_list_tag(parser, token):
    return InclusionAdminNode(
        "workbench_result_list",
        parser,
        token,
        func=workbench_result_list,
        template_name="workbench_results.html",
        takes_context=True,
    )
