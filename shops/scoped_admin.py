"""Tenant scoping and fast lists for every merchant-facing admin.

``ShopScopedAdmin`` is the one place that decides what a user sees and may do in the workbench:
the rows (``get_queryset``), the permissions (a role table per admin, checked against the
user's role in the object's shop), the choices offered for foreign keys and autocompletes, and
a 404 for an object outside the user's shops. Its changelist never counts the table.
"""

from django.contrib import admin
from django.contrib.admin import ShowFacets, SimpleListFilter
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.core.paginator import EmptyPage, Page, PageNotAnInteger, Paginator
from django.db.models import Q
from django.http import Http404
from django.urls import path
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin, TabularInline
from unfold.contrib.filters.admin import TextFilter
from unfold.paginator import InfinitePaginator as _UnfoldInfinitePaginator
from unfold.views import ChangeList

from shops.access import access_for, scope_to_shops
from shops.models import PLATFORM_CS, PLATFORM_FINANCE, Shop, ShopMembership

OWNER, AGENT, VIEWER = (
    ShopMembership.Role.OWNER,
    ShopMembership.Role.AGENT,
    ShopMembership.Role.VIEWER,
)
MERCHANT_ALL = frozenset({OWNER, AGENT, VIEWER})
MERCHANT_WRITE = frozenset({OWNER, AGENT})
PLATFORM_ALL = frozenset({PLATFORM_CS, PLATFORM_FINANCE})
NOBODY = frozenset()
# Far beyond any real list (2 million rows at 20 a page), and well inside a bigint offset.
MAX_PAGE = 100_000


class InfinitePaginator(_UnfoldInfinitePaginator):
    """A paginator that never counts; Unfold's templates know this class name and hide totals."""

    template_name = "admin/pagination_lazy.html"


class LazyChangeList(ChangeList):
    """A changelist page that fetches one row more than it shows instead of counting all rows."""

    is_dataset = False

    def get_results(self, request):
        per_page = self.list_per_page
        if not 1 <= self.page_num <= MAX_PAGE:
            raise IncorrectLookupParameters
        offset = (self.page_num - 1) * per_page
        queryset = self.queryset
        if offset:
            # Deep pages: skip rows on the narrow ordering index first, then join and load
            # only the page's rows (a "deferred join"); OFFSET over joined rows costs a lookup
            # per skipped row.
            page_ids = self.queryset.values("pk")[offset : offset + per_page + 1]
            queryset = queryset.filter(pk__in=page_ids)
        rows = list(queryset if offset else queryset[: per_page + 1])
        self.has_next_page = len(rows) > per_page
        self.result_list = rows[:per_page]
        # What the columns show from other tables, loaded for the page's rows at once.
        load_extras = getattr(self.model_admin, "load_changelist_extras", None)
        if load_extras is not None and self.result_list:
            load_extras(request, self.result_list)
        # Only this page is known: "select all" covers the page, never an uncounted table.
        self.result_count = len(self.result_list)
        self.full_result_count = None
        self.show_full_result_count = False
        self.show_admin_actions = True
        self.can_show_all = False
        self.multi_page = self.has_next_page or self.page_num > 1
        self.paginator = InfinitePaginator(self.queryset, per_page)


def is_platform_staff(request) -> bool:
    """An active staff user in a platform group (or a superuser): the pages for the platform."""
    user = request.user
    return user.is_active and user.is_staff and access_for(user).is_platform


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


class StrictLookupsMixin:
    """Only the list's own filters may filter it.

    Django lets a changelist's URL filter on any field of the model; that would let a user
    probe values they are not shown (a masked phone, a gateway secret) one character at a time.
    """

    _FILTER_SUFFIXES = frozenset({"exact", "in", "isnull", "id__exact"})

    def lookup_allowed(self, lookup, value, request):
        allowed = set()
        for item in self.get_list_filter(request):
            if isinstance(item, type) and issubclass(item, SimpleListFilter):
                allowed.add(item.parameter_name)
            elif isinstance(item, list | tuple):
                # A field with its own filter class: range filters send "<field>_from/_to".
                allowed.update({item[0], f"{item[0]}_from", f"{item[0]}_to"})
            else:
                allowed.add(item)
        if lookup in allowed:
            return True
        field, _, suffix = lookup.partition("__")
        return field in allowed and suffix in self._FILTER_SUFFIXES


class NoCountPage(Page):
    def has_next(self):
        return self.paginator.has_next_page


class NoCountPaginator(Paginator):
    """For autocompletes: fetch one item more than a page instead of counting the table."""

    has_next_page = False

    def validate_number(self, number):
        try:
            number = int(number)
        except (TypeError, ValueError) as exc:
            raise PageNotAnInteger(_("That page number is not an integer")) from exc
        if not 1 <= number <= MAX_PAGE:
            raise EmptyPage(_("That page contains no results"))
        return number

    def page(self, number):
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        items = list(self.object_list[bottom : bottom + self.per_page + 1])
        self.has_next_page = len(items) > self.per_page
        return NoCountPage(items[: self.per_page], number, self)


class ShopScopedAdmin(StrictLookupsMixin, RolePermissionsMixin, ModelAdmin):
    show_full_result_count = False
    # Facet counts are a COUNT per filter choice over the whole list: never on big tables.
    show_facets = ShowFacets.NEVER
    # Unfold looks these up on every row; defining them spares a failed lookup per row.
    list_sections = ()
    list_per_page = 20

    # Lists are ordered by their indexed default ordering only: sorting millions of rows by
    # an arbitrary column, then skipping pages of them, is not a page load.
    sortable_by = ()

    def get_changelist(self, request, **kwargs):
        return LazyChangeList

    def get_paginator(self, request, queryset, per_page, orphans=0, allow_empty_first_page=True):
        return NoCountPaginator(queryset, per_page, orphans, allow_empty_first_page)

    def save_model(self, request, obj, form, change):
        # A user with different roles in different shops must hold the right role in this
        # object's own shop, whatever the form offered.
        if not self._allowed("change" if change else "add", request, obj):
            raise PermissionDenied
        self.save_checked(request, obj, form, change)

    def save_checked(self, request, obj, form, change):
        """Save an object whose shop the user may write to; admins call their service here."""
        super().save_model(request, obj, form, change)

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
        """Choices for a foreign key: rows of the shops where the user may write this admin's
        objects (viewing another shop is not enough to attach records to it)."""
        related_admin = self.admin_site._registry.get(model)
        if not isinstance(related_admin, ShopScopedAdmin):
            return None
        queryset = related_admin.get_queryset(request)
        access = access_for(request.user)
        writers = self.role_permissions.get("add", NOBODY) | self.role_permissions.get(
            "change", NOBODY
        )
        if access.is_superuser or access.platform_groups & writers:
            return queryset
        shop_ids = [shop for shop, role in access.shop_roles.items() if role in writers]
        return queryset.filter(**{f"{related_admin.shop_path}__in": shop_ids})

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
    # The columns say it all; a title per row would repeat the row.
    show_title = False

    def _shop_path(self) -> str:
        return self.parent_shop_path


class ShopColumnForPlatformMixin:
    """The list's shop column is for platform staff, who see every shop; a merchant's rows are
    all their own shop's."""

    def get_list_display(self, request):
        if access_for(request.user).sees_all_shops:
            return self.list_display
        return tuple(name for name in self.list_display if name != "shop")


class ActorNameMixin:
    """Who did it, as a name only: a readonly user field would link to the user's admin page,
    which no merchant may open."""

    @admin.display(description=_("by"))
    def actor_name(self, obj) -> str:
        return obj.actor.get_username() if obj.actor_id else ""


class StatusHistoryInline(ActorNameMixin, ScopedTabularInline):
    """A record's status history (who moved it, when, from what to what), read-only, oldest
    first; a subclass names the history model and who reads it."""

    fields = ("created_at", "from_status", "to_status", "actor_name", "note")

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("actor")


def object_view_path(model_admin, function, suffix: str):
    """The URL of an extra page of one object, ``<id>/<suffix>/``, named
    ``<app>_<model>_<suffix>`` (dashes as underscores) and behind the admin's login:
    ``function(model_admin, request, object_id)`` finds the object through the admin, so
    another shop's object is a 404."""
    opts = model_admin.model._meta
    return path(
        f"<path:object_id>/{suffix}/",
        model_admin.admin_site.admin_view(
            lambda request, object_id: function(model_admin, request, unquote(object_id))
        ),
        name=f"{opts.app_label}_{opts.model_name}_{suffix.replace('-', '_')}",
    )


class PlatformReadOnlyMixin(StrictLookupsMixin):
    """Platform staff read these; only superusers change them."""

    def _platform(self, request) -> bool:
        return is_platform_staff(request)

    def has_module_permission(self, request):
        return self._platform(request)

    def has_view_permission(self, request, obj=None):
        return self._platform(request)

    def has_add_permission(self, request):
        return access_for(request.user).is_superuser

    def has_change_permission(self, request, obj=None):
        return access_for(request.user).is_superuser

    def has_delete_permission(self, request, obj=None):
        return False


class PlatformShopFilter(TextFilter):
    """Filter by shop, for platform staff only (a merchant sees only their shops): the shop's
    code or its full name is typed, as a platform has far too many shops to list."""

    title = _("shop")
    parameter_name = "shop"

    def __init__(self, request, params, model, model_admin):
        super().__init__(request, params, model, model_admin)
        self.offered = access_for(request.user).sees_all_shops

    def has_output(self):
        return self.offered

    def queryset(self, request, queryset):
        term = (self.value() or "").strip()
        if not (term and self.offered):
            return queryset
        shop_ids = list(
            Shop.objects.filter(Q(code=term) | Q(name=term)).values_list("pk", flat=True)
        )
        return queryset.filter(shop_id__in=shop_ids)
