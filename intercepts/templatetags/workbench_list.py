"""A lean result table for the workbench changelists.

Unfold's ``items_for_result`` recomputes every column header for every row and looks each
cell up through the generic admin machinery, which made the row table most of a list page's
time. Here the per-column work (header, classes, choice labels, how to read the value, whether
and where it links) is done once per page, and each cell is one read and one escape. The markup
is Unfold's, so the table looks and behaves the same.
"""

import datetime

from django import template
from django.contrib.admin.templatetags.admin_list import result_hidden_fields
from django.contrib.admin.templatetags.admin_urls import add_preserved_filters
from django.contrib.admin.templatetags.base import InclusionAdminNode
from django.contrib.admin.utils import quote
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.urls import NoReverseMatch, reverse
from django.utils.html import conditional_escape
from django.utils.safestring import mark_safe
from django.utils.translation import gettext
from unfold.templatetags.unfold_list import (
    CHECKBOX_CLASSES,
    LINK_CLASSES,
    ROW_CLASSES,
    UnfoldResultList,
    result_headers,
)
from unfold.utils import display_for_field, display_for_value

register = template.Library()

LINK_CLASSES_STR = " ".join(LINK_CLASSES)
_PK_PLACEHOLDER = "__row_pk__"


class _Column:
    __slots__ = ("boolean", "choices", "field", "getter", "label", "links", "row_class", "tag")

    def __init__(self, cl, name, label: str, links: bool, tag: str):
        model_admin = cl.model_admin
        self.label = conditional_escape(label)
        self.links = links
        self.tag = tag
        self.field = None
        self.choices = None
        self.boolean = False
        css_name = name if isinstance(name, str) else getattr(name, "__name__", "value")
        classes = [f"field-{conditional_escape(css_name)}", *ROW_CLASSES]
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
                self.choices = {k: str(v) for k, v in field.flatchoices}
            if isinstance(field, models.DateField | models.TimeField | models.ForeignKey):
                classes.append("nowrap")
        if self.getter is not None and not self.boolean:
            self.boolean = getattr(self.getter, "boolean", False)
        self.row_class = mark_safe(f' class="{" ".join(classes)}"')

    def render_value(self, obj, empty):
        field = self.field
        if field is not None:
            if field.is_relation:
                value = getattr(obj, field.name)
                return empty if value is None else conditional_escape(value)
            value = getattr(obj, field.attname)
            if self.choices is not None:
                return conditional_escape(self.choices.get(value, empty))
            return display_for_field(value, field, empty)
        value = self.getter(obj)
        if isinstance(value, datetime.date | datetime.time):
            return display_for_value(value, empty)
        return display_for_value(value, empty, self.boolean)


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


def _row(obj, columns, empty, link_template, pk_attname) -> list:
    cells = []
    for column in columns:
        shown = conditional_escape(column.render_value(obj, empty))
        if column.links and link_template is not None:
            url = link_template.replace(_PK_PLACEHOLDER, quote(str(getattr(obj, pk_attname))), 1)
            shown = f'<a href="{conditional_escape(url)}" class="{LINK_CLASSES_STR}">{shown}</a>'
        tag = column.tag
        cells.append(
            mark_safe(f'<{tag}{column.row_class} data-label="{column.label}">{shown}</{tag}>')
        )
    return cells


def workbench_result_list(context, cl):
    headers = list(result_headers(cl))
    columns = _columns(cl, headers)
    empty = cl.model_admin.get_empty_value_display()
    link_template = _link_template(cl)
    pk_attname = cl.lookup_opts.pk.attname
    results = [
        UnfoldResultList(obj, None, _row(obj, columns, empty, link_template, pk_attname))
        for obj in cl.result_list
    ]
    return {
        "cl": cl,
        "result_hidden_fields": list(result_hidden_fields(cl)),
        "result_headers": headers,
        "num_sorted_fields": sum(1 for h in headers if h["sortable"] and h["sorted"]),
        "results": results,
    }


@register.tag(name="workbench_result_list")
def workbench_result_list_tag(parser, token):
    return InclusionAdminNode(
        "workbench_result_list",
        parser,
        token,
        func=workbench_result_list,
        template_name="workbench_results.html",
    )
