"""Cursor pagination: stable pages however many rows arrive meanwhile, and no COUNT(*)."""

from rest_framework.pagination import CursorPagination


class ApiCursorPagination(CursorPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
    # Newest first by primary key: unique, indexed with every shop-scoped list's shop column.
    ordering = "-id"
