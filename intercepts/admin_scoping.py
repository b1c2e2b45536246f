"""Tenant scoping and fast lists for every merchant-facing admin.

``ShopScopedAdmin`` is the one place that decides what a user sees and may do in the workbench:
the rows (``get_queryset``), the permissions (a role table per admin, checked against the
user's role in the object's shop), the choices offered for foreign keys and autocompletes, and
a 404 for an object outside the user's shops. Its changelist never counts the table.
"""

from django.contrib.admin import ShowFacets
from django.contrib.admin.options import IncorrectLookupParameters
from django.http import Http404
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin, TabularInline
from unfold.paginator import InfinitePaginator as _UnfoldInfinitePaginator
from unfold.views import ChangeList

from intercepts.models import PLATFORM_CS, PLATFORM_FINANCE
from intercepts.tenancy import access_for, scope_to_shops

OWNER, AGENT, VIEWER = "owner", "agent", "viewer"
MERCHANT_ALL = frozenset({OWNER, AGENT, VIEWER})
MERCHANT_WRITE = frozenset({OWNER, AGENT})
PLATFORM_ALL = frozenset({PLATFORM_CS, PLATFORM_FINANCE})
NOBODY = frozenset()


class InfinitePaginator(_UnfoldInfinitePaginator):
    """A paginator that never counts; Unfold's templates know this class name and hide totals."""

    template_name = "admin/pagination_lazy.html"


class LazyChangeList(ChangeList):
    """A changelist page that fetches one row more than it shows instead of counting all rows."""

    is_dataset = False

    def get_results(self, request):
        per_page = self.list_per_page
        if self.page_num < 1:
            raise IncorrectLookupParameters
        offset = (self.page_num - 1) * per_page
        queryset = self.queryset
        if offset:
            # Deep pages: skip rows on the narrow ordering index first, then join and load
            # only the page's rows (a "deferred join"); OFFSET over joined rows costs a lookup
            # per skipped row.
            page_ids = self.queryset.values("pk")[offset : offset + per_page + 1]
            queryset = queryset.filter(pk__in=page_ids)
        prepare = getattr(self.model_admin, "prepare_changelist_rows", None)
        if prepare is not None:
            queryset = prepare(queryset)
        rows = list(queryset if offset else queryset[: per_page + 1])
        self.has_next_page = len(rows) > per_page
        self.result_list = rows[:per_page]
        # Only this page is known: "select all" covers the page, never an uncounted table.
        self.result_count = len(self.result_list)
        self.full_result_count = None
        self.show_full_result_count = False
        self.show_admin_actions = True
        self.can_show_all = False
        self.multi_page = self.has_next_page or self.page_num > 1
        self.paginator = InfinitePaginator(self.queryset, per_page)


def _shop_id_of(obj, shop_path: str) -> int | None:
    parts = shop_path.split("__")
    target = obj
    for part in parts[:-1]:
        target = getattr(target, part, None)
        if target is None:
            return None
    last = parts[-1]
    if last == "pk":
        return target.pk
    return getattr(target, f"{last}_id", None)


class RolePermissionsMixin:
    """Permissions from a role table: ``{"view": roles, "add": ..., "change": ..., "delete": ...}``.

    Roles are shop roles (owner, agent, viewer) and platform groups (platform_cs,
    platform_finance). For an object, only the role in that object's shop counts.
    """

    shop_path = "shop"
    role_permissions = {
        "view": MERCHANT_ALL | PLATFORM_ALL,
        "add": NOBODY,
        "change": NOBODY,
        "delete": NOBODY,
    }

    def _shop_path(self) -> str:
        return self.shop_path

    def _allowed(self, action: str, request, obj=None) -> bool:
        user = request.user
        if not user.is_active or not user.is_staff:
            return False
        access = access_for(user)
        if access.is_superuser:
            return True
        shop_id = _shop_id_of(obj, self._shop_path()) if obj is not None else None
        return bool(access.roles(shop_id) & self.role_permissions.get(action, NOBODY))

    def has_view_permission(self, request, obj=None):
        return self._allowed("view", request, obj) or self._allowed("change", request, obj)

    def has_add_permission(self, request, obj=None):
        return self._allowed("add", request, obj)

    def has_change_permission(self, request, obj=None):
        return self._allowed("change", request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._allowed("delete", request, obj)


class ShopScopedAdmin(RolePermissionsMixin, ModelAdmin):
    show_full_result_count = False
    # Facet counts are a COUNT per filter choice over the whole list: never on big tables.
    show_facets = ShowFacets.NEVER
    change_list_template = "admin/workbench/change_list.html"
    # Unfold looks these up on every row; defining them spares a failed lookup per row.
    list_sections = ()
    list_per_page = 20
    list_max_show_all = 100

    def get_changelist(self, request, **kwargs):
        return LazyChangeList

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        return scope_to_shops(queryset, request.user, self.shop_path)

    def has_module_permission(self, request):
        return self.has_view_permission(request)

    def get_object(self, request, object_id, from_field=None):
        # Another shop's object is simply not there: 404, never a redirect or a 403 that
        # would confirm it exists.
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            raise Http404(_("No such record in your shops."))
        return obj

    def _scoped_related_queryset(self, request, model):
        related_admin = self.admin_site._registry.get(model)
        if isinstance(related_admin, ShopScopedAdmin):
            return related_admin.get_queryset(request)
        return None

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if "queryset" not in kwargs:
            queryset = self._scoped_related_queryset(request, db_field.related_model)
            if queryset is not None:
                kwargs["queryset"] = queryset
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if "queryset" not in kwargs:
            queryset = self._scoped_related_queryset(request, db_field.related_model)
            if queryset is not None:
                kwargs["queryset"] = queryset
        return super().formfield_for_manytomany(db_field, request, **kwargs)


class ScopedTabularInline(RolePermissionsMixin, TabularInline):
    """An inline whose permissions follow the parent object's shop."""

    # Inlines are asked about the parent object: the path goes from the parent to its shop.
    parent_shop_path = "shop"
    extra = 0

    def _shop_path(self) -> str:
        return self.parent_shop_path
