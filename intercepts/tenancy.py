"""Who may see which shop: one place that answers it for the admin, the API and selectors."""

from dataclasses import dataclass, field
from functools import cache

from django.contrib.auth.models import Group
from django.db import connection

from intercepts import fixed_sql as sql
from intercepts.models import PLATFORM_GROUPS, ShopMembership


@dataclass(frozen=True)
class Access:
    """What one user may reach: platform groups, and a role per shop."""

    is_superuser: bool = False
    platform_groups: frozenset[str] = frozenset()
    shop_roles: dict[int, str] = field(default_factory=dict)

    @property
    def is_platform(self) -> bool:
        return self.is_superuser or bool(self.platform_groups)

    @property
    def sees_all_shops(self) -> bool:
        return self.is_platform

    @property
    def shop_ids(self) -> list[int]:
        return sorted(self.shop_roles)

    def acts_for(self, shop_id: int) -> bool:
        """Whether the user acts for the shop in the workbench: its owner or an after-sales
        agent (a viewer only looks; platform staff act through their own channels)."""
        return self.shop_roles.get(shop_id) in (
            ShopMembership.Role.OWNER,
            ShopMembership.Role.AGENT,
        )

    def roles(self, shop_id: int | None = None) -> set[str]:
        """Every role the user holds: platform groups plus the shop role(s).

        With a shop, only the role in that shop counts; without one, any shop's role does
        (the question is then "may they do this somewhere").
        """
        held: set[str] = set(self.platform_groups)
        if shop_id is None:
            held.update(self.shop_roles.values())
        elif shop_id in self.shop_roles:
            held.add(self.shop_roles[shop_id])
        return held


ANONYMOUS = Access()


@cache
def _access_sql() -> str:
    """Memberships, and platform groups as rows with no shop: one round trip for both.

    Every admin page asks this first, so it is one fixed statement rather than an ORM union
    compiled on each request (compiling cost four times the query).
    """
    user_groups = Group.user_set.through
    placeholders = ", ".join(["%s"] * len(PLATFORM_GROUPS))
    return (
        f"SELECT {sql.columns(ShopMembership, 'shop role')} FROM {sql.table(ShopMembership)} "
        f"WHERE {sql.column(ShopMembership, 'user')} = %s "
        f"UNION ALL "
        f"SELECT NULL, {sql.column(Group, 'name', 'g')} FROM {sql.table(Group)} g "
        f"JOIN {sql.table(user_groups)} ug "
        f"ON {sql.column(user_groups, 'group', 'ug')} = {sql.column(Group, 'id', 'g')} "
        f"WHERE {sql.column(user_groups, 'user', 'ug')} = %s "
        f"AND {sql.column(Group, 'name', 'g')} IN ({placeholders})"
    )


def access_for(user) -> Access:
    """Load (once per request user object) the user's platform groups and shop roles."""
    if user is None or not user.is_authenticated or not user.is_active:
        return ANONYMOUS
    cached = getattr(user, "_shop_access", None)
    if cached is not None:
        return cached
    shop_roles: dict[int, str] = {}
    platform: set[str] = set()
    with connection.cursor() as cursor:
        cursor.execute(_access_sql(), [user.pk, user.pk, *PLATFORM_GROUPS])
        for shop_id, name in cursor.fetchall():
            if shop_id is None:
                platform.add(name)
            else:
                shop_roles[shop_id] = name
    access = Access(
        is_superuser=user.is_superuser,
        platform_groups=frozenset(platform),
        shop_roles=shop_roles,
    )
    user._shop_access = access
    return access


def visible_shop_ids(user) -> list[int] | None:
    """The shops a user may see, or None for every shop (platform staff)."""
    access = access_for(user)
    return None if access.sees_all_shops else access.shop_ids


def scope_to_shops(queryset, user, shop_path: str = "shop"):
    """Restrict a queryset to the shops the user may see; platform staff see all."""
    access = access_for(user)
    if access.sees_all_shops:
        return queryset
    if not access.shop_roles:
        return queryset.none()
    return queryset.filter(**{f"{shop_path}__in": access.shop_ids})
