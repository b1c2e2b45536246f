"""A lean result table for the workbench changelists.

Unfold's ``items_for_result`` recomputes every column header for every row and looks each
cell up through the generic admin machinery, which made the row table most of a list page's
time. Here the per-column work (header, classes, how to read the value, whether it links) is
done once per page, and each cell is one attribute read and one escape. The markup is Unfold's,
so the table looks and behaves the same.
"""

import datetime

from django import template
from django.contrib.admin.templatetags.admin_list import result_hidden_fields
from django.contrib.admin.templatetags.admin_urls import add_preserved_filters
from django.contrib.admin.templatetags.base import InclusionAdminNode
from django.contrib.admin.utils import display_for_field, display_for_value
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.urls import NoReverseMatch
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import mark_safe
from django.utils.translation import gettext
from unfold.templatetags.unfold_list import (
    CHECKBOX_CLASSES,
    LINK_CLASSES,
    ROW_CLASSES,
    UnfoldResultList,
    result_headers,
)

register = template.Library()


class _Column:
    __slots__ = ("boolean", "field", "getter", "header", "links", "row_class", "tag")

    def __init__(self, cl, name, index, header, links, tag):
        model_admin = cl.model_admin
        self.header = header["text"]
        self.links = links
        self.tag = tag
        self.field = None
        self.boolean = False
        classes = [f"field-{name if isinstance(name, str) else index}", *ROW_CLASSES]
        if name == "action_checkbox":
            classes = list(CHECKBOX_CLASSES)
        if callable(name):
            self.getter = name
            self.boolean = getattr(name, "boolean", False)
        elif hasattr(model_admin, name) and name != "__str__":
            attr = getattr(model_admin, name)
            self.getter = attr
            self.boolean = getattr(attr, "boolean", False)
        else:
            try:
                self.field = cl.lookup_opts.get_field(name)
            except FieldDoesNotExist:
                attr = getattr(cl.model, name)
                if callable(attr):
                    self.getter = lambda obj, _name=name: getattr(obj, _name)()
                else:
                    self.getter = lambda obj, _name=name: getattr(obj, _name)
                self.boolean = getattr(attr, "boolean", False)
            else:
                if isinstance(self.field, models.DateField | models.TimeField | models.ForeignKey):
                    classes.append("nowrap")
                self.getter = None
        self.row_class = mark_safe(f' class="{" ".join(classes)}"')

    def render_value(self, obj, empty):
        if self.field is not None:
            field = self.field
            if field.is_relation:
                value = getattr(obj, field.name)
                return empty if value is None else conditional_escape(value)
            value = getattr(obj, field.attname)
            if field.flatchoices:
                return conditional_escape(dict(field.flatchoices).get(value, empty))
            return display_for_field(value, field, empty)
        value = self.getter(obj)
        if isinstance(value, datetime.date | datetime.time):
            return display_for_value(value, empty)
        return display_for_value(value, empty, self.boolean)


def _columns(cl, headers):
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
        columns.append(_Column(cl, name, index, headers[index], links, tag))
    return columns


def _cells(cl, obj, columns, empty, checkbox_label):
    for index, column in enumerate(columns):
        shown = column.render_value(obj, empty)
        if column.links:
            try:
                url = cl.url_for_result(obj)
            except NoReverseMatch:
                link = shown
            else:
                url = add_preserved_filters(
                    {"preserved_filters": cl.preserved_filters, "opts": cl.opts}, url
                )
                link = format_html('<a href="{}" class="{}">{}</a>', url, LINK_CLASSES_STR, shown)
            yield format_html(
                '<{}{} data-label="{}">{}</{}>',
                column.tag,
                column.row_class,
                column.header,
                link,
                column.tag,
            )
        else:
            label = checkbox_label if index == 0 else column.header
            yield format_html('<td{} data-label="{}">{}</td>', column.row_class, label, shown)


LINK_CLASSES_STR = " ".join(LINK_CLASSES)


def workbench_result_list(context, cl):
    headers = list(result_headers(cl))
    columns = _columns(cl, headers)
    empty = cl.model_admin.get_empty_value_display()
    checkbox_label = gettext("Select record")
    results = [
        UnfoldResultList(obj, None, list(_cells(cl, obj, columns, empty, checkbox_label)))
        for obj in cl.result_list
    ]
    return {
        "cl": cl,
        "result_hidden_fields": list(result_hidden_fields(cl)),
        "result_headers": headers,
        "num_sorted_fields": sum(1 for h in headers if h["sortable"] and h["sorted"]),
        "results": results,
        "actions_row": context.get("actions_row"),
        "has_add_permission": cl.model_admin.has_add_permission(context["request"]),
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
